package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/token"
)

// The bench seats each subscriber as a user of its own unless told
// otherwise: one user for all hides every cost a server pays per distinct
// user (presence above all).
func TestSubscribersAreDistinctUsersByDefault(t *testing.T) {
	var o Options
	seen := map[string]bool{}
	for i := range 10000 {
		u := o.userFor(i)
		if seen[u] {
			t.Fatalf("subscriber %d shares user %q with another", i, u)
		}
		seen[u] = true
	}
	o.OneUser = true
	if o.userFor(0) != o.userFor(9999) {
		t.Fatalf("--one-user gave two users: %q, %q", o.userFor(0), o.userFor(9999))
	}
}

// What the bench mints must be what a wsguard node configured like the
// bench's config accepts: a JWT per user, verified by the server's own
// verifier, naming that user.
func TestMintedTokensAreAcceptedPerUser(t *testing.T) {
	secret := secretHex([]byte("0123456789abcdef0123456789abcdef"))
	path := filepath.Join(t.TempDir(), "jwt.secret")
	if err := os.WriteFile(path, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(config.JWT{Audience: benchAudience, Issuer: benchIssuer,
		Keys: []config.JWTKey{{KID: "bench", Alg: token.AlgHS256, SecretFile: path}}}, token.VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := &minter{secret: secret, kid: "bench", issuer: benchIssuer, audience: benchAudience}
	for _, user := range []string{"u000000", "u009999"} {
		raw, err := m.mint(user)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := v.Verify(context.Background(), raw)
		if err != nil {
			t.Fatalf("server refused the bench's token for %s: %v", user, err)
		}
		if cl.Subject != user {
			t.Fatalf("token names %q, want %q", cl.Subject, user)
		}
	}
	// A token from another key is still refused: the bench gets no
	// shortcut past the credential check.
	other := &minter{secret: secretHex([]byte("another secret of thirty-two byt")), kid: "bench", issuer: benchIssuer, audience: benchAudience}
	raw, _ := other.mint("u000000")
	if _, err := v.Verify(context.Background(), raw); err == nil {
		t.Fatal("a token signed with another secret was accepted")
	}
}

// Memory is reported as a difference of medians, never as a negative
// figure per connection; a difference within the readings' spread is
// marked noisy. (A small run once reported −46.8 KiB per connection.)
func TestIdleMemoryNeverNegative(t *testing.T) {
	const MiB = 1 << 20
	for _, tc := range []struct {
		name          string
		before, after memory
		wantKiB       float64
		wantNoisy     bool
	}{
		{"shrank", memory{median: 40 * MiB, spread: 2 * MiB}, memory{median: 31 * MiB, spread: MiB}, 0, true},
		{"within the spread", memory{median: 30 * MiB, spread: MiB}, memory{median: 32 * MiB, spread: MiB}, 2 * 1024 / 100.0, true},
		{"clear growth", memory{median: 30 * MiB, spread: MiB / 10}, memory{median: 40 * MiB, spread: MiB / 10}, 10 * 1024 / 100.0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kib, noise, noisy := perConn(tc.before, tc.after, 100)
			if kib < 0 || kib != tc.wantKiB || noisy != tc.wantNoisy {
				t.Fatalf("perConn = %.2f KiB (±%.2f), noisy %v; want %.2f, noisy %v", kib, noise, noisy, tc.wantKiB, tc.wantNoisy)
			}
			r := Result{Users: 100, IdleKiB: kib, IdleNoiseKiB: noise, IdleNoisy: noisy}
			if txt := r.idleText(); strings.Contains(txt, "-") {
				t.Fatalf("negative memory in output: %q", txt)
			}
			if noisy && !strings.Contains(r.idleText(), "not measurable") && !strings.Contains(r.idleText(), "noisy") {
				t.Fatalf("a noisy figure is not said to be: %q", r.idleText())
			}
		})
	}
}

// The output says how the run was made: how many users, which publisher,
// which client library.
func TestOutputSaysUsersPublisherAndClient(t *testing.T) {
	one := Result{Conns: 200, Users: 1, Publisher: PublishSocket, Client: ClientCoder}.Markdown()
	for _, want := range []string{"| users | 1: one user for all subscribers (--one-user) |", "socket (", "/ coder |"} {
		if !strings.Contains(one, want) {
			t.Fatalf("output lacks %q:\n%s", want, one)
		}
	}
	many := Result{Conns: 200, Users: 200, Publisher: PublishHTTP, Client: ClientGorilla}.Markdown()
	for _, want := range []string{"| users | 200: each subscriber its own user |", "http (service API, one call at a time)", "/ gorilla |"} {
		if !strings.Contains(many, want) {
			t.Fatalf("output lacks %q:\n%s", want, many)
		}
	}
}

// An unknown publisher or client is refused by name, with what is allowed.
func TestUnknownPublisherOrClientRefused(t *testing.T) {
	for _, tc := range []struct {
		opt  Options
		want string
	}{
		{Options{Binary: "x", Publisher: "grpc"}, `unknown publisher "grpc" (allowed: http, socket)`},
		{Options{Binary: "x", Client: "nhooyr"}, `unknown client "nhooyr" (allowed: gorilla, coder)`},
	} {
		tc.opt.defaults()
		err := tc.opt.check()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("check() = %v, want %q", err, tc.want)
		}
	}
}
