// Package token verifies and mints the non-cookie credentials wsguard
// accepts at the WebSocket handshake: JSON Web Tokens (from configured keys
// or a JWKS URL), one-time tickets and API keys.
//
// # Threat model
//
// Every byte of a presented credential is attacker-controlled. The package
// therefore:
//
//   - fixes the algorithm per key: a key is chosen by the token's kid (a
//     plain map lookup, never a path or URL), and the token must use exactly
//     that key's algorithm, so "alg":"none" and RS256/HS256 confusion (an
//     HMAC computed with the RSA public key as the secret) are refused;
//   - requires exp, aud (containing jwt.audience), iss (equal to jwt.issuer)
//     and a non-empty sub, honours nbf and iat, and allows at most 60 s of
//     clock skew (jwt.leeway);
//   - refuses a token longer than MaxTokenBytes, or with other than three
//     segments, before decoding anything, so a megabyte of dots costs a
//     length check and nothing else;
//   - fetches JWKS only from the configured jwt.jwks_url, never from a URL in
//     the token (jku, x5u, jwk and x5c headers are ignored), with a timeout,
//     a 1 MiB body cap and at most one refresh per 30 s, so random kids cannot
//     turn wsguard into a flood against the key host;
//   - accepts only asymmetric keys from JWKS (RSA ≥ 2048 bit, EC P-256,
//     Ed25519): a symmetric "oct" key published in a JWK set is ignored;
//   - stores tickets and API keys only as hashes (HashSecret).
//
// Every error Verify returns means "not authenticated" (HTTP 401 / close
// 4001); the sentinel it wraps (ErrMalformed, ErrUnknownKey, ErrBadSignature,
// ErrExpired, ErrNotYetValid, ErrInvalid) is for the log and the audit
// reason, never for the client. Errors never contain the token itself.
//
// What it does not do: it does not check revocation of individual JWTs (there
// is no jti deny list; keep token lifetimes short), and it cannot tell whether
// a JWKS host has been compromised.
//
// # Concurrency
//
// A Verifier is safe for concurrent use by many goroutines. Configured keys
// are immutable after NewVerifier; the JWKS key set is swapped atomically and
// at most one fetch is in flight at a time. The ticket and API-key helpers are
// pure functions.
package token
