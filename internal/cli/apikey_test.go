package cli

import (
	"bytes"
	"context"
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
	env := []string{"WSGUARD_DATA_DIR=" + dir, "WSGUARD_AUDIT_FILE=" + filepath.Join(dir, "audit.log")}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(args, strings.NewReader(""), &out, &errb, env)
		return code, out.String(), errb.String()
	}
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
