package token

import (
	"fmt"
	"strings"
)

// APIKeyPrefix starts every API key. It lets a bearer string be routed to
// the API-key lookup without trying to parse it as a JWT (JWTs start with
// "ey"), and lets secret scanners recognise a leaked key.
const APIKeyPrefix = "wsg_"

// Scope actions an API key may be granted.
var scopeActions = []string{"publish", "subscribe", "history", "presence", "disconnect", "channels", "info"}

// maxScopeName bounds the channel-name part of a scope, as channel names are.
const maxScopeName = 128

// NewAPIKey returns a new API key ("wsg_" + 43 base64url characters, 256
// random bits) and the hash to store. The raw key is shown once and never
// stored.
func NewAPIKey() (raw, hash string, err error) {
	s, err := randomSecret()
	if err != nil {
		return "", "", fmt.Errorf("new api key: %w", err)
	}
	raw = APIKeyPrefix + s
	return raw, HashSecret(raw), nil
}

// LooksLikeAPIKey reports whether a bearer credential is an API key (to
// look up by HashSecret) rather than a JWT (to verify).
func LooksLikeAPIKey(s string) bool {
	return strings.HasPrefix(s, APIKeyPrefix)
}

// APIKeyWellFormed reports whether s has exactly the shape NewAPIKey
// produces, so garbage can be refused before a store lookup.
func APIKeyWellFormed(s string) bool {
	rest, ok := strings.CutPrefix(s, APIKeyPrefix)
	return ok && len(rest) == secretLen && isBase64URL(rest)
}

// ValidateScope checks a scope "action:namespace:pattern", for example
// "publish:news:*" or "history:room:lobby". action is one of publish,
// subscribe, history, presence, disconnect, channels, info; namespace follows the channel
// grammar [a-z][a-z0-9_-]{0,31}; pattern is either an exact channel name
// ([A-Za-z0-9_@.=-]{1,128}, no "..") or such a prefix (possibly empty)
// followed by one trailing '*'. Anything looser is refused so that a typo
// cannot grant more than meant.
func ValidateScope(s string) error {
	action, rest, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("scope %q: want action:namespace:pattern, e.g. publish:news:*", s)
	}
	if !contains(scopeActions, action) {
		return fmt.Errorf("scope %q: action %q is not allowed (allowed: %s)", s, action, strings.Join(scopeActions, ", "))
	}
	ns, pattern, ok := strings.Cut(rest, ":")
	if !ok {
		return fmt.Errorf("scope %q: want action:namespace:pattern, e.g. publish:news:*", s)
	}
	if !validNamespace(ns) {
		return fmt.Errorf("scope %q: namespace %q is not allowed (allowed: [a-z][a-z0-9_-]{0,31})", s, ns)
	}
	name, wildcard := strings.CutSuffix(pattern, "*")
	if (!wildcard && name == "") || len(name) > maxScopeName || !validNameChars(name) || strings.Contains(name, "..") {
		return fmt.Errorf("scope %q: pattern %q is not allowed (allowed: a channel name [A-Za-z0-9_@.=-]{1,128} without \"..\", or a prefix of one followed by a single trailing *)", s, pattern)
	}
	return nil
}

// ScopeAllows reports whether a valid scope grants action on channel
// ("namespace:name"). An invalid scope grants nothing.
func ScopeAllows(scope, action, channel string) bool {
	if ValidateScope(scope) != nil {
		return false
	}
	act, rest, _ := strings.Cut(scope, ":")
	ns, pattern, _ := strings.Cut(rest, ":")
	chNS, chName, ok := strings.Cut(channel, ":")
	if !ok || act != action || chNS != ns {
		return false
	}
	if prefix, wildcard := strings.CutSuffix(pattern, "*"); wildcard {
		return strings.HasPrefix(chName, prefix)
	}
	return chName == pattern
}

func validNamespace(ns string) bool {
	if len(ns) < 1 || len(ns) > 32 || ns[0] < 'a' || ns[0] > 'z' {
		return false
	}
	for i := 1; i < len(ns); i++ {
		c := ns[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validNameChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '_' || c == '@' || c == '.' || c == '=' || c == '-') {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
