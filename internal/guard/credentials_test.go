package guard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/session"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/token"
)

// fakeStore answers the reads the credential checks make, each with its
// own error; any other store method panics (the embedded nil Store).
type fakeStore struct {
	store.Store
	sessErr, userErr, keyErr, ticketErr error
	sess                                store.Session
	user                                store.User
	ticket                              store.Ticket
}

func (f *fakeStore) SessionByHash(context.Context, string) (store.Session, error) {
	return f.sess, f.sessErr
}
func (f *fakeStore) UpdateSession(context.Context, store.Session) error { return nil }
func (f *fakeStore) DeleteSession(context.Context, string) error        { return nil }
func (f *fakeStore) UserByID(context.Context, int64) (store.User, error) {
	return f.user, f.userErr
}
func (f *fakeStore) APIKeyByHash(context.Context, string) (store.APIKey, error) {
	return store.APIKey{Name: "feed"}, f.keyErr
}
func (f *fakeStore) TakeTicket(context.Context, string) (store.Ticket, error) {
	return f.ticket, f.ticketErr
}
func (f *fakeStore) CreateTicket(context.Context, store.Ticket) error { return f.ticketErr }

// TestCredentialsStoreFailure: whatever the kind, a store that cannot
// answer is 503 store_unavailable with the store's error kept in Err (for
// the log) and out of Message (for the client); a verdict from the store
// (not found) is 401. Only 401 and 403 count toward a ban.
func TestCredentialsStoreFailure(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	down := fmt.Errorf("store: read: %w: disk I/O error", store.ErrUnavailable)
	live := store.Session{IDHash: "h", UserID: 1, TwoFADone: true, CreatedAt: now, LastSeen: now}
	alice := store.User{ID: 1, Name: "alice"}
	sessTicket := store.Ticket{Subject: "alice", Kind: "session", SessionHash: "h", ExpiresAt: now.Add(time.Second)}
	cookie := Presented{Kind: KindSession, Raw: strings.Repeat("A", 43)}
	tk := Presented{Kind: KindTicket, Raw: strings.Repeat("A", 43)}
	key := Bearer(token.APIKeyPrefix + strings.Repeat("A", 43))

	tests := []struct {
		name   string
		p      Presented
		st     fakeStore
		status int
		reason string
	}{
		{"session: store down", cookie, fakeStore{sessErr: down}, 503, "store_unavailable"},
		{"session: user read down", cookie, fakeStore{sess: live, userErr: down}, 503, "store_unavailable"},
		{"session: unknown", cookie, fakeStore{sessErr: store.ErrNotFound}, 401, "session_invalid"},
		{"session: user gone", cookie, fakeStore{sess: live, userErr: store.ErrNotFound}, 401, "user_disabled"},
		{"session: none sent", Presented{Kind: KindSession}, fakeStore{sessErr: down}, 401, "session_missing"},
		{"session: good", cookie, fakeStore{sess: live, user: alice}, 0, ""},
		{"ticket: store down", tk, fakeStore{ticketErr: down}, 503, "store_unavailable"},
		{"ticket: its session unreadable", tk, fakeStore{ticket: sessTicket, sessErr: down}, 503, "store_unavailable"},
		{"ticket: its user unreadable", tk, fakeStore{ticket: sessTicket, sess: live, userErr: down}, 503, "store_unavailable"},
		{"ticket: unknown", tk, fakeStore{ticketErr: store.ErrNotFound}, 401, "ticket_unknown"},
		{"ticket: its session ended", tk, fakeStore{ticket: sessTicket, sessErr: store.ErrNotFound}, 401, "session_invalid"},
		{"ticket: good", tk, fakeStore{ticket: sessTicket, sess: live, user: alice}, 0, ""},
		{"apikey: store down", key, fakeStore{keyErr: down}, 503, "store_unavailable"},
		{"apikey: unknown", key, fakeStore{keyErr: store.ErrNotFound}, 401, "apikey_unknown"},
		{"apikey: good", key, fakeStore{}, 0, ""},
		{"jwt: none configured", Bearer("e30.e30.x"), fakeStore{}, 401, "jwt_disabled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st
			c := &Credentials{
				Sessions: &session.Manager{Store: &st, Clock: fixedClock(now)},
				Store:    &st,
				Now:      func() time.Time { return now },
			}
			id, rf := c.Check(context.Background(), tc.p)
			if tc.status == 0 {
				if rf != nil {
					t.Fatalf("refused: %v", rf)
				}
				if id.Kind != tc.p.Kind || id.Principal.Name == "" {
					t.Fatalf("identity %+v", id)
				}
				return
			}
			if rf == nil {
				t.Fatalf("accepted as %+v, want %d %s", id, tc.status, tc.reason)
			}
			if rf.Status != tc.status || rf.Reason != tc.reason {
				t.Fatalf("%d %s, want %d %s", rf.Status, rf.Reason, tc.status, tc.reason)
			}
			if tc.status == http.StatusServiceUnavailable {
				if !errors.Is(rf, store.ErrUnavailable) {
					t.Errorf("the store's error is not kept: Err = %v", rf.Err)
				}
				if strings.Contains(rf.Message, "disk") || strings.Contains(rf.Message, "store:") {
					t.Errorf("the store's error reached the client message %q", rf.Message)
				}
				if rf.RetryAfter <= 0 {
					t.Error("no Retry-After")
				}
			}
		})
	}
}

type fixedClock time.Time

func (f fixedClock) Now() time.Time { return time.Time(f) }

// TestMintTicketStoreFailure: a ticket the store cannot take is 503 with
// the store's error kept; an API key cannot mint one at all.
func TestMintTicketStoreFailure(t *testing.T) {
	down := fmt.Errorf("store: create ticket: %w: database is locked", store.ErrUnavailable)
	st := &fakeStore{ticketErr: down}
	c := &Credentials{Store: st}
	sess := &store.Session{IDHash: "h"}
	if _, rf := c.MintTicket(context.Background(), Identity{Kind: KindSession, Session: sess}, ""); rf == nil || rf.Status != 503 || !errors.Is(rf, store.ErrUnavailable) {
		t.Fatalf("store down: %v, want 503 keeping the store's error", rf)
	}
	st.ticketErr = nil
	if raw, rf := c.MintTicket(context.Background(), Identity{Kind: KindSession, Session: sess}, ""); rf != nil || !token.TicketWellFormed(raw) {
		t.Fatalf("store up: %q %v", raw, rf)
	}
	if _, rf := c.MintTicket(context.Background(), Identity{Kind: KindAPIKey}, ""); rf == nil || rf.Status != http.StatusForbidden {
		t.Fatalf("API key: %v, want 403", rf)
	}
}
