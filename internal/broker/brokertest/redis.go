package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// install says how to get a Redis for the tests.
const install = "install and start Redis: apt-get install redis-server && " +
	"redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no " +
	"(scripts/test.sh does), or set WSGUARD_TEST_REDIS=HOST:PORT"

// RedisURL returns a redis:// URL of the test Redis (127.0.0.1:6379, or
// WSGUARD_TEST_REDIS) with a prefix of its own, so that parallel tests
// never see each other's keys or channels. It fails the test, saying what
// to install, when Redis does not answer.
func RedisURL(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("WSGUARD_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	addr = strings.TrimPrefix(addr, "redis://")
	addr = strings.TrimSuffix(addr, "/")
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second})
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s does not answer (%v): %s", addr, err, install)
	}
	return "redis://" + addr + "/0?prefix=" + Prefix(t)
}

// Prefix returns a fresh key prefix for one test.
func Prefix(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "wsgtest:" + hex.EncodeToString(b) + ":"
}

// Server is a private redis-server process that a test may stop and start
// again on the same port, to see what an outage does.
type Server struct {
	t    testing.TB
	Port int
	cmd  *exec.Cmd
}

// StartRedis starts redis-server on a free loopback port, without
// persistence, and stops it when the test ends. It fails the test when
// redis-server is not installed.
func StartRedis(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed: %s", install)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &Server{t: t, Port: port}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is a redis:// URL of this server with a fresh prefix.
func (s *Server) URL() string {
	return fmt.Sprintf("redis://127.0.0.1:%d/0?prefix=%s", s.Port, Prefix(s.t))
}

// Start starts the server (again) and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	// #nosec G204 -- a test starting redis-server with fixed arguments and a port number
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.Port)})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d does not answer after 10 s: %v", s.Port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}
