package check

import (
	"slices"
	"strings"
	"testing"
)

func TestIsCredentialProtocol(t *testing.T) {
	for p, want := range map[string]bool{
		"wsguard.v1":                 false,
		"app.v1":                     false,
		"chat":                       false,
		"wsguard.csrf.0123456789abc": true,
		"x-token.s3cretvalue":        true,
		"abcdefgh":                   true, // one part of 8 characters
		"abcdefg.1234567":            false,
	} {
		if got := isCredentialProtocol(p); got != want {
			t.Errorf("isCredentialProtocol(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestMaskProtocol(t *testing.T) {
	for p, want := range map[string]string{
		"wsguard.csrf.0123456789abc": "wsguard.csrf.012***",
		"x-token.s3cretvalue":        "x-token.s3c***",
		"wsguard.v1":                 "wsguard.v1",
	} {
		if got := maskProtocol(p); got != want {
			t.Errorf("maskProtocol(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestDerivedOrigins(t *testing.T) {
	if got, want := siblingOrigins("https://chat.example.com"), []string{"https://chat.example.com:444", "https://wsguard-check.example.com"}; !slices.Equal(got, want) {
		t.Errorf("siblings %v, want %v", got, want)
	}
	if got, want := siblingOrigins("http://127.0.0.1:8080"), []string{"http://127.0.0.1:8081"}; !slices.Equal(got, want) {
		t.Errorf("siblings %v, want %v", got, want)
	}
	if got, want := siblingOrigins("https://example.com"), []string{"https://example.com:444"}; !slices.Equal(got, want) {
		t.Errorf("siblings of a registrable domain %v, want %v (no sibling subdomain of a bare domain)", got, want)
	}
	got := foreignOrigins("https://chat.example.com")
	want := []string{"https://wsguard-check.invalid", "https://chat.example.com.wsguard-check.invalid", "https://wsguardcheckchat.example.com"}
	if !slices.Equal(got, want) {
		t.Errorf("foreign %v, want %v", got, want)
	}
}

func TestParseOrigin(t *testing.T) {
	for _, o := range []string{"https://a.example", "http://localhost:8080", "https://a.example/"} {
		if _, err := parseOrigin(o); err != nil {
			t.Errorf("parseOrigin(%q): %v", o, err)
		}
	}
	for _, o := range []string{"a.example", "ftp://a.example", "https://a.example/path", "https://a.example?x=1", "https://u@a.example", "null", ""} {
		if _, err := parseOrigin(o); err == nil {
			t.Errorf("parseOrigin(%q) accepted", o)
		}
	}
}

func TestMaxAge(t *testing.T) {
	for v, want := range map[string]int64{
		"max-age=63072000; includeSubDomains": 63072000,
		"includeSubDomains; MAX-AGE=\"300\"":  300,
		"max-age=0":                           0,
		"includeSubDomains":                   -1,
		"max-age=soon":                        -1,
		"":                                    -1,
	} {
		if got := maxAge(v); got != want {
			t.Errorf("maxAge(%q) = %d, want %d", v, got, want)
		}
	}
}

// FuzzMaxAge: the HSTS value comes from the scanned server; reading it
// never panics and never reports an age it does not contain.
func FuzzMaxAge(f *testing.F) {
	for _, s := range []string{"max-age=63072000; includeSubDomains", "max-age=\"1\"", ";;=", "max-age=-5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if n := maxAge(v); n >= 0 && !strings.Contains(strings.ToLower(v), "max-age=") {
			t.Fatalf("maxAge(%q) = %d from a value without max-age", v, n)
		}
	})
}

func TestGrade(t *testing.T) {
	f := func(ids ...ID) []Finding {
		var out []Finding
		for _, id := range ids {
			out = append(out, newFinding(id, "x"))
		}
		return out
	}
	for _, tc := range []struct {
		fs   []Finding
		want string
	}{
		{nil, "A"},
		{f(Rate, UTF8), "A"},
		{f(Size, Rate), "B"},
		{f(Plaintext, Size), "C"},
		{f(Plaintext, TLSOld), "D"},
		{f(OriginForeign), "F"},
	} {
		if got := grade(tc.fs); got != tc.want {
			t.Errorf("grade(%v) = %s, want %s", ids(tc.fs), got, tc.want)
		}
	}
	for _, id := range order {
		if k, ok := catalog[id]; !ok || k.fix == "" || k.title == "" || k.severity == 0 {
			t.Errorf("%s: missing from the catalogue or incomplete", id)
		}
	}
}
