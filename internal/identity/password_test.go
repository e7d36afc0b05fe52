package identity

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// cheapHasher returns a Hasher with tiny argon2id costs so that tests which
// exercise the semaphore, not the hash, stay fast under -race. Production
// code cannot get these parameters: NewHasher raises them to the OWASP floor.
func cheapHasher(maxConc int, wait time.Duration) *Hasher {
	h := NewHasher(HasherOptions{MaxConcurrent: maxConc, Wait: wait})
	h.p = params{memory: 64, time: 1, threads: 1, keyLen: keyLen}
	return h
}

const goodPassword = "correct horse battery staple"

func TestHashVerifyDefaults(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(HasherOptions{})
	phc, err := h.Hash(ctx, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("phc %q does not carry the OWASP parameters", phc)
	}
	ok, err := h.Verify(ctx, phc, goodPassword)
	if err != nil || !ok {
		t.Fatalf("right password: ok=%v err=%v", ok, err)
	}
	ok, err = h.Verify(ctx, phc, goodPassword+"!")
	if err != nil || ok {
		t.Fatalf("wrong password: ok=%v err=%v", ok, err)
	}
	if h.NeedsRehash(phc) {
		t.Error("fresh hash reported as needing a rehash")
	}
}

func TestHashSaltsDiffer(t *testing.T) {
	h := cheapHasher(0, 0)
	a, _ := h.Hash(context.Background(), goodPassword)
	b, _ := h.Hash(context.Background(), goodPassword)
	if a == b {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

func TestNewHasherRaisesWeakParams(t *testing.T) {
	h := NewHasher(HasherOptions{Memory: 1, Time: 1, Threads: 0})
	if h.p.memory != defaultMemory || h.p.time != defaultTime || h.p.threads != 1 {
		t.Fatalf("weak options not raised: %+v", h.p)
	}
	h = NewHasher(HasherOptions{Memory: 1 << 30, Time: 99, Threads: 200})
	if h.p.memory != maxMemory || h.p.time != maxTime || h.p.threads != maxThreads {
		t.Fatalf("absurd options not bounded: %+v", h.p)
	}
	if cap(NewHasher(HasherOptions{MaxConcurrent: -3}).sem) != defaultMaxConcurrent {
		t.Fatal("negative MaxConcurrent not defaulted")
	}
}

func TestVerifyRefusesTamperedAndAbsurd(t *testing.T) {
	ctx := context.Background()
	h := cheapHasher(0, 0)
	phc, err := h.Hash(ctx, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(phc, '$')
	salt := phc[strings.LastIndexByte(phc[:i], '$')+1 : i]
	key := phc[i+1:]
	flip := func(s string) string {
		c := byte('A')
		if s[0] == 'A' {
			c = 'B'
		}
		return string(c) + s[1:]
	}
	// Tampered salt or key still parses but must not verify.
	for name, bad := range map[string]string{
		"key flipped":  phc[:i+1] + flip(key),
		"salt flipped": strings.Replace(phc, "$"+salt+"$", "$"+flip(salt)+"$", 1),
		"time changed": strings.Replace(phc, ",t=1,", ",t=2,", 1),
	} {
		ok, err := h.Verify(ctx, bad, goodPassword)
		if ok {
			t.Errorf("%s: verified (err=%v)", name, err)
		}
	}

	head := "$argon2id$v=19$m=64,t=1,p=1$"
	for _, tc := range []struct{ name, phc string }{
		{"empty", ""},
		{"argon2i", strings.Replace(phc, "$argon2id$", "$argon2i$", 1)},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234"},
		{"version 16", strings.Replace(phc, "v=19", "v=16", 1)},
		{"memory over 1 GiB", strings.Replace(phc, "m=64", "m=1048577", 1)},
		{"memory 4 TiB", strings.Replace(phc, "m=64", "m=4294967295", 1)},
		{"memory overflow", strings.Replace(phc, "m=64", "m=99999999999999999999", 1)},
		{"memory below 8p", strings.Replace(phc, "m=64", "m=7", 1)},
		{"time 11", strings.Replace(phc, "t=1", "t=11", 1)},
		{"time 0", strings.Replace(phc, "t=1", "t=0", 1)},
		{"threads 17", strings.Replace(phc, "p=1$", "p=17$", 1)},
		{"threads 0", strings.Replace(phc, "p=1$", "p=0$", 1)},
		{"leading zero", strings.Replace(phc, "m=64", "m=064", 1)},
		{"sign", strings.Replace(phc, "m=64", "m=+64", 1)},
		{"params reordered", strings.Replace(phc, "m=64,t=1,p=1", "t=1,m=64,p=1", 1)},
		{"padding", phc + "="},
		{"extra field", phc + "$AAAA"},
		{"missing key", phc[:i]},
		{"short salt", head + "AAAA$" + key},
		{"short key", head + salt + "$AAAA"},
		{"not base64", head + salt + "$" + strings.Repeat("!", 43)},
		{"huge", head + strings.Repeat("A", 100000) + "$" + key},
	} {
		ok, err := h.Verify(ctx, tc.phc, goodPassword)
		if ok || !errors.Is(err, ErrInvalidHash) {
			t.Errorf("%s: ok=%v err=%v, want ErrInvalidHash", tc.name, ok, err)
		}
		if !h.NeedsRehash(tc.phc) {
			t.Errorf("%s: NeedsRehash false for an unusable hash", tc.name)
		}
	}
}

func TestBusy(t *testing.T) {
	h := cheapHasher(1, time.Millisecond)
	phc, err := h.Hash(context.Background(), goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	h.sem <- struct{}{} // hold the only slot
	ctx := context.Background()
	if _, err := h.Hash(ctx, goodPassword); !errors.Is(err, ErrBusy) {
		t.Errorf("Hash: %v, want ErrBusy", err)
	}
	if _, err := h.Verify(ctx, phc, goodPassword); !errors.Is(err, ErrBusy) {
		t.Errorf("Verify: %v, want ErrBusy", err)
	}
	if _, err := h.VerifyDummy(ctx, goodPassword); !errors.Is(err, ErrBusy) {
		t.Errorf("VerifyDummy: %v, want ErrBusy", err)
	}

	// A context that ends first also gives ErrBusy, long before Wait.
	slow := cheapHasher(1, time.Hour)
	slow.sem <- struct{}{}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := slow.Verify(cctx, phc, goodPassword); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want ErrBusy wrapping context.Canceled", err)
	}
	// An already-cancelled context never hashes, even with a free slot.
	<-slow.sem
	if _, err := slow.Hash(cctx, goodPassword); !errors.Is(err, ErrBusy) {
		t.Errorf("cancelled before start: %v, want ErrBusy", err)
	}

	// Once the slot frees, work proceeds.
	<-h.sem
	if ok, err := h.Verify(ctx, phc, goodPassword); err != nil || !ok {
		t.Errorf("after release: ok=%v err=%v", ok, err)
	}
}

// TestConcurrencyBounded is I7: 200 parallel logins all complete, and never
// more than MaxConcurrent hashes run at once.
func TestConcurrencyBounded(t *testing.T) {
	const maxConc, n = 4, 200
	h := cheapHasher(maxConc, time.Minute)
	ctx := context.Background()
	phc, err := h.Hash(ctx, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ok bool
			var err error
			switch {
			case i%3 == 0:
				_, err = h.VerifyDummy(ctx, goodPassword)
				ok = true
			default:
				ok, err = h.Verify(ctx, phc, goodPassword)
			}
			if err == nil && !ok {
				err = errors.New("right password refused")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := h.peak.load(); p < 1 || p > maxConc {
		t.Fatalf("peak concurrency %d, want 1..%d", p, maxConc)
	}
	if a := h.active.load(); a != 0 {
		t.Fatalf("%d computations still counted as active", a)
	}
}

func TestValidatePassword(t *testing.T) {
	for _, tc := range []struct {
		name string
		pw   string
		want error
	}{
		{"12 ascii", "abcdefghijkl", nil},
		{"12 runes of 2 bytes", strings.Repeat("é", 12), nil},
		{"256 runes of 3 bytes", strings.Repeat("€", 256), nil},
		{"passphrase", goodPassword, nil},
		{"empty", "", ErrPasswordTooShort},
		{"11 ascii", "abcdefghijk", ErrPasswordTooShort},
		{"11 runes, 22 bytes", strings.Repeat("é", 11), ErrPasswordTooShort},
		{"257 ascii", strings.Repeat("a", 257), ErrPasswordTooLong},
		{"257 runes", strings.Repeat("€", 257), ErrPasswordTooLong},
		{"1 MB", strings.Repeat("a", 1<<20), ErrPasswordTooLong},
		{"invalid utf-8", "abcdefghijkl\xff", ErrPasswordNotUTF8},
		{"lone surrogate", "abcdefghijkl\xed\xa0\x80", ErrPasswordNotUTF8},
	} {
		if err := ValidatePassword(tc.pw); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if !strings.Contains(ErrPasswordTooShort.Error(), "12") || !strings.Contains(ErrPasswordTooLong.Error(), "256") {
		t.Error("error messages do not state the rule")
	}
}

// TestHugePasswordRefusedBeforeHashing holds every slot: if any of these
// calls tried to hash they would fail with ErrBusy instead of answering.
func TestHugePasswordRefusedBeforeHashing(t *testing.T) {
	h := cheapHasher(1, time.Hour)
	ctx := context.Background()
	phc, err := h.Hash(ctx, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	h.sem <- struct{}{}
	huge := strings.Repeat("a", 1<<20)
	if _, err := h.Hash(ctx, huge); !errors.Is(err, ErrPasswordTooLong) {
		t.Errorf("Hash: %v", err)
	}
	if ok, err := h.Verify(ctx, phc, huge); ok || err != nil {
		t.Errorf("Verify: ok=%v err=%v", ok, err)
	}
	if ok, err := h.VerifyDummy(ctx, huge); ok || err != nil {
		t.Errorf("VerifyDummy: ok=%v err=%v", ok, err)
	}
	if _, err := h.Hash(ctx, "short"); !errors.Is(err, ErrPasswordTooShort) {
		t.Errorf("Hash short: %v", err)
	}
}

func TestVerifyDummy(t *testing.T) {
	h := cheapHasher(0, 0)
	ok, err := h.VerifyDummy(context.Background(), goodPassword)
	if ok || err != nil {
		t.Fatalf("ok=%v err=%v, want false, nil", ok, err)
	}
	if h.peak.load() != 1 {
		t.Fatal("VerifyDummy did not do the hashing work")
	}
}

func TestNeedsRehash(t *testing.T) {
	weak := cheapHasher(0, 0)
	phc, err := weak.Hash(context.Background(), goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !NewHasher(HasherOptions{}).NeedsRehash(phc) {
		t.Error("m=64,t=1 hash not flagged for rehash under OWASP parameters")
	}
	if weak.NeedsRehash(phc) {
		t.Error("hash flagged under its own parameters")
	}
}

// FuzzParsePHC: no input panics, and anything accepted is within bounds and
// is the canonical encoding of what was parsed.
func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=1048577,t=2,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$$")
	f.Add("$argon2i$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidHash) {
				t.Fatalf("error %v does not wrap ErrInvalidHash", err)
			}
			return
		}
		if p.memory > maxMemory || p.time > maxTime || p.threads > maxThreads || p.threads < 1 || p.time < 1 || p.memory < 8*uint32(p.threads) {
			t.Fatalf("accepted out-of-bounds params %+v", p)
		}
		if int(p.keyLen) != len(key) || len(salt) < minSaltLen || len(key) < minKeyLen {
			t.Fatalf("accepted bad lengths: salt %d key %d", len(salt), len(key))
		}
		if got := encodePHC(p, salt, key); got != s {
			t.Fatalf("not canonical: %q re-encodes as %q", s, got)
		}
	})
}
