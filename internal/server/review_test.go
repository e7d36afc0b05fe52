package server

// Tests for the findings of the security review: each plays the attacker
// (what must now be refused or closed) and the honest user (what must still
// work). Each would fail on the code before its fix.

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/config"
)

// loginStatus posts one login attempt as client IP ip with a pre-session
// CSRF token already fetched; safe from any goroutine (no t.Fatal).
func (b *browser) loginStatus(name, password, csrfToken, ip string) (int, error) {
	form := url.Values{"username": {name}, "password": {password}, "csrf_token": {csrfToken}}
	req, _ := http.NewRequest("POST", b.ts.url+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.ts.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestReviewLoginParallelGuesses: 120 wrong passwords posted at once (one
// per IP, so only the account key can stop them) get at most the 5 free
// guesses checked; the rest are 429 without hashing. Before reservations,
// all passed the check while argon2 ran for the others (107 in the PoC).
// The owner gets in once the window passes; an oversized password takes the
// same path and counts as a failure.
func TestReviewLoginParallelGuesses(t *testing.T) {
	ts, clk := startAccounts(t, func(c *config.Config) {
		c.Identity.MaxHashing = 8
	})
	ts.addUser("alice", pw, false)
	ts.addUser("bob", pw, false)
	attacker := ts.newBrowser()
	tok := attacker.formToken("/login")

	const n = 120
	statuses := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ip := "10.20." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250+1)
			statuses[i], errs[i] = attacker.loginStatus("alice", "wrong password "+strconv.Itoa(i), tok, ip)
		}()
	}
	close(start)
	wg.Wait()
	counts := map[int]int{}
	for i, st := range statuses {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		counts[st]++
	}
	// 503 (hasher busy) is not a checked guess either; it costs no failure.
	if counts[http.StatusUnauthorized] > 5 || counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests]+counts[http.StatusServiceUnavailable] != n {
		t.Fatalf("parallel guesses: %v, want at most 5 × 401 (checked), the rest 429", counts)
	}
	if got := counterValue(ts.srv.Metrics().Logins.WithLabelValues("failed")); got != float64(counts[http.StatusUnauthorized]) || got > 5 {
		t.Fatalf("%v failed logins counted, want %d ≤ 5", got, counts[http.StatusUnauthorized])
	}

	// The owner, once the window passes, signs in (and that clears the count).
	clk.Advance(16 * time.Minute)
	if r := ts.newBrowser().password("alice", pw, "10.30.0.1"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner after the window: %d, want 303", r.StatusCode)
	}

	// A password over 1024 bytes is refused unhashed but counted like any
	// failure: five of them, then even the right password waits.
	long := strings.Repeat("x", 1025)
	b := ts.newBrowser()
	for i := range 5 {
		if r := b.password("bob", long, "10.40.0."+strconv.Itoa(i+1)); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("long password %d: %d, want 401", i, r.StatusCode)
		}
	}
	if r := b.password("bob", pw, "10.40.1.1"); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after 5 oversized passwords: %d, want 429", r.StatusCode)
	}
	clk.Advance(2 * time.Second)
	if r := b.password("bob", pw, "10.40.1.1"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob after the delay: %d, want 303", r.StatusCode)
	}
}
