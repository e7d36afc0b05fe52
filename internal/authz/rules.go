package authz

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/wsguard/wsguard/internal/config"
)

// ErrForbidden is wrapped by every Allow refusal; the connection layer
// answers it with the forbidden error code. The wrapped reason is for logs.
var ErrForbidden = errors.New("forbidden")

// Action is one kind of channel operation, checked separately.
type Action string

// The actions a namespace rule can grant.
const (
	Subscribe Action = "subscribe"
	Publish   Action = "publish"
	History   Action = "history"
	Presence  Action = "presence"
)

// Principal is who is asking: a signed-in user, a JWT subject or an API key.
type Principal struct {
	// Name is the username, the token's sub, or the API key's name. It owns
	// user:<Name> unless IsService.
	Name string
	// Roles are granted by "role:<r>" rules.
	Roles []string
	// Scopes are API key scopes, "<action>:<namespace>:<pattern>"; they count
	// only for service principals and only where a rule says "scope".
	Scopes []string
	// IsService marks an API key: never "users", never an owner.
	IsService bool
	// Channels, when non-nil, further restricts the principal to channels
	// matching one of these "ns:name" patterns (exact, or a prefix ending in
	// "*"), as carried by a JWT "channels" claim. Non-nil and empty allows
	// nothing. Nil means no extra restriction.
	Channels []string
}

// Rule entries allowed in config.Namespace lists.
const (
	entryUsers = "users"
	entryOwner = "owner"
	entryScope = "scope"
	entryRole  = "role:"
)

type grantKind uint8

const (
	grantUsers grantKind = iota + 1
	grantOwner
	grantRole
	grantScope
)

type grant struct {
	kind grantKind
	role string
}

type nsRules struct {
	subscribe, publish, history, presence []grant
}

// grants lists who may do a in the namespace; false for an unknown action.
func (n nsRules) grants(a Action) ([]grant, bool) {
	switch a {
	case Subscribe:
		return n.subscribe, true
	case Publish:
		return n.publish, true
	case History:
		return n.history, true
	case Presence:
		return n.presence, true
	}
	return nil, false
}

// Rules holds the compiled namespace rules. It is immutable and safe for
// concurrent use.
type Rules struct {
	ns map[string]nsRules
}

