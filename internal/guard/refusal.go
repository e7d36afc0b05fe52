package guard

import (
	"net/http"
	"time"
)

// Refusal is a handshake or API request answered without the credential
// being accepted. What the client sees (Status, Message, RetryAfter) is kept
// apart from what the server records: Reason goes to the audit log and the
// metrics, Err to the server's log only (a store error names tables and
// files that are nobody else's business).
type Refusal struct {
	Status     int
	Reason     string // audit reason, e.g. "origin_not_allowed"
	Message    string // what the client is told
	RetryAfter time.Duration
	Err        error // the underlying error, for the log; nil for a plain verdict
}

// Refuse is the one constructor of a Refusal. cause is the error behind it,
// or nil when the refusal is a verdict on what the client sent.
func Refuse(status int, reason, msg string, cause error) *Refusal {
	return &Refusal{Status: status, Reason: reason, Message: msg, Err: cause}
}

func (r *Refusal) Error() string {
	if r.Err != nil {
		return r.Reason + ": " + r.Err.Error()
	}
	return r.Reason
}

// Unwrap returns the underlying error, so errors.Is sees a store failure
// through the refusal.
func (r *Refusal) Unwrap() error { return r.Err }

// UnavailableRetryAfter is the Retry-After sent when the store cannot
// answer a credential check: long enough not to hammer a recovering
// database, short enough that a reconnecting client is back in seconds.
const UnavailableRetryAfter = 5 * time.Second

// unavailable answers a credential check the store could not make. It is
// 503, so it never counts toward an IP ban (only 401 and 403 do): the
// client did nothing wrong and may retry the same credential.
func unavailable(cause error) *Refusal {
	rf := Refuse(http.StatusServiceUnavailable, "store_unavailable", "service unavailable, try again later", cause)
	rf.RetryAfter = UnavailableRetryAfter
	return rf
}
