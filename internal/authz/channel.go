package authz

import (
	"errors"
	"fmt"
)

// Grammar limits (docs/PROTOCOL.md, Channels): namespace [a-z][a-z0-9_-]{0,31}, name
// [A-Za-z0-9_@.=-]{1,128} without "..", joined by exactly one ':'.
const (
	MaxNamespaceLen = 32
	MaxNameLen      = 128
	maxChannelLen   = MaxNamespaceLen + 1 + MaxNameLen
	// quoteMax bounds how much of a rejected input goes into an error, so a
	// 10 KB hostile name does not become a 10 KB log line.
	quoteMax = 64
)

// ErrBadChannel is wrapped by every ParseChannel error; the connection
// layer answers it with bad_request.
var ErrBadChannel = errors.New("invalid channel")

// Channel is a parsed channel name. Its fields are substrings of the input,
// so parsing does not allocate.
type Channel struct {
	Namespace string
	Name      string
}

// String returns "namespace:name".
func (c Channel) String() string { return c.Namespace + ":" + c.Name }

// ParseChannel checks s against the channel grammar and splits it. Errors
// wrap ErrBadChannel and say what is allowed; they quote at most 64 bytes
// of s.
func ParseChannel(s string) (Channel, error) {
	if len(s) > maxChannelLen {
		return Channel{}, channelError(s, "is longer than %d bytes", maxChannelLen)
	}
	colon := -1
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			if colon >= 0 {
				return Channel{}, channelError(s, "has more than one ':' (want namespace:name)")
			}
			colon = i
		}
	}
	if colon < 0 {
		return Channel{}, channelError(s, "has no ':' (want namespace:name)")
	}
	ns, name := s[:colon], s[colon+1:]
	if !validNamespace(ns) {
		return Channel{}, channelError(s, "has a bad namespace (allowed: a lowercase letter, then up to 31 of a-z 0-9 _ -)")
	}
	if len(name) == 0 || len(name) > MaxNameLen {
		return Channel{}, channelError(s, "name must be 1 to %d characters", MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return Channel{}, channelError(s, "name has a character outside A-Z a-z 0-9 _ @ . = -")
		}
		if name[i] == '.' && i > 0 && name[i-1] == '.' {
			return Channel{}, channelError(s, "name contains \"..\"")
		}
	}
	return Channel{Namespace: ns, Name: name}, nil
}

func channelError(s, format string, args ...any) error {
	q := s
	if len(q) > quoteMax {
		q = q[:quoteMax] + "..."
	}
	return fmt.Errorf("%w: %q %s", ErrBadChannel, q, fmt.Sprintf(format, args...))
}

// validNamespace reports whether ns matches [a-z][a-z0-9_-]{0,31}.
func validNamespace(ns string) bool {
	if len(ns) == 0 || len(ns) > MaxNamespaceLen || ns[0] < 'a' || ns[0] > 'z' {
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

// nameByte reports whether c is in [A-Za-z0-9_@.=-].
func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '@' || c == '.' || c == '=' || c == '-'
}
