package authz_test

import (
	"fmt"

	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/config"
)

func ExampleParseChannel() {
	ch, err := authz.ParseChannel("room:lobby")
	fmt.Println(ch.Namespace, ch.Name, err)
	_, err = authz.ParseChannel("room:../etc")
	fmt.Println(err)
	// Output:
	// room lobby <nil>
	// invalid channel: "room:../etc" name contains ".."
}

func ExampleRules_Allow() {
	rules, err := authz.New(config.Default().Namespaces)
	if err != nil {
		panic(err)
	}
	ch, _ := authz.ParseChannel("user:bob")
	fmt.Println(rules.Allow(authz.Principal{Name: "bob"}, authz.Subscribe, ch))
	fmt.Println(rules.Allow(authz.Principal{Name: "alice"}, authz.Subscribe, ch))
	// Output:
	// <nil>
	// forbidden: no rule grants subscribe on "user:bob" to "alice"
}

func ExampleMatchScope() {
	news, _ := authz.ParseChannel("news:today")
	room, _ := authz.ParseChannel("room:x")
	fmt.Println(authz.MatchScope("publish:news:*", authz.Publish, news))
	fmt.Println(authz.MatchScope("publish:news:*", authz.Publish, room))
	// Output:
	// true
	// false
}
