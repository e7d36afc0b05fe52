package ratelimit_test

import (
	"fmt"
	"time"

	"github.com/wsguard/wsguard/internal/ratelimit"
)

func ExampleNewLocal() {
	l := ratelimit.NewLocal(10, 2) // 10 per second, bursts of 2
	now := time.Unix(0, 0)
	for range 3 {
		ok, retry := l.Allow("ip:192.0.2.1", now)
		fmt.Println(ok, retry)
	}
	// Output:
	// true 0s
	// true 0s
	// false 100ms
}

func ExampleThrottle() {
	th := ratelimit.NewThrottle()
	now := time.Unix(0, 0)
	for range 6 {
		th.Failure("user:alice", now)
	}
	fmt.Println(th.Check("user:alice", now))
	fmt.Println(th.Check("user:alice", now.Add(2*time.Second)))
	// Output:
	// false 2s
	// true 0s
}

func ExampleLocalCounter() {
	c := ratelimit.NewLocalCounter()
	fmt.Println(c.Acquire("ip:192.0.2.1", 1), c.Acquire("ip:192.0.2.1", 1))
	c.Release("ip:192.0.2.1")
	fmt.Println(c.Acquire("ip:192.0.2.1", 1))
	// Output:
	// true false
	// true
}
