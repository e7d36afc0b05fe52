package authz

import (
	"errors"
	"strings"
	"testing"

	"github.com/wsguard/wsguard/internal/config"
)

func mustParse(t *testing.T, s string) Channel {
	t.Helper()
	ch, err := ParseChannel(s)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func testRules(t *testing.T) *Rules {
	t.Helper()
	ns := config.Default().Namespaces
	// A2: a namespace readable by users, writable by editors, with history
	// and presence only for staff.
	ns["news"] = config.Namespace{
		Subscribe: []string{"users", "scope"},
		Publish:   []string{"role:editor", "scope"},
		History:   []string{"role:staff"},
	}
	ns["alerts"] = config.Namespace{Subscribe: []string{"users"}}
	r, err := New(ns)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAllow(t *testing.T) {
	r := testRules(t)
	alice := Principal{Name: "alice"}
	bob := Principal{Name: "bob"}
	editor := Principal{Name: "eve", Roles: []string{"editor"}}
	staff := Principal{Name: "sam", Roles: []string{"staff"}}
	newsKey := Principal{Name: "api:feed", IsService: true, Scopes: []string{"publish:news:*"}}
	subKey := Principal{Name: "api:reader", IsService: true, Scopes: []string{"subscribe:news:*"}}
	exactKey := Principal{Name: "api:one", IsService: true, Scopes: []string{"publish:news:sports"}}
	bobKey := Principal{Name: "bob", IsService: true, Scopes: []string{"publish:room:*"}}
	jwtRoom := Principal{Name: "carol", Channels: []string{"room:lobby", "user:carol"}}
	jwtPrefix := Principal{Name: "dan", Channels: []string{"room:team-*"}}
	jwtNone := Principal{Name: "erin", Channels: []string{}}

	for _, tc := range []struct {
		name string
		p    Principal
		a    Action
		ch   string
		ok   bool
	}{
		// room: open to every signed-in user.
		{"user subscribes room", alice, Subscribe, "room:lobby", true},
		{"user publishes room", alice, Publish, "room:lobby", true},
		{"user history room", alice, History, "room:lobby", true},
		{"user presence room", alice, Presence, "room:lobby", true},
		{"anonymous refused", Principal{}, Subscribe, "room:lobby", false},
		{"service is not a user", newsKey, Subscribe, "room:lobby", false},

		// A1: user:<name> is its owner's only.
		{"A1 alice subscribes user:bob", alice, Subscribe, "user:bob", false},
		{"A1 alice publishes user:bob", alice, Publish, "user:bob", false},
		{"A1 alice history user:bob", alice, History, "user:bob", false},
		{"A1 alice presence user:bob", alice, Presence, "user:bob", false},
		{"A1 bob subscribes user:bob", bob, Subscribe, "user:bob", true},
		{"A1 bob publishes user:bob", bob, Publish, "user:bob", true},
		{"A1 bob history user:bob", bob, History, "user:bob", true},
		{"A1 prefix of name is not owner", Principal{Name: "bo"}, Subscribe, "user:bob", false},
		{"A1 service named bob is not owner", bobKey, Subscribe, "user:bob", false},

		// A2: rights per action.
		{"A2 user publishes news", alice, Publish, "news:today", false},
		{"A2 user subscribes news", alice, Subscribe, "news:today", true},
		{"A2 editor publishes news", editor, Publish, "news:today", true},
		{"A2 editor history without right", editor, History, "news:today", false},
		{"A2 user history without right", alice, History, "news:today", false},
		{"A2 user presence without rule", alice, Presence, "news:today", false},
		{"A2 staff history", staff, History, "news:today", true},
		{"A2 staff publish", staff, Publish, "news:today", false},
		{"A2 role name is not a prefix", Principal{Name: "x", Roles: []string{"edit"}}, Publish, "news:a", false},
		{"A2 subscribe-only namespace", alice, Publish, "alerts:x", false},

		// deny by default
		{"unknown namespace", alice, Subscribe, "secret:x", false},
		{"unknown namespace for editor", editor, Publish, "secret:x", false},
		{"unknown action", alice, Action("delete"), "room:lobby", false},
		{"empty action", alice, Action(""), "room:lobby", false},

		// K5: API key scopes
		{"K5 news:* publishes news:a", newsKey, Publish, "news:a", true},
		{"K5 news:* publishes room:x", newsKey, Publish, "room:x", false},
		{"K5 news:* subscribes news:a", newsKey, Subscribe, "news:a", false},
		{"K5 subscribe scope does not publish", subKey, Publish, "news:a", false},
		{"K5 subscribe scope subscribes", subKey, Subscribe, "news:a", true},
		{"K5 scope in namespace without scope rule", newsKey, History, "news:a", false},
		{"K5 exact scope", exactKey, Publish, "news:sports", true},
		{"K5 exact scope other name", exactKey, Publish, "news:sports2", false},
		{"K5 user with scopes is not a service", Principal{Name: "u", Scopes: []string{"history:news:*"}}, History, "news:a", false},

		// JWT channels claim
		{"jwt channel listed", jwtRoom, Subscribe, "room:lobby", true},
		{"jwt own user channel", jwtRoom, Subscribe, "user:carol", true},
		{"jwt channel not listed", jwtRoom, Subscribe, "room:other", false},
		{"jwt prefix matches", jwtPrefix, Publish, "room:team-red", true},
		{"jwt prefix no match", jwtPrefix, Publish, "room:teams", false},
		{"jwt prefix other namespace", jwtPrefix, Publish, "news:team-red", false},
		{"jwt claim does not widen rules", Principal{Name: "f", Channels: []string{"user:bob"}}, Subscribe, "user:bob", false},
		{"jwt empty claim allows nothing", jwtNone, Subscribe, "room:lobby", false},
	} {
		err := r.Allow(tc.p, tc.a, mustParse(t, tc.ch))
		if tc.ok && err != nil {
			t.Errorf("%s: refused: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: %v, want ErrForbidden", tc.name, err)
		}
	}
}

func TestAllowRefusesUnparsedChannel(t *testing.T) {
	r := testRules(t)
	for _, ch := range []Channel{{}, {Namespace: "room"}, {Namespace: "room", Name: "../x"}, {Namespace: "ROOM", Name: "a"}} {
		if err := r.Allow(Principal{Name: "alice"}, Subscribe, ch); !errors.Is(err, ErrForbidden) {
			t.Errorf("%+v: %v", ch, err)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		ns   map[string]config.Namespace
		msg  string
	}{
		{"users in user namespace", map[string]config.Namespace{"user": {Subscribe: []string{"users"}}}, "namespaces.user.subscribe"},
		{"unknown entry", map[string]config.Namespace{"room": {Publish: []string{"everyone"}}}, "namespaces.room.publish"},
		{"empty role", map[string]config.Namespace{"room": {History: []string{"role:"}}}, "namespaces.room.history"},
		{"role with space", map[string]config.Namespace{"room": {Presence: []string{"role:a b"}}}, "namespaces.room.presence"},
		{"bad namespace", map[string]config.Namespace{"Room": {}}, `"Room"`},
		{"namespace with colon", map[string]config.Namespace{"a:b": {}}, `"a:b"`},
	} {
		r, err := New(tc.ns)
		if err == nil || r != nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %q does not name %q", tc.name, err, tc.msg)
		}
	}
	r, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Allow(Principal{Name: "alice"}, Subscribe, Channel{"room", "x"}); !errors.Is(err, ErrForbidden) {
		t.Error("no namespaces configured, yet room:x allowed")
	}
}

func TestMatchScope(t *testing.T) {
	news := Channel{"news", "a"}
	for _, tc := range []struct {
		scope string
		a     Action
		ch    Channel
		ok    bool
	}{
		{"publish:news:*", Publish, news, true},
		{"publish:news:a", Publish, news, true},
		{"publish:news:a*", Publish, Channel{"news", "abc"}, true},
		{"publish:news:b*", Publish, news, false},
		{"publish:news:*", Publish, Channel{"room", "x"}, false},
		{"publish:news:*", Subscribe, news, false},
		{"publish:new*:*", Publish, news, false},
		{"publish:*:*", Publish, news, false},
		{"*:news:*", Publish, news, false},
		{"publish:news:", Publish, news, false},
		{"publish:news", Publish, news, false},
		{"publish", Publish, news, false},
		{"", Publish, news, false},
		{"publish:news:a:b", Publish, news, false},
		{"publish:news:*", Publish, Channel{"newsx", "a"}, false},
	} {
		if got := MatchScope(tc.scope, tc.a, tc.ch); got != tc.ok {
			t.Errorf("MatchScope(%q, %s, %s) = %v, want %v", tc.scope, tc.a, tc.ch, got, tc.ok)
		}
	}
}

func TestValidateScope(t *testing.T) {
	for _, ok := range []string{"publish:news:*", "subscribe:room:lobby", "history:news:sport*", "presence:user:bob"} {
		if err := ValidateScope(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "publish", "publish:news", "delete:news:*", "publish:News:*", "publish:news:", "publish:news:a*b", "publish:news:**", "publish:news:../x", "publish:*:*"} {
		if err := ValidateScope(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAllowNoAllocOnSuccess(t *testing.T) {
	r := testRules(t)
	p := Principal{Name: "alice", Channels: []string{"room:*"}}
	ch := Channel{"room", "lobby"}
	allocs := testing.AllocsPerRun(100, func() {
		if err := r.Allow(p, Publish, ch); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per allowed check, want 0", allocs)
	}
}

// TestCheckScope: a scope counts only where a rule lists "scope"; the
// refusal names the config key that would make it count.
func TestCheckScope(t *testing.T) {
	r := testRules(t)
	for _, tc := range []struct {
		scope string
		want  string // "" for honoured, else a part of the error
	}{
		{"publish:room:*", ""}, // the default room honours scope for publish
		{"publish:news:*", ""},
		{"subscribe:news:eu", ""},
		{"disconnect:user:*", ""},
		{"disconnect:api:feed", ""},
		{"history:news:*", "namespaces.news.history does not list scope (it lists: role:staff)"},
		{"presence:news:*", "namespaces.news.presence does not list scope (it lists: nothing)"},
		{"subscribe:room:*", "namespaces.room.subscribe does not list scope (it lists: users)"},
		{"publish:user:*", "namespaces.user.publish does not list scope (it lists: owner)"},
		{"publish:sports:*", `namespace "sports" is not configured; add namespaces.sports.publish: [scope]`},
		{"disconnect:room:*", "disconnect:user:<pattern>"},
		{"channels:room:*", ""}, // listing needs a configured namespace, no rule
		{"channels:sports:*", `namespace "sports" is not configured`},
		{"info:node:*", ""},
		{"info:room:*", "info:node:<pattern>"},
	} {
		err := r.CheckScope(tc.scope)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want honoured", tc.scope, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.scope, err, tc.want)
		}
	}
}