// New compiles the namespace rules from configuration. A namespace that is
// not listed is closed to everyone, and an action with an empty list is
// closed in that namespace. Each entry is "users" (any signed-in,
// non-service principal), "owner" (the principal whose name is the channel
// name), "role:<r>" or "scope" (API keys by scope). Errors name the key to
// fix. Listing "users" in namespace "user" is refused: it would open every
// user's private channel to everyone.
func New(namespaces map[string]config.Namespace) (*Rules, error) {
	r := &Rules{ns: make(map[string]nsRules, len(namespaces))}
	names := make([]string, 0, len(namespaces))
	for name := range namespaces {
		names = append(names, name)
	}
	sort.Strings(names) // stable error order
	var errs []error
	for _, name := range names {
		if !validNamespace(name) {
			errs = append(errs, fmt.Errorf("namespaces: %q is not a valid namespace (allowed: a lowercase letter, then up to 31 of a-z 0-9 _ -)", name))
			continue
		}
		n := namespaces[name]
		var c nsRules
		var err error
		compile := func(a Action, entries []string) []grant {
			gs, e := compileGrants(name, a, entries)
			err = errors.Join(err, e)
			return gs
		}
		c.subscribe = compile(Subscribe, n.Subscribe)
		c.publish = compile(Publish, n.Publish)
		c.history = compile(History, n.History)
		c.presence = compile(Presence, n.Presence)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.ns[name] = c
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

func compileGrants(ns string, a Action, entries []string) ([]grant, error) {
	var gs []grant
	var errs []error
	key := "namespaces." + ns + "." + string(a)
	for _, e := range entries {
		switch {
		case e == entryUsers && ns == "user":
			errs = append(errs, fmt.Errorf("%s: %q would open every user's private channel to every user (allowed here: owner, role:<name>, scope)", key, e))
		case e == entryUsers:
			gs = append(gs, grant{kind: grantUsers})
		case e == entryOwner:
			gs = append(gs, grant{kind: grantOwner})
		case e == entryScope:
			gs = append(gs, grant{kind: grantScope})
		case strings.HasPrefix(e, entryRole) && ValidRole(e[len(entryRole):]):
			gs = append(gs, grant{kind: grantRole, role: e[len(entryRole):]})
		default:
			errs = append(errs, fmt.Errorf("%s: %q is not a rule (allowed: users, owner, role:<name> with name of A-Z a-z 0-9 _ . -, scope)", key, e))
		}
	}
	return gs, errors.Join(errs...)
}

// ValidRole reports whether r is a role name: 1 to 64 of A-Z a-z 0-9 _ . -
// (so a role can never look like a rule entry or a '#'-mark).
func ValidRole(r string) bool {
	if len(r) == 0 || len(r) > 64 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// Allow reports whether p may do a on ch: nil, or an error wrapping
// ErrForbidden with the reason. It is called on every operation. Anything
// not granted by a rule is refused, including unknown namespaces, unknown
// actions and channels that do not satisfy the grammar.
func (r *Rules) Allow(p Principal, a Action, ch Channel) error {
	if !validNamespace(ch.Namespace) || !validName(ch.Name) {
		return fmt.Errorf("%w: invalid channel", ErrForbidden)
	}
	n, ok := r.ns[ch.Namespace]
	if !ok {
		return fmt.Errorf("%w: no rules for namespace %q", ErrForbidden, ch.Namespace)
	}
	grants, ok := n.grants(a)
	if !ok {
		return fmt.Errorf("%w: unknown action %q", ErrForbidden, a)
	}
	if p.Channels != nil && !matchAnyChannel(p.Channels, ch) {
		return fmt.Errorf("%w: credential of %q is restricted to other channels than %q", ErrForbidden, p.Name, ch.String())
	}
	for _, g := range grants {
		if g.allows(p, a, ch) {
			return nil
		}
	}
	return fmt.Errorf("%w: no rule grants %s on %q to %q", ErrForbidden, a, ch.String(), p.Name)
}

func (g grant) allows(p Principal, a Action, ch Channel) bool {
	switch g.kind {
	case grantUsers:
		return !p.IsService && p.Name != ""
	case grantOwner:
		return !p.IsService && p.Name != "" && ch.Name == p.Name
	case grantRole:
		return slices.Contains(p.Roles, g.role)
	case grantScope:
		if !p.IsService {
			return false
		}
		for _, s := range p.Scopes {
			if MatchScope(s, a, ch) {
				return true
			}
		}
	}
	return false
}

// MatchScope reports whether scope, "<action>:<namespace>:<pattern>",
// covers a on ch. The action and namespace must be equal; the pattern is an
// exact name or a prefix ending in "*" ("publish:news:*" covers publish on
// every news channel and nothing in room).
func MatchScope(scope string, a Action, ch Channel) bool {
	act, rest, ok := strings.Cut(scope, ":")
	if !ok || act != string(a) {
		return false
	}
	ns, pat, ok := strings.Cut(rest, ":")
	if !ok || ns != ch.Namespace {
		return false
	}
	return matchPattern(pat, ch.Name)
}

// ValidateScope checks that scope is "<action>:<namespace>:<pattern>" with
// a known action, a valid namespace and a pattern that is a valid name or a
// valid name prefix followed by "*". Use it where API keys are created.
func ValidateScope(scope string) error {
	act, rest, ok := strings.Cut(scope, ":")
	if !ok {
		return fmt.Errorf("scope %q is not action:namespace:pattern", scope)
	}
	switch Action(act) {
	case Subscribe, Publish, History, Presence:
	default:
		return fmt.Errorf("scope %q: action %q is not one of subscribe, publish, history, presence", scope, act)
	}
	ns, pat, ok := strings.Cut(rest, ":")
	if !ok {
		return fmt.Errorf("scope %q is not action:namespace:pattern", scope)
	}
	if !validNamespace(ns) {
		return fmt.Errorf("scope %q: namespace %q is not valid (allowed: a lowercase letter, then up to 31 of a-z 0-9 _ -)", scope, ns)
	}
	if prefix, star := strings.CutSuffix(pat, "*"); star {
		if prefix == "" || validName(prefix) {
			return nil
		}
	} else if validName(pat) {
		return nil
	}
	return fmt.Errorf("scope %q: pattern %q is not a channel name or a name prefix ending in *", scope, pat)
}

// matchPattern: exact, or a prefix when pat ends in "*".
func matchPattern(pat, name string) bool {
	if prefix, star := strings.CutSuffix(pat, "*"); star {
		return strings.HasPrefix(name, prefix)
	}
	return pat != "" && pat == name
}

// matchAnyChannel matches "ns:name" patterns against ch without building
// the joined string.
func matchAnyChannel(patterns []string, ch Channel) bool {
	nl := len(ch.Namespace)
	for _, pat := range patterns {
		if prefix, star := strings.CutSuffix(pat, "*"); star {
			switch {
			case len(prefix) <= nl:
				if ch.Namespace[:len(prefix)] == prefix {
					return true
				}
			case prefix[:nl] == ch.Namespace && prefix[nl] == ':' && strings.HasPrefix(ch.Name, prefix[nl+1:]):
				return true
			}
			continue
		}
		if len(pat) == nl+1+len(ch.Name) && pat[:nl] == ch.Namespace && pat[nl] == ':' && pat[nl+1:] == ch.Name {
			return true
		}
	}
	return false
}

// validName reports whether name matches [A-Za-z0-9_@.=-]{1,128} without "..".
func validName(name string) bool {
	if len(name) == 0 || len(name) > MaxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) || (name[i] == '.' && i > 0 && name[i-1] == '.') {
			return false
		}
	}
	return true
}
