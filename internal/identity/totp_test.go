package identity

import (
	"bytes"
	"encoding/base32"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// rfcSecret is the RFC 6238 appendix B SHA-1 seed "12345678901234567890".
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

func codeAt(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckTOTPRFCVector(t *testing.T) {
	// RFC 6238: at T=59 the 8-digit SHA-1 code is 94287082; 6 digits: 287082.
	step, ok := CheckTOTP(rfcSecret, "287082", time.Unix(59, 0), -1)
	if !ok || step != 1 {
		t.Fatalf("step=%d ok=%v, want 1 true", step, ok)
	}
	// RFC 6238: at T=1111111109, 07081804.
	if _, ok := CheckTOTP(rfcSecret, "081804", time.Unix(1111111109, 0), 0); !ok {
		t.Fatal("RFC vector at 1111111109 refused")
	}
}

func TestCheckTOTPWindow(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 10, 0, time.UTC)
	cur := now.Unix() / 30
	for _, tc := range []struct {
		name   string
		offset int64 // steps from now
		ok     bool
	}{
		{"current", 0, true},
		{"previous", -1, true},
		{"next", 1, true},
		{"two back", -2, false},
		{"two ahead", 2, false},
		{"ten back", -10, false},
	} {
		code := codeAt(t, rfcSecret, now.Add(time.Duration(tc.offset)*30*time.Second))
		step, ok := CheckTOTP(rfcSecret, code, now, 0)
		if ok != tc.ok {
			t.Errorf("%s: ok=%v, want %v", tc.name, ok, tc.ok)
		}
		if ok && step != cur+tc.offset {
			t.Errorf("%s: step %d, want %d", tc.name, step, cur+tc.offset)
		}
	}
}

// TestCheckTOTPReplay is I4: a code accepted once is refused afterwards, and
// so is any code from an earlier step.
func TestCheckTOTPReplay(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 10, 0, time.UTC)
	code := codeAt(t, rfcSecret, now)
	step, ok := CheckTOTP(rfcSecret, code, now, 0)
	if !ok {
		t.Fatal("fresh code refused")
	}
	if _, ok := CheckTOTP(rfcSecret, code, now, step); ok {
		t.Error("same code accepted twice")
	}
	if _, ok := CheckTOTP(rfcSecret, code, now.Add(20*time.Second), step); ok {
		t.Error("same code accepted again later in its window")
	}
	older := codeAt(t, rfcSecret, now.Add(-30*time.Second))
	if _, ok := CheckTOTP(rfcSecret, older, now, step); ok {
		t.Error("code of an older step accepted after a newer one")
	}
	next := codeAt(t, rfcSecret, now.Add(30*time.Second))
	if s, ok := CheckTOTP(rfcSecret, next, now, step); !ok || s != step+1 {
		t.Errorf("next step: %d %v, want %d true", s, ok, step+1)
	}
}

func TestCheckTOTPRefusesMalformed(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 10, 0, time.UTC)
	good := codeAt(t, rfcSecret, now)
	for _, code := range []string{
		"", "12345", "1234567", good + "0", good[:5], " " + good, good + "\n", good[:3] + " " + good[3:],
		"12345a", "abcdef", "+12345", "-12345", "12.345",
		"١٢٣٤٥٦", // Arabic-Indic digits
		"１２３４５６", // fullwidth digits
		"\x00\x00\x00\x00\x00\x00",
	} {
		if _, ok := CheckTOTP(rfcSecret, code, now, 0); ok {
			t.Errorf("code %q accepted", code)
		}
	}
	for _, secret := range []string{"", "!!!!", "not base32 at all"} {
		if _, ok := CheckTOTP(secret, good, now, 0); ok {
			t.Errorf("secret %q accepted", secret)
		}
	}
}

