package server

import (
	"context"
	"errors"
	"fmt"

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
