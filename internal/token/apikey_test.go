package token

import (
	"strings"
	"testing"
)

func TestNewAPIKey(t *testing.T) {
	raw, hash, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, "wsg_") || len(raw) != 4+43 || !APIKeyWellFormed(raw) {
		t.Fatalf("key %q does not look like wsg_ + 43 base64url characters", raw)
	}
	if !LooksLikeAPIKey(raw) {
		t.Fatal("LooksLikeAPIKey(new key) = false")
	}
	if hash != HashSecret(raw) {
		t.Fatal("hash is not HashSecret(raw)")
	}
	raw2, _, _ := NewAPIKey()
	if raw2 == raw {
		t.Fatal("key repeated")
	}
}

func TestLooksLikeAPIKey(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"wsg_abc", true},
		{"eyJhbGciOiJIUzI1NiJ9.e30.AA", false},
		{"WSG_abc", false},
		{"", false},
		{"wsg", false},
	} {
		if got := LooksLikeAPIKey(tc.s); got != tc.want {
			t.Errorf("LooksLikeAPIKey(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
	raw, _, _ := NewAPIKey()
	for _, bad := range []string{"wsg_", "wsg_abc", raw + "x", raw[:len(raw)-1] + "!", strings.Replace(raw, "wsg_", "wsk_", 1)} {
		if APIKeyWellFormed(bad) {
			t.Errorf("APIKeyWellFormed(%q) = true", bad)
		}
	}
}

func TestValidateScope(t *testing.T) {
	ok := []string{
		"publish:news:*",
		"subscribe:room:lobby",
		"history:room:lobby",
		"presence:room:*",
		"disconnect:user:*",
		"channels:room:*",
		"info:node:*",
		"publish:news:sport-*",
		"publish:a:x",
		"publish:n_1-x:A.b@c=d_e-f",
		"publish:" + strings.Repeat("a", 32) + ":" + strings.Repeat("x", 128),
	}
	bad := []string{
		"",
		"publish",
		"publish:news",
		"publish:news:",
		"admin:news:*",
		"Publish:news:*",
		"publish:News:*",
		"publish:1news:*",
		"publish:" + strings.Repeat("a", 33) + ":x",
		"publish:news:**",
		"publish:news:*x",
		"publish:news:a*b",
		"publish:news:a:b",
		"publish:news:../x",
		"publish:news:a..*",
		"publish:news:a b",
		"publish:news:a\n",
		"publish:news:é",
		"publish:*:*",
		"*:news:*",
		"publish:news:" + strings.Repeat("x", 129),
	}
	for _, s := range ok {
		if err := ValidateScope(s); err != nil {
			t.Errorf("ValidateScope(%q) = %v, want ok", s, err)
		}
	}
	for _, s := range bad {
		if err := ValidateScope(s); err == nil {
			t.Errorf("ValidateScope(%q) accepted", s)
		}
	}
}

func TestScopeAllows(t *testing.T) {
	for _, tc := range []struct {
		scope, action, channel string
		want                   bool
	}{
		{"publish:news:*", "publish", "news:today", true},
		{"publish:news:*", "publish", "room:x", false}, // SECURITY.md K5
		{"publish:news:*", "subscribe", "news:today", false},
		{"publish:news:*", "publish", "newsx:today", false},
		{"publish:news:sport-*", "publish", "news:sport-1", true},
		{"publish:news:sport-*", "publish", "news:weather", false},
		{"history:room:lobby", "history", "room:lobby", true},
		{"history:room:lobby", "history", "room:lobby2", false},
		{"publish:news:**", "publish", "news:x", false}, // invalid scope grants nothing
		{"publish:news:*", "publish", "news", false},
	} {
		if got := ScopeAllows(tc.scope, tc.action, tc.channel); got != tc.want {
			t.Errorf("ScopeAllows(%q, %q, %q) = %v, want %v", tc.scope, tc.action, tc.channel, got, tc.want)
		}
	}
}

func FuzzValidateScope(f *testing.F) {
	for _, s := range []string{"publish:news:*", "subscribe:room:lobby", "publish:news:a..*", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateScope(s) != nil {
			return
		}
		if strings.Count(s, ":") != 2 || strings.Count(s, "*") > 1 || strings.Contains(s, "..") {
			t.Fatalf("accepted %q", s)
		}
	})
}
