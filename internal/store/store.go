// Package store keeps what must survive a restart: users, sessions, API keys,
// one-time tickets and the per-channel message log.
//
// Store is a set of interfaces, one per concern (Log, Users, TwoFactor,
// Sessions, APIKeys, Tickets, Revocations, AuditHeads, Prefs), composed
// into one; SQLite (modernc.org/sqlite, no cgo) is the embedded default and
// PostgreSQL (OpenPostgres) lets several nodes share one store. Package
// storetest is the conformance suite both pass. Secrets are
// never stored in the clear: sessions, tickets, API keys and recovery codes
// are kept only as hashes computed by the caller.
//
// Durability: Publish returns only after the message is committed (fsync'd).
// Concurrent publishes are group-committed: many messages, one transaction.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors callers can test for with errors.Is.
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrUnavailable = errors.New("store unavailable")
)

// Message is one entry in a channel's log.
type Message struct {
	Channel string
	Offset  uint64 // per channel, strictly increasing, gap-free, from 1
	From    string
	TS      time.Time
	Data    json.RawMessage
	CID     string // client message id, optional; (From, CID) is unique within the dedupe window
}

// PublishResult is what Publish answers once the message is durable.
type PublishResult struct {
	Offset    uint64
	Duplicate bool // the (From, CID) pair was seen before: Offset is the first result, nothing stored
	Message   Message
}

// User is an account.
type User struct {
	ID           int64
	Name         string
	PasswordHash string // argon2id PHC string
	Admin        bool
	Disabled     bool
	Roles        []string
	TOTPSecret   string // base32; empty when 2FA is not enrolled
	TOTPLastStep int64  // last accepted time step, to refuse replays
	CreatedAt    time.Time
}

// Session is a signed-in browser session. ID is the hash of the cookie value.
type Session struct {
	IDHash     string // hex sha256 of the cookie value; the value itself is never stored
	PublicID   string // opaque id shown in /settings/sessions
	UserID     int64
	Username   string
	CSRFSecret string // per-session secret the CSRF token is derived from
	TwoFADone  bool   // false while the second factor is pending
	CreatedAt  time.Time
	LastSeen   time.Time
	IP         string
	UserAgent  string
}

// APIKey is a service credential, stored by hash.
type APIKey struct {
	ID        int64
	Name      string
	Hash      string
	Scopes    []string
	CreatedAt time.Time
	Revoked   bool
}

// Ticket is a one-time WebSocket credential, stored by hash.
type Ticket struct {
	Hash      string
	Subject   string // username or token subject
	Roles     []string
	Origin    string // the Origin that requested it; the handshake must come from it
	ExpiresAt time.Time

	// The credential the ticket was minted from, which the socket inherits.
	Kind        string    // "session" or "jwt"
	SessionHash string    // Kind session: the session's id hash
	CredExpires time.Time // Kind jwt: the token's exp
	// Channels, when non-nil, restricts the socket to these patterns (a
	// JWT's channels claim); an empty non-nil list allows none.
	Channels []string
}

// Revocation asks every node to close live sockets.
type Revocation struct {
	ID        int64
	SessionID string // public session id; empty: every socket of User
	User      string
	Reason    string
	CreatedAt time.Time
}

// Log is the per-channel message log: what the hub publishes through and
// what a connection replays from. Offsets are assigned by the store, per
// channel, strictly increasing and gap-free from 1, whichever node (or
// process) publishes.
type Log interface {
	// Publish appends m to its channel (m.Offset and m.TS are assigned) and
	// returns once durable. With a non-empty CID already seen for m.From
	// within the dedupe window, it returns the first result with Duplicate
	// set and stores nothing. Errors wrap ErrUnavailable when the database
	// cannot commit.
	Publish(ctx context.Context, m Message) (PublishResult, error)
	// Since returns messages of channel with offset > after, oldest first, at
	// most limit. complete is false when after is older than what is retained.
	Since(ctx context.Context, channel string, after uint64, limit int) (msgs []Message, complete bool, err error)
	// History returns up to limit messages with offset < before (0: latest), oldest first.
	History(ctx context.Context, channel string, before uint64, limit int) ([]Message, error)
	// Latest returns the channel's last offset (0 when empty).
	Latest(ctx context.Context, channel string) (uint64, error)
	// OnCommit sets fn to be told of every commit this store makes: the
	// newly stored (non-duplicate) messages, in offset order per channel,
	// before the Publish calls they answer return. It runs on the store's
	// committer and must not call Publish (that would deadlock). Set it
	// before the first Publish; nil stops the calls. Only this process's
	// commits are told: messages other nodes commit arrive through the
	// broker, and a reader that sees a gap fills it with Since.
	OnCommit(fn func([]Message))
}

// Users are the accounts.
type Users interface {
	CreateUser(ctx context.Context, u User) (User, error) // ErrExists on a taken name
	UserByName(ctx context.Context, name string) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	AnyAdmin(ctx context.Context) (bool, error)

	// The setters below each write only their own columns, in one
	// statement, so an action that read the user earlier (a password change
	// waiting on argon2, an enrolment waiting on the user's code) cannot
	// write back fields another action changed meanwhile: a concurrent
	// disable or role change stands. Each answers ErrNotFound for an
	// unknown user.

	// SetPassword replaces the password hash.
	SetPassword(ctx context.Context, userID int64, hash string) error
	// SetDisabled disables or enables the user.
	SetDisabled(ctx context.Context, userID int64, disabled bool) error
	// SetRoles replaces the user's roles.
	SetRoles(ctx context.Context, userID int64, roles []string) error
}

