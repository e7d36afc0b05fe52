package token

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/store"
)

func TestNewTicket(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		raw, hash, err := NewTicket()
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) != 43 || !TicketWellFormed(raw) {
			t.Fatalf("ticket %q is not 43 base64url characters", raw)
		}
		if hash != HashSecret(raw) || len(hash) != 64 || strings.Contains(hash, raw) {
			t.Fatalf("hash %q does not match HashSecret", hash)
		}
		if seen[raw] {
			t.Fatal("ticket repeated")
		}
		seen[raw] = true
	}
}

func TestHashSecret(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 test vector.
	if got := HashSecret("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashSecret(abc) = %s", got)
	}
}

func TestTicketWellFormed(t *testing.T) {
	raw, _, _ := NewTicket()
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{raw, true},
		{"", false},
		{raw[:42], false},
		{raw + "A", false},
		{raw[:42] + "=", false},
		{raw[:42] + "+", false},
		{raw[:42] + "/", false},
		{strings.Repeat(".", 43), false},
	} {
		if got := TicketWellFormed(tc.s); got != tc.want {
			t.Errorf("TicketWellFormed(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestTicketUsable(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	const site = "https://chat.example"
	browser := store.Ticket{Subject: "alice", Origin: site, ExpiresAt: now.Add(TicketTTL)}
	bearer := store.Ticket{Subject: "svc", ExpiresAt: now.Add(TicketTTL)}
	tests := []struct {
		name   string
		t      store.Ticket
		origin string
		at     time.Time
		want   error
	}{
		{"browser ticket, same origin", browser, site, now, nil},
		{"browser ticket, 1 s before expiry", browser, site, now.Add(TicketTTL - time.Second), nil},
		{"bearer ticket, no origin", bearer, "", now, nil},
		{"bearer ticket, any origin", bearer, "https://other.example", now, nil},
		{"browser ticket, other origin", browser, "https://evil.example", now, ErrTicketOrigin},
		{"browser ticket, no origin", browser, "", now, ErrTicketOrigin},
		{"browser ticket, other port", browser, site + ":8443", now, ErrTicketOrigin},
		{"browser ticket, other scheme", browser, "http://chat.example", now, ErrTicketOrigin},
		{"browser ticket, suffix look-alike", browser, site + ".evil.example", now, ErrTicketOrigin},
		{"browser ticket, null origin", browser, "null", now, ErrTicketOrigin},
		{"expired exactly at TTL", browser, site, now.Add(TicketTTL), ErrTicketExpired},
		{"expired after TTL", bearer, "", now.Add(TicketTTL + time.Second), ErrTicketExpired},
		{"expired and wrong origin", browser, "https://evil.example", now.Add(time.Hour), ErrTicketExpired},
		{"zero expiry", store.Ticket{Subject: "x"}, "", now, ErrTicketExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := TicketUsable(tc.t, tc.origin, tc.at)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
