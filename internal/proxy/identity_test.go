package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// TestSignMatchesContract recomputes the signature the way docs/PROXY.md
// tells an upstream to: hex HMAC-SHA256 over the five values joined by
// newlines.
func TestSignMatchesContract(t *testing.T) {
	now := time.Unix(1700000000, 0)
	h, err := Sign(testSecret, Identity{User: "alice", Roles: []string{"ops", "dev"}, Credential: "jwt", Expires: time.Unix(1700000600, 0)}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{HeaderUser: "alice", HeaderRoles: "ops,dev", HeaderCredential: "jwt", HeaderExpires: "1700000600", HeaderTimestamp: "1700000000"}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	m := hmac.New(sha256.New, testSecret)
	m.Write([]byte("alice\nops,dev\njwt\n1700000600\n1700000000"))
	if got := h.Get(HeaderSignature); got != hex.EncodeToString(m.Sum(nil)) {
		t.Errorf("signature %s does not match the documented construction", got)
	}
	id, err := Verify(testSecret, h, now.Add(10*time.Second), 30*time.Second)
	if err != nil || id.User != "alice" || len(id.Roles) != 2 || id.Credential != "jwt" || id.Expires.Unix() != 1700000600 {
		t.Fatalf("Verify = %+v, %v", id, err)
	}
	noExp, _ := Sign(testSecret, Identity{User: "bob", Credential: "session"}, now)
	if noExp.Get(HeaderExpires) != "0" || noExp.Get(HeaderRoles) != "" {
		t.Errorf("no expiry and no roles: expires %q roles %q", noExp.Get(HeaderExpires), noExp.Get(HeaderRoles))
	}
}

// TestVerifyRefuses: a changed value, another key, a stale timestamp, and
// missing headers are refused.
func TestVerifyRefuses(t *testing.T) {
	now := time.Unix(1700000000, 0)
	good, _ := Sign(testSecret, Identity{User: "alice", Credential: "session"}, now)
	for name, c := range map[string]struct {
		h   func() http.Header
		key []byte
		at  time.Time
	}{
		"user changed": {func() http.Header { h := good.Clone(); h.Set(HeaderUser, "admin"); return h }, testSecret, now},
		"roles added":  {func() http.Header { h := good.Clone(); h.Set(HeaderRoles, "admin"); return h }, testSecret, now},
		"other key":    {good.Clone, []byte("another secret of thirty-two b!!"), now},
		"stale":        {good.Clone, testSecret, now.Add(time.Minute)},
		"future":       {good.Clone, testSecret, now.Add(-time.Minute)},
		"no signature": {func() http.Header { h := good.Clone(); h.Del(HeaderSignature); return h }, testSecret, now},
		"not hex":      {func() http.Header { h := good.Clone(); h.Set(HeaderSignature, "zz"); return h }, testSecret, now},
		"no headers":   {func() http.Header { return http.Header{} }, testSecret, now},
	} {
		if _, err := Verify(c.key, c.h(), c.at, 30*time.Second); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// TestSignRefusesUnrepresentable: a newline in a name would let it forge
// the next signed field; a comma inside a role would split it.
func TestSignRefusesUnrepresentable(t *testing.T) {
	for _, id := range []Identity{
		{User: "alice\nadmin", Credential: "jwt"},
		{User: "alice", Roles: []string{"a,b"}, Credential: "jwt"},
		{User: "alice", Roles: []string{"a\r"}, Credential: "jwt"},
	} {
		if _, err := Sign(testSecret, id, time.Now()); !errors.Is(err, ErrUnrepresentable) {
			t.Errorf("Sign(%q) = %v, want ErrUnrepresentable", id, err)
		}
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	_ = os.WriteFile(short, []byte("too short\n"), 0o600)
	if _, err := LoadSecret(short); err == nil {
		t.Error("a 9-byte secret was accepted")
	}
	nl := filepath.Join(dir, "nl")
	_ = os.WriteFile(nl, append(append([]byte{}, testSecret...), '\n'), 0o600)
	if b, err := LoadSecret(nl); err != nil || string(b) != string(testSecret) {
		t.Errorf("trailing newline not ignored: %q %v", b, err)
	}
	made := filepath.Join(dir, "sub", "identity.key")
	b, created, err := EnsureSecret(made)
	if err != nil || !created || len(b) != MinSecretBytes {
		t.Fatalf("EnsureSecret: %d bytes, created %v, %v", len(b), created, err)
	}
	if fi, _ := os.Stat(made); fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v, want 0600", fi.Mode().Perm())
	}
	again, created, err := EnsureSecret(made)
	if err != nil || created || string(again) != string(b) {
		t.Errorf("second EnsureSecret made a new secret: created %v, %v", created, err)
	}
}

func TestProtocols(t *testing.T) {
	r, _ := http.NewRequest("GET", "/ws", nil)
	r.Header.Add("Sec-WebSocket-Protocol", "wsguard.v1, wsguard.csrf.abc")
	r.Header.Add("Sec-WebSocket-Protocol", "chat.v1,wsguard.ticket.xyz, mqtt")
	if got := ForwardedProtocols(r); len(got) != 2 || got[0] != "chat.v1" || got[1] != "mqtt" {
		t.Errorf("forwarded %q, want [chat.v1 mqtt]", got)
	}
	if Answer(r, "mqtt") != "mqtt" || Answer(r, "") != Subprotocol {
		t.Error("Answer does not relay the upstream's choice or fall back to wsguard.v1")
	}
	r.Header.Set("Sec-WebSocket-Protocol", "chat.v1")
	if Answer(r, "") != "" {
		t.Error("Answer chose wsguard.v1 that the client did not offer")
	}
}

func FuzzVerify(f *testing.F) {
	good, _ := Sign(testSecret, Identity{User: "alice", Credential: "session"}, time.Unix(1700000000, 0))
	f.Add(good.Get(HeaderUser), good.Get(HeaderRoles), good.Get(HeaderTimestamp), good.Get(HeaderSignature))
	f.Fuzz(func(t *testing.T, user, roles, ts, sig string) {
		h := http.Header{}
		h.Set(HeaderUser, user)
		h.Set(HeaderRoles, roles)
		h.Set(HeaderCredential, "session")
		h.Set(HeaderExpires, "0")
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		id, err := Verify(testSecret, h, time.Unix(1700000000, 0), 30*time.Second)
		if err == nil && (id.User != "alice" || roles != "" || ts != good.Get(HeaderTimestamp)) {
			t.Fatalf("verified a header set it did not sign: %q", h)
		}
	})
}
