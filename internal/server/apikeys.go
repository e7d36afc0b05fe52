package server

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/token"
)

// CreateAPIKey validates name and scopes, stores a new key by its hash and
// returns the raw key, which exists nowhere else: show it once. Names follow
// the username alphabet; the key's principal is "api:<name>".
func CreateAPIKey(ctx context.Context, st store.Store, name string, scopes []string) (string, error) {
	if err := ValidateUsername(name); err != nil {
		return "", fmt.Errorf("api key name: %w", err)
	}
	if len(scopes) == 0 {
		return "", errors.New("api key: give at least one --scope (e.g. --scope publish:room:*)")
	}
	for _, sc := range scopes {
		if err := token.ValidateScope(sc); err != nil {
			return "", err
		}
	}
	raw, hash, err := token.NewAPIKey()
	if err != nil {
		return "", err
	}
	_, err = st.CreateAPIKey(ctx, store.APIKey{Name: name, Hash: hash, Scopes: slices.Clone(scopes)})
	if errors.Is(err, store.ErrExists) {
		return "", fmt.Errorf("api key %q already exists (revoked names are not reused)", name)
	}
	return raw, err
}

// RevokeAPIKey marks the key revoked and records a revocation, so a running
// server closes the key's live sockets (4001) within a second; its next
// request is refused with 401.
func RevokeAPIKey(ctx context.Context, st store.Store, name string) error {
	if err := st.RevokeAPIKey(ctx, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("api key %q does not exist", name)
		}
		return err
	}
	return st.AddRevocation(ctx, store.Revocation{User: apiPrincipalPrefix + name, Reason: "api key revoked"})
}

// SetUserRoles replaces a user's roles and records a revocation: the user's
// live sockets close (4001), which ends every subscription the old roles
// granted; on reconnect the new roles apply to every operation (A3).
func SetUserRoles(ctx context.Context, st store.Store, name string, roles []string) error {
	u, err := st.UserByName(ctx, name)
	if err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	for _, r := range roles {
		if !authz.ValidRole(r) {
			return fmt.Errorf("role %q: use 1 to 64 of A-Z a-z 0-9 _ . -", r)
		}
	}
	// Only the roles are written, so a concurrent password change or
	// disable is kept, and this change is not undone by theirs.
	if err := st.SetRoles(ctx, u.ID, slices.Clone(roles)); err != nil {
		return err
	}
	return st.AddRevocation(ctx, store.Revocation{User: u.Name, Reason: "roles changed"})
}
