package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/identity"
	"github.com/wsguard/wsguard/internal/store"
)

// ValidateUsername checks a username: 1 to 32 characters from
// [a-z0-9_.-], starting with a letter or digit. Usernames appear in channel
// names (user:<name>), logs and pages, so the alphabet is kept small.
func ValidateUsername(name string) error {
	if len(name) < 1 || len(name) > 32 {
		return errors.New("username must be 1 to 32 characters")
	}
	for i, c := range name {
		ok := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '_' || c == '.' || c == '-'))
		if !ok {
			return fmt.Errorf("username %q: use lowercase letters, digits, and _ . - after the first character", name)
		}
	}
	return nil
}

// CreateUser validates and stores a new user (used by the CLI and tests).
func CreateUser(ctx context.Context, st store.Store, h *identity.Hasher, name, password string, admin bool) (store.User, error) {
	if err := ValidateUsername(name); err != nil {
		return store.User{}, err
	}
	if err := identity.ValidatePassword(password); err != nil {
		return store.User{}, err
	}
	hash, err := h.Hash(ctx, password)
	if err != nil {
		return store.User{}, err
	}
	u, err := st.CreateUser(ctx, store.User{Name: name, PasswordHash: hash, Admin: admin})
	if errors.Is(err, store.ErrExists) {
		return store.User{}, fmt.Errorf("user %q already exists", name)
	}
	return u, err
}

// Account actions shared by the CLI and the server. Each acts on the store
// only: it ends the user's sessions there and records a revocation, which
// every running server turns into closed sockets (4001) within a second
// (pollRevocations). Each records one audit event on al.

// SetUserDisabled disables or enables the user; disabling ends every
// session and live socket of the user.
func SetUserDisabled(ctx context.Context, st store.Store, al *audit.Log, name string, disabled bool) error {
	u, err := st.UserByName(ctx, name)
	if err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	// Only the flag is written: a password change or enrolment in flight
	// cannot undo it, nor this undo them.
	if err := st.SetDisabled(ctx, u.ID, disabled); err != nil {
		return err
	}
	typ := "user.enabled"
	if disabled {
		typ = "user.disabled"
		if _, err := st.DeleteUserSessions(ctx, u.ID, ""); err != nil {
			return err
		}
		if err := st.AddRevocation(ctx, store.Revocation{User: u.Name, Reason: "user disabled"}); err != nil {
			return err
		}
	}
	al.Record(audit.Event{Type: typ, Reason: "cli", User: u.Name})
	return nil
}

// ResetTwoFactor removes the user's TOTP secret and recovery codes and ends
// every session and live socket: the next sign-in enrols again.
func ResetTwoFactor(ctx context.Context, st store.Store, al *audit.Log, name string) error {
	u, err := st.UserByName(ctx, name)
	if err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	if err := st.SetTOTP(ctx, u.ID, "", 0); err != nil {
		return err
	}
	if err := st.SetRecoveryCodes(ctx, u.ID, nil); err != nil {
		return err
	}
	if _, err := st.DeleteUserSessions(ctx, u.ID, ""); err != nil {
		return err
	}
	if err := st.AddRevocation(ctx, store.Revocation{User: u.Name, Reason: "two-factor reset"}); err != nil {
		return err
	}
	al.Record(audit.Event{Type: "2fa.reset", Reason: "cli", User: u.Name})
	return nil
}

// RevokeUserSessions ends every session and live socket of the user and
// returns how many sessions it ended.
func RevokeUserSessions(ctx context.Context, st store.Store, al *audit.Log, name string) (int, error) {
	u, err := st.UserByName(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("user %q: %w", name, err)
	}
	ended, err := st.DeleteUserSessions(ctx, u.ID, "")
	if err != nil {
		return 0, err
	}
	if err := st.AddRevocation(ctx, store.Revocation{User: u.Name, Reason: "sessions revoked by admin"}); err != nil {
		return 0, err
	}
	al.Record(audit.Event{Type: "session.revoked", Reason: "cli", User: u.Name, Fields: map[string]string{"count": fmt.Sprint(len(ended))}})
	return len(ended), nil
}
