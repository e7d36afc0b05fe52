package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/clock"
	"github.com/wsguard/wsguard/internal/store"
)

// newManager returns a Manager over a fresh SQLite store on a fake clock,
// recording every OnExpire call.
func newManager(t *testing.T) (*Manager, *clock.Fake, *expiries) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "wsguard.db"), store.SQLiteOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ex := &expiries{}
	return &Manager{Store: st, Clock: clk, OnExpire: ex.add}, clk, ex
}

type expiries struct {
	mu   sync.Mutex
	list []string // public id: reason
}

func (e *expiries) add(s store.Session, reason error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, s.PublicID+": "+reason.Error())
}

func (e *expiries) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.list
	e.list = nil
	slices.Sort(out)
	return out
}

func mustCreate(t *testing.T, m *Manager, u store.User, ip string) store.Session {
	t.Helper()
	_, s, err := m.Create(context.Background(), u, true, ip, "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func publicIDs(list []store.Session) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.PublicID)
	}
	slices.Sort(out)
	return out
}

// TestListExpires: the sessions page's list holds only live sessions; one
// past its idle or absolute lifetime is deleted when met and reported once.
func TestListExpires(t *testing.T) {
	m, clk, ex := newManager(t)
	ctx := context.Background()
	alice, err := m.Store.(store.Users).CreateUser(ctx, store.User{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	old := mustCreate(t, m, alice, "10.0.0.1") // will pass the absolute lifetime
	clk.Advance(11*time.Hour + 40*time.Minute)
	idle := mustCreate(t, m, alice, "10.0.0.2") // will pass the idle lifetime
	clk.Advance(10 * time.Minute)
	live := mustCreate(t, m, alice, "10.0.0.3")
	// Keep old in use so only its absolute lifetime ends it.
	if err := m.Store.TouchSession(ctx, old.IDHash, clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(20 * time.Minute) // old: 12 h 10 min; idle: 30 min unused; live: 20 min
	list, err := m.List(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := publicIDs(list); !slices.Equal(got, []string{live.PublicID}) {
		t.Fatalf("List = %v, want only the live session %v", got, live.PublicID)
	}
	want := []string{old.PublicID + ": " + ErrExpired.Error(), idle.PublicID + ": " + ErrIdle.Error()}
	slices.Sort(want)
	if got := ex.take(); !slices.Equal(got, want) {
		t.Fatalf("OnExpire calls %v, want %v", got, want)
	}
	for _, s := range []store.Session{old, idle} {
		if _, err := m.Store.SessionByHash(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired session %s still stored: %v", s.PublicID, err)
		}
	}
	if list, _ := m.List(ctx, alice.ID); len(list) != 1 || len(ex.take()) != 0 {
		t.Fatalf("second List = %v with more expiries", publicIDs(list))
	}
}

// TestSweep: Sweep deletes every user's expired sessions, whether or not
// anything reads them, reports each once with its reason, and keeps live ones.
func TestSweep(t *testing.T) {
	m, clk, ex := newManager(t)
	ctx := context.Background()
	alice, _ := m.Store.(store.Users).CreateUser(ctx, store.User{Name: "alice"})
	bob, _ := m.Store.(store.Users).CreateUser(ctx, store.User{Name: "bob"})
	a1 := mustCreate(t, m, alice, "10.0.0.1")
	b1 := mustCreate(t, m, bob, "10.0.0.2")
	clk.Advance(29 * time.Minute)
	b2 := mustCreate(t, m, bob, "10.0.0.3")
	if n, err := m.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("Sweep at 29 min = %d, %v; want 0", n, err)
	}
	clk.Advance(time.Minute) // a1 and b1 idle 30 min, b2 1 min
	if n, err := m.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("Sweep at 30 min = %d, %v; want 2", n, err)
	}
	want := []string{a1.PublicID + ": " + ErrIdle.Error(), b1.PublicID + ": " + ErrIdle.Error()}
	slices.Sort(want)
	if got := ex.take(); !slices.Equal(got, want) {
		t.Fatalf("OnExpire calls %v, want %v", got, want)
	}
	if list, _ := m.Store.ListSessions(ctx, bob.ID); !slices.Equal(publicIDs(list), []string{b2.PublicID}) {
		t.Fatalf("bob's stored sessions %v, want only %s", publicIDs(list), b2.PublicID)
	}
	if list, _ := m.Store.ListSessions(ctx, alice.ID); len(list) != 0 {
		t.Fatalf("alice's expired session still stored")
	}
}

// TestRotate: a rotated session has a new id and CSRF secret and the old
// id is gone; rotating a session that already ended creates nothing.
func TestRotate(t *testing.T) {
	m, _, _ := newManager(t)
	ctx := context.Background()
	alice, _ := m.Store.(store.Users).CreateUser(ctx, store.User{Name: "alice"})
	oldValue, old, err := m.Create(ctx, alice, false, "10.0.0.1", "ua")
	if err != nil {
		t.Fatal(err)
	}
	value, s, err := m.Rotate(ctx, old, alice, true)
	if err != nil {
		t.Fatal(err)
	}
	if value == oldValue || s.IDHash == old.IDHash || s.PublicID == old.PublicID || s.CSRFSecret == old.CSRFSecret || !s.TwoFADone {
		t.Fatalf("rotated session %+v keeps something of %+v", s, old)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: oldValue})
	if _, err := m.Lookup(ctx, r); !errors.Is(err, ErrUnknown) {
		t.Fatalf("old cookie after rotation: %v, want ErrUnknown", err)
	}
	// old ended already: a second rotation of it must not sign anyone in.
	if _, _, err := m.Rotate(ctx, old, alice, true); !errors.Is(err, ErrUnknown) {
		t.Fatalf("rotating an ended session = %v, want ErrUnknown", err)
	}
	if list, _ := m.Store.ListSessions(ctx, alice.ID); !slices.Equal(publicIDs(list), []string{s.PublicID}) {
		t.Fatalf("sessions after rotations: %v, want only %s", publicIDs(list), s.PublicID)
	}
}
