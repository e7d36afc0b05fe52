package identity_test

import (
	"context"
	"fmt"
	"time"

	"github.com/wsguard/wsguard/internal/identity"
)

func ExampleHasher() {
	ctx := context.Background()
	h := identity.NewHasher(identity.HasherOptions{}) // OWASP argon2id, 4 concurrent hashes
	phc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		panic(err)
	}
	ok, _ := h.Verify(ctx, phc, "correct horse battery staple")
	wrong, _ := h.Verify(ctx, phc, "Tr0ub4dor&3-and-more")
	fmt.Println(ok, wrong)
	// Output: true false
}

func ExampleValidatePassword() {
	fmt.Println(identity.ValidatePassword("hunter2"))
	// Output: password must be at least 12 characters
}

func ExampleCheckTOTP() {
	// RFC 6238 test seed; the code for T=59 s is 287082.
	const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	step, ok := identity.CheckTOTP(secret, "287082", time.Unix(59, 0), -1)
	fmt.Println(step, ok)
	// The caller stores step; the same code is then refused.
	_, again := identity.CheckTOTP(secret, "287082", time.Unix(59, 0), step)
	fmt.Println(again)
	// Output:
	// 1 true
	// false
}

func ExampleHashRecoveryCode() {
	fmt.Println(identity.HashRecoveryCode("ABCDE-FGHJK") == identity.HashRecoveryCode("abcdefghjk"))
	// Output: true
}
