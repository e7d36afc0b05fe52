package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/broker"
	"github.com/wsguard/wsguard/internal/broker/brokertest"
)

// TestCLIPublishesRevocationsOnRedis: with broker: redis://..., the
// commands that end a user's sessions also publish the revocation on
// Redis, so every node closes the sockets at once (and not only at its
// next poll of the store). An API key revocation goes the same way.
func TestCLIPublishesRevocationsOnRedis(t *testing.T) {
	u := brokertest.RedisURL(t)
	dir := t.TempDir()
	run := apikeyRunner(t, dir, "broker: \""+u+"\"\n")
	listener, err := broker.NewRedis(u, broker.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	got := make(chan broker.Event, 8)
	listener.Subscribe(func(e broker.Event) {
		if e.Kind != broker.KindResync { // the listener's own link coming up
			got <- e
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for listener.Ping(ctx) != nil && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}

	var out, errb bytes.Buffer
	env := []string{"WSGUARD_CONFIG=" + filepath.Join(dir, "wsguard.yaml"), "WSGUARD_DATA_DIR=" + dir, "WSGUARD_AUDIT_FILE=" + filepath.Join(dir, "audit.log")}
	if code := Main([]string{"user", "add", "alice", "--password-stdin"}, strings.NewReader("correct horse battery staple\n"), &out, &errb, env); code != 0 {
		t.Fatalf("user add: %d %s", code, errb.String())
	}
	for _, tc := range []struct {
		args   []string
		user   string
		reason string
	}{
		{[]string{"user", "disable", "alice"}, "alice", "user disabled"},
		{[]string{"session", "revoke", "--user", "alice"}, "alice", "sessions revoked by admin"},
		{[]string{"apikey", "add", "feed", "--scope", "publish:room:*"}, "", ""},
		{[]string{"apikey", "revoke", "feed"}, "api:feed", "api key revoked"},
	} {
		if code, _, stderr := run(tc.args...); code != 0 {
			t.Fatalf("%v: %d %s", tc.args, code, stderr)
		}
		if tc.user == "" {
			continue
		}
		select {
		case e := <-got:
			if e.Kind != broker.KindRevoke || e.User != tc.user || e.Reason != tc.reason {
				t.Fatalf("%v published %+v, want a revocation of %s (%s)", tc.args, e, tc.user, tc.reason)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v published nothing on Redis", tc.args)
		}
	}
}
