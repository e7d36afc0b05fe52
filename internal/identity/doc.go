// Package identity holds the credential primitives behind browser sign-in:
// argon2id password hashes, TOTP second factors (RFC 6238) and recovery
// codes. It speaks no HTTP and touches no store; callers decide what to
// persist and what to tell the client.
//
// # Threat model
//
//   - Stolen database: passwords are stored only as argon2id PHC strings with
//     OWASP parameters or stronger (m=19 MiB, t=2, p=1, 16-byte salt); recovery
//     codes only as SHA-256 of 50-bit random codes; TOTP secrets are stored by
//     the caller and are the one secret that must be protected at rest.
//   - Online guessing: CheckTOTP accepts one step either side of now and never
//     the same or an older step twice (the caller persists the returned step
//     with store.AcceptTOTPStep), so a code seen over a shoulder or in a log is
//     useless once used. Attempt throttling is the caller's job.
//   - User enumeration by timing (SECURITY.md I2): Hasher.VerifyDummy performs the
//     same argon2id work as Verify for a user that does not exist.
//   - Hashing exhaustion (SECURITY.md I7): every argon2id computation holds a slot
//     of a semaphore (Hasher.MaxConcurrent, default 4), so memory is bounded
//     at MaxConcurrent × m (about 80 MiB by default); callers that cannot get a
//     slot within HasherOptions.Wait get ErrBusy and should answer 429/503.
//     Passwords over 256 characters are refused before any hashing, and PHC
//     strings with absurd parameters (m > 1 GiB, t > 10, p > 16) are refused
//     so a tampered row cannot become a denial of service.
//
// Gaps knowingly left: login throttling, session handling and the storage of
// TOTP secrets live elsewhere (internal/ratelimit, internal/session,
// internal/store).
//
// # Concurrency
//
// A Hasher is safe for concurrent use by any number of goroutines; that is
// its point. The package-level functions are pure and safe for concurrent use.
package identity
