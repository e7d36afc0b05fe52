package csrf

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestPreToken(t *testing.T) {
	rec := httptest.NewRecorder()
	tok := EnsurePre(rec, httptest.NewRequest("GET", "/login", nil))
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != PreCookie || !cookies[0].Secure || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("bad cookie %+v", cookies)
	}
	r := httptest.NewRequest("POST", "/login", nil)
	r.AddCookie(cookies[0])
	if err := CheckPre(r, tok); err != nil {
		t.Fatalf("own token refused: %v", err)
	}
	for _, bad := range []string{"", "x", NewSecret(), PreToken(NewSecret())} {
		if CheckPre(r, bad) == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
	// No cookie at all: refused even with a token that matches some cookie.
	if CheckPre(httptest.NewRequest("POST", "/login", nil), tok) == nil {
		t.Error("token without cookie accepted")
	}
}

func TestEqual(t *testing.T) {
	if Equal("", "") || Equal("a", "") || !Equal("abc", "abc") || Equal("abc", "abd") {
		t.Fatal("Equal is wrong")
	}
}
