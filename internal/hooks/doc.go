// Package hooks puts the application's own backend in the loop.
//
// Decision hooks ask the backend, over HTTPS, whether to allow a
// connection (after the handshake checks pass), a subscription or a
// publish. The backend may answer with extra roles (connect) or amended
// data (publish). Each question has a timeout, and anything but a clear
// yes — a no, an error status, a malformed answer, a timeout — is a no:
// the hooks fail closed.
//
// Webhooks tell the backend of joins, leaves and connection ends. They
// go through a bounded queue drained by one goroutine, so delivery to
// sockets never waits for the backend: when the queue is full the oldest
// event is dropped and counted. A failed webhook is retried with
// exponential backoff and jitter, a bounded number of times.
//
// Every request, question or webhook, is signed: the header
// Wsguard-Signature carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" where
// the MAC is over "<t>.<body>" with the shared secret. Verify is the
// receiving side's check; it refuses a bad or missing signature and a
// timestamp outside the tolerance (a replayed request).
//
// # Threat model
//
// The backend's URL is configured, never taken from a client; plain http
// is allowed only to loopback and only when the operator says so. A
// forged request to the backend is refused by Verify; a slow or dead
// backend costs each decision at most the timeout, and never delays
// deliveries. Answers are bounded in size and validated (roles by the
// role grammar, data as JSON within the message size limit).
package hooks