func TestNewTOTPSecret(t *testing.T) {
	key, err := NewTOTPSecret("wsguard", "alice")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(key.Secret())
	if err != nil || len(raw) != 20 {
		t.Fatalf("secret %d bytes (err %v), want 20", len(raw), err)
	}
	if key.Period() != 30 || key.Digits() != otp.DigitsSix || key.Algorithm() != otp.AlgorithmSHA1 {
		t.Fatalf("key params: period %d digits %v alg %v", key.Period(), key.Digits(), key.Algorithm())
	}
	u, err := url.Parse(key.URL())
	if err != nil || u.Scheme != "otpauth" || u.Query().Get("issuer") != "wsguard" || !strings.Contains(u.Path, "alice") {
		t.Fatalf("url %q", key.URL())
	}
	other, _ := NewTOTPSecret("wsguard", "alice")
	if other.Secret() == key.Secret() {
		t.Fatal("two secrets are equal")
	}
	// The secret works end to end with an authenticator's code.
	now := time.Now()
	if _, ok := CheckTOTP(key.Secret(), codeAt(t, key.Secret(), now), now, 0); !ok {
		t.Fatal("code from the new secret refused")
	}
}

func TestQRPNG(t *testing.T) {
	key, err := NewTOTPSecret("wsguard", "alice")
	if err != nil {
		t.Fatal(err)
	}
	b, err := QRPNG(key)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if img.Bounds().Dx() != qrSize {
		t.Fatalf("width %d, want %d", img.Bounds().Dx(), qrSize)
	}
}

// TestQRPNGIsTheKeysOwnImage: the PNG is pixel for pixel the QR code the
// otp library draws for the key's otpauth:// URL, so the server needs no
// second QR encoder and what an app scans is exactly the key's URL.
func TestQRPNGIsTheKeysOwnImage(t *testing.T) {
	key, err := NewTOTPSecret("wsguard", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	b, err := QRPNG(key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	want, err := key.Image(qrSize, qrSize)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bounds() != want.Bounds() {
		t.Fatalf("bounds %v, want the key's image %v", got.Bounds(), want.Bounds())
	}
	dark := 0
	for y := got.Bounds().Min.Y; y < got.Bounds().Max.Y; y++ {
		for x := got.Bounds().Min.X; x < got.Bounds().Max.X; x++ {
			g, _, _, _ := got.At(x, y).RGBA()
			w, _, _, _ := want.At(x, y).RGBA()
			if g != w {
				t.Fatalf("pixel (%d,%d) = %d, the key's image has %d", x, y, g, w)
			}
			if g == 0 {
				dark++
			}
		}
	}
	// A QR code, not a blank square.
	if area := qrSize * qrSize; dark < area/5 || dark > area*4/5 {
		t.Fatalf("%d of %d pixels dark: not a QR code", dark, qrSize*qrSize)
	}
}

// FuzzCheckTOTP: no code input panics, and only the six ASCII digits of a
// step within the window are ever accepted.
func FuzzCheckTOTP(f *testing.F) {
	now := time.Date(2026, 11, 22, 10, 0, 10, 0, time.UTC)
	f.Add(codeAt(f, rfcSecret, now), int64(0))
	f.Add(codeAt(f, rfcSecret, now), now.Unix()/30)
	f.Add("12345", int64(0))
	f.Add("1234567", int64(-5))
	f.Add("١٢٣٤٥٦", int64(0))
	f.Add("", int64(1<<62))
	f.Fuzz(func(t *testing.T, code string, lastStep int64) {
		step, ok := CheckTOTP(rfcSecret, code, now, lastStep)
		if !ok {
			return
		}
		if !sixDigits(code) {
			t.Fatalf("accepted non-6-digit code %q", code)
		}
		cur := now.Unix() / 30
		if step <= lastStep || step < cur-1 || step > cur+1 {
			t.Fatalf("accepted step %d (now %d, last %d)", step, cur, lastStep)
		}
		if want := codeAt(t, rfcSecret, time.Unix(step*30, 0)); want != code {
			t.Fatalf("accepted %q for step %d whose code is %q", code, step, want)
		}
	})
}