// TwoFactor is what the second factor keeps: the TOTP secret and the last
// step used (so a code works once, on every node), recovery codes, and an
// enrolment not yet confirmed.
type TwoFactor interface {
	// SetTOTP stores a new TOTP secret ("" removes it) and the last
	// accepted step that goes with it.
	SetTOTP(ctx context.Context, userID int64, secret string, lastStep int64) error
	// AcceptTOTPStep records step as used if it is newer than the last one; false means replay.
	AcceptTOTPStep(ctx context.Context, userID int64, step int64) (bool, error)

	SetRecoveryCodes(ctx context.Context, userID int64, hashes []string) error
	// UseRecoveryCode deletes the code with this hash; false when none matched.
	UseRecoveryCode(ctx context.Context, userID int64, hash string) (bool, error)

	// PendingTOTP returns the user's unconfirmed two-factor enrolment
	// secret, first storing fresh (valid until expires) when none is kept
	// or the kept one has expired by now. Sealed at rest like TOTPSecret.
	PendingTOTP(ctx context.Context, userID int64, fresh string, now, expires time.Time) (string, error)
	// PendingTOTPSecret returns the unconfirmed secret still valid at now;
	// ErrNotFound when none is.
	PendingTOTPSecret(ctx context.Context, userID int64, now time.Time) (string, error)
	// ClearPendingTOTP forgets the unconfirmed secret.
	ClearPendingTOTP(ctx context.Context, userID int64) error
}

// Sessions are signed-in browser sessions, kept by the hash of the cookie.
type Sessions interface {
	CreateSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, idHash string) (Session, error)
	// TouchSession records use of the session: LastSeen becomes seen unless
	// it is already later. Nothing else of the session is written.
	TouchSession(ctx context.Context, idHash string, seen time.Time) error
	DeleteSession(ctx context.Context, idHash string) error
	ListSessions(ctx context.Context, userID int64) ([]Session, error)
	// DeleteUserSessions deletes every session of the user except keepHash, returning the deleted ones.
	DeleteUserSessions(ctx context.Context, userID int64, keepHash string) ([]Session, error)
	// DeleteExpiredSessions deletes every session created at or before
	// createdBy or last seen at or before seenBy (past its absolute or idle
	// lifetime) and returns the deleted ones.
	DeleteExpiredSessions(ctx context.Context, createdBy, seenBy time.Time) ([]Session, error)
}

// APIKeys are service credentials, kept by hash.
type APIKeys interface {
	CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error)
	APIKeyByHash(ctx context.Context, hash string) (APIKey, error)
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, name string) error
}

// Tickets are one-time WebSocket credentials, kept by hash.
type Tickets interface {
	CreateTicket(ctx context.Context, t Ticket) error
	// TakeTicket deletes and returns the ticket: a second call, from any
	// process sharing the store, answers ErrNotFound.
	TakeTicket(ctx context.Context, hash string) (Ticket, error)
}

// Revocations tell running servers to close live sockets.
type Revocations interface {
	// AddRevocation records that live sockets of a session (public id) or,
	// with an empty SessionID, of a user must close. Servers poll these, so a
	// CLI command reaches a running server.
	AddRevocation(ctx context.Context, r Revocation) error
	// RevocationsAfter returns revocations with ID > after, oldest first.
	RevocationsAfter(ctx context.Context, after int64) ([]Revocation, error)
	// LastRevocationID is where a starting server begins polling.
	LastRevocationID(ctx context.Context) (int64, error)
}

// AuditHeads keep the signed head of each audit chain apart from its log.
type AuditHeads interface {
	// AuditHead returns the signed head of an audit chain (the last seq
	// written and a MAC over it), kept apart from the log file so that a
	// truncated or replaced log shows; (0, "") when none is kept yet.
	AuditHead(ctx context.Context, chain string) (seq uint64, sig string, err error)
	// SetAuditHead replaces the signed head of an audit chain.
	SetAuditHead(ctx context.Context, chain string, seq uint64, sig string) error
}

// Prefs is what the web UI keeps per user.
type Prefs interface {
	// Rooms returns the chat rooms the user saved; saved is false when the
	// user never saved any.
	Rooms(ctx context.Context, userID int64) (rooms []string, saved bool, err error)
	// SetRooms replaces the user's saved rooms (the caller validates them).
	SetRooms(ctx context.Context, userID int64, rooms []string) error
}

// Store is the whole persistence layer, every concern in one value: what
// the server wires and the CLI opens. Callers that use one concern take
// that interface instead. Every method is safe for concurrent use.
type Store interface {
	Log
	Users
	TwoFactor
	Sessions
	APIKeys
	Tickets
	Revocations
	AuditHeads
	Prefs

	// Ping reports whether the store can serve (readiness).
	Ping(ctx context.Context) error
	Close() error
}
