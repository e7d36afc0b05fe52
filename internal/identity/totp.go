package identity

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"image/png"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: the RFC 6238 defaults every authenticator app supports.
const (
	totpPeriod     = 30 // seconds per step
	totpDigits     = 6
	totpSecretSize = 20 // bytes, 160 bits as RFC 4226 recommends
	// totpSkew is how many steps either side of now are accepted, for clock
	// drift and the seconds a person takes to type.
	totpSkew = 1
	// qrSize is the PNG's width and height in pixels.
	qrSize = 256
)

// NewTOTPSecret makes a fresh TOTP key (SHA-1, 6 digits, 30 s, 20 random
// bytes) for account at issuer. Store key.Secret() only after the user has
// confirmed it with a valid code.
func NewTOTPSecret(issuer, account string) (*otp.Key, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      totpPeriod,
		SecretSize:  totpSecretSize,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, fmt.Errorf("totp secret: %w", err)
	}
	return key, nil
}

// QRPNG renders the key's otpauth:// URL as a PNG QR code, qrSize pixels
// square. It is drawn locally: sending the URL (which holds the secret) to
// a QR web service would hand the second factor to a third party. The
// image is the otp library's own (key.Image), so no second QR encoder is
// linked.
func QRPNG(key *otp.Key) ([]byte, error) {
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return nil, fmt.Errorf("totp qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("totp qr code: %w", err)
	}
	return buf.Bytes(), nil
}

// CheckTOTP reports whether code is the TOTP for secret at now, one step of
// skew either side, and if so which step it matched. A code must be exactly
// six ASCII digits. Steps at or before lastStep are refused, so a code
// accepted once is never accepted again (I4): the caller persists the
// returned step (store.AcceptTOTPStep, which also closes the race between
// two simultaneous uses). Comparisons are constant time and all candidate
// steps are always computed, so timing says nothing about which one matched.
func CheckTOTP(secret, code string, now time.Time, lastStep int64) (step int64, ok bool) {
	if !sixDigits(code) {
		return 0, false
	}
	opts := hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	cur := floorDiv(now.Unix(), totpPeriod)
	for s := cur - totpSkew; s <= cur+totpSkew; s++ {
		if s < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(s), opts)
		if err != nil {
			return 0, false // secret is not valid base32
		}
		match := subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1
		// Keep the newest matching step that is not a replay; the loop runs
		// to the end either way.
		if match && s > lastStep {
			step, ok = s, true
		}
	}
	return step, ok
}

func sixDigits(code string) bool {
	if len(code) != totpDigits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
