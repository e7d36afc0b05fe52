package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/token"
)

// TestAPIKeyCommands: add prints the key alone and stores only its hash;
// list shows names and scopes, never keys; revoke marks it and records a
// revocation for running servers; bad scopes are refused.
func TestAPIKeyCommands(t *testing.T) {
	dir := t.TempDir()
	run := apikeyRunner(t, dir, "namespaces:\n  news:\n    publish: [scope]\n")
	code, out, stderr := run("apikey", "add", "feed", "--scope", "publish:news:*", "--scope", "disconnect:user:*")
	if code != 0 {
		t.Fatalf("add: %d %s", code, stderr)
	}
	key := strings.TrimSuffix(out, "\n")
	if !token.APIKeyWellFormed(key) || strings.Count(out, "\n") != 1 {
		t.Fatalf("add printed %q, want the key alone", out)
	}
	for _, bad := range [][]string{
		{"apikey", "add", "x"},                                // no scope
		{"apikey", "add", "y", "--scope", "publish:news"},     // malformed
		{"apikey", "add", "z", "--scope", "admin:news:*"},     // unknown action
		{"apikey", "add", "w", "--scope", "publish:news:a*b"}, // inner wildcard
		{"apikey", "add", "Bad Name", "--scope", "publish:news:*"},
		{"apikey", "add", "feed", "--scope", "publish:news:*"}, // taken
		{"apikey", "revoke", "nobody"},
	} {
		if code, out, _ := run(bad...); code == 0 || out != "" {
			t.Errorf("%v: exit %d, stdout %q", bad, code, out)
		}
	}
	code, out, _ = run("apikey", "list")
	if code != 0 || !strings.Contains(out, "feed") || !strings.Contains(out, "publish:news:*,disconnect:user:*") || strings.Contains(out, key) {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, _, stderr := run("apikey", "revoke", "feed"); code != 0 {
		t.Fatalf("revoke: %s", stderr)
	}

	st, err := store.OpenSQLite(filepath.Join(dir, "wsguard.db"), store.SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	k, err := st.APIKeyByHash(ctx, token.HashSecret(key))
	if err != nil || k.Name != "feed" || !k.Revoked {
		t.Fatalf("stored key %+v %v", k, err)
	}
	revs, _ := st.RevocationsAfter(ctx, 0)
	if len(revs) != 1 || revs[0].User != "api:feed" {
		t.Fatalf("revocations %+v", revs)
	}
	for _, name := range []string{"wsguard.db", "audit.log"} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		if bytes.Contains(b, []byte(key)) {
			t.Errorf("the raw key is in %s", name)
		}
	}
}

// apikeyRunner runs the CLI with data_dir dir and the config file cfgYAML.
func apikeyRunner(t *testing.T, dir, cfgYAML string) func(args ...string) (int, string, string) {
	t.Helper()
	cfgPath := filepath.Join(dir, "wsguard.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"WSGUARD_CONFIG=" + cfgPath, "WSGUARD_DATA_DIR=" + dir, "WSGUARD_AUDIT_FILE=" + filepath.Join(dir, "audit.log")}
	return func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(args, strings.NewReader(""), &out, &errb, env)
		return code, out.String(), errb.String()
	}
}

// TestAPIKeyScopeNobodyHonours: the operator's command. A scope that no
// namespace rule honours would make a key that is refused on every use; add
// refuses it, stores nothing, and names the config key that would make it
// count. The default room namespace honours scope for publish.
func TestAPIKeyScopeNobodyHonours(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		dir := t.TempDir()
		// An operator who narrowed room to users only.
		run := apikeyRunner(t, dir, "namespaces:\n  room:\n    subscribe: [users]\n    publish: [users]\n")
		for _, tc := range []struct {
			scope, names string
		}{
			{"publish:room:*", "namespaces.room.publish"},
			{"subscribe:room:lobby", "namespaces.room.subscribe"},
			{"history:news:*", "namespaces.news.history"},
			{"presence:user:*", "namespaces.user.presence"},
			{"disconnect:room:*", "disconnect:user:<pattern>"},
		} {
			code, out, stderr := run("apikey", "add", "backend", "--scope", tc.scope)
			if code == 0 || out != "" {
				t.Errorf("%s: exit %d, stdout %q; want refused", tc.scope, code, out)
			}
			if !strings.Contains(stderr, tc.names) || !strings.Contains(stderr, tc.scope) {
				t.Errorf("%s: error %q does not name %s", tc.scope, stderr, tc.names)
			}
		}
		if code, out, _ := run("apikey", "list"); code != 0 || strings.Contains(out, "backend") {
			t.Fatalf("a refused key was stored: %q", out)
		}
	})
	t.Run("honoured", func(t *testing.T) {
		dir := t.TempDir()
		run := apikeyRunner(t, dir, "listen: localhost:8443\n") // the default namespaces
		for i, scope := range []string{"publish:room:*", "disconnect:user:*", "disconnect:api:feed"} {
			if code, out, stderr := run("apikey", "add", fmt.Sprintf("backend%d", i), "--scope", scope); code != 0 || !token.APIKeyWellFormed(strings.TrimSpace(out)) {
				t.Errorf("%s: exit %d %q %s", scope, code, out, stderr)
			}
		}
	})
}
