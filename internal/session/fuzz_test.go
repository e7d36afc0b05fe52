package session

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/wsguard/wsguard/internal/store"
)

// lookupStore records the hashes it is asked for and knows no session.
type lookupStore struct {
	store.Store
	asked []string
}

func (s *lookupStore) SessionByHash(_ context.Context, h string) (store.Session, error) {
	s.asked = append(s.asked, h)
	return store.Session{}, store.ErrNotFound
}

// FuzzLookupCookie feeds arbitrary Cookie headers to session lookup: no
// panic, a clear error, and the store is asked only for the hash of a
// 43-character cookie value (anything else never reaches the database).
func FuzzLookupCookie(f *testing.F) {
	f.Add(CookieName + "=" + randomString(32))
	f.Add(CookieName + "=")
	f.Add(CookieName + "=" + "A" + randomString(32))
	f.Add(CookieName + "=\"" + randomString(32) + "\"")
	f.Add("x=1; " + CookieName + "=a;b")
	f.Add("")
	f.Fuzz(func(t *testing.T, header string) {
		st := &lookupStore{}
		m := &Manager{Store: st}
		r := httptest.NewRequest("GET", "/ws", nil)
		r.Header.Set("Cookie", header)
		_, err := m.Lookup(context.Background(), r)
		if !errors.Is(err, ErrNoSession) && !errors.Is(err, ErrUnknown) {
			t.Fatalf("Lookup(%q) = %v, want ErrNoSession or ErrUnknown", header, err)
		}
		c, cerr := r.Cookie(CookieName)
		switch {
		case len(st.asked) == 0:
		case len(st.asked) > 1 || cerr != nil || len(c.Value) != 43 || st.asked[0] != HashID(c.Value):
			t.Fatalf("store asked %q for cookie header %q", st.asked, header)
		}
	})
}
