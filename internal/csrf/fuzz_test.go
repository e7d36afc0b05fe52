package csrf

import (
	"net/http/httptest"
	"testing"
)

// FuzzCheckPre feeds arbitrary Cookie headers and presented tokens: no
// panic, and a token is accepted only when it is the one derived from a
// well-formed pre-session cookie the request carries.
func FuzzCheckPre(f *testing.F) {
	good := NewSecret()
	f.Add(PreCookie+"="+good, PreToken(good))
	f.Add(PreCookie+"="+good, "")
	f.Add(PreCookie+"=; "+PreCookie+"="+good, PreToken(good))
	f.Add(PreCookie+"=\"quoted\"", "x")
	f.Add("a=b; c", PreToken(""))
	f.Fuzz(func(t *testing.T, cookie, token string) {
		r := httptest.NewRequest("POST", "/login", nil)
		r.Header.Set("Cookie", cookie)
		err := CheckPre(r, token)
		if err != nil {
			return
		}
		c, cerr := r.Cookie(PreCookie)
		if cerr != nil || len(c.Value) != 43 || token != PreToken(c.Value) {
			t.Fatalf("accepted token %q for cookie header %q", token, cookie)
		}
	})
}

// FuzzEqual: constant-time comparison agrees with ==, and never accepts empty.
func FuzzEqual(f *testing.F) {
	f.Add("", "")
	f.Add("a", "a")
	f.Add("abc", "abd")
	f.Fuzz(func(t *testing.T, got, want string) {
		if Equal(got, want) != (got == want && got != "") {
			t.Fatalf("Equal(%q, %q) = %v", got, want, Equal(got, want))
		}
	})
}
