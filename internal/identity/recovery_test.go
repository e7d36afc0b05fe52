package identity

import (
	"regexp"
	"testing"
)

func TestNewRecoveryCodes(t *testing.T) {
	codes, hashes, err := NewRecoveryCodes()
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 10 || len(hashes) != 10 {
		t.Fatalf("%d codes, %d hashes, want 10", len(codes), len(hashes))
	}
	format := regexp.MustCompile(`^[2-9a-km-np-z]{5}-[2-9a-km-np-z]{5}$`)
	seen := map[string]bool{}
	for i, c := range codes {
		if !format.MatchString(c) {
			t.Errorf("code %q does not match xxxxx-xxxxx without 0, 1, l, o", c)
		}
		if seen[c] {
			t.Errorf("code %q repeated", c)
		}
		seen[c] = true
		if hashes[i] != HashRecoveryCode(c) {
			t.Errorf("hash %d does not match its code", i)
		}
		if hashes[i] == c {
			t.Error("hash is the code")
		}
	}
	again, _, _ := NewRecoveryCodes()
	for _, c := range again {
		if seen[c] {
			t.Errorf("code %q issued twice across calls", c)
		}
	}
}

func TestHashRecoveryCode(t *testing.T) {
	base := HashRecoveryCode("abcde-fghjk")
	if len(base) != 64 {
		t.Fatalf("hash %q is not hex sha256", base)
	}
	for _, same := range []string{"abcdefghjk", "ABCDE-FGHJK", "abcde fghjk", " abc-de-fghjk ", "AbCdEfGhJk"} {
		if HashRecoveryCode(same) != base {
			t.Errorf("%q does not normalise to abcdefghjk", same)
		}
	}
	for _, other := range []string{"abcde-fghjm", "abcdefghj", "abcde_fghjk", ""} {
		if HashRecoveryCode(other) == base {
			t.Errorf("%q hashes like abcdefghjk", other)
		}
	}
}
