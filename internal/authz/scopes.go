package authz

import (
	"fmt"
	"strings"
)

// Disconnect is the API-key scope action of /api/v1/disconnect. It is not a
// channel action: its "namespace" says whom it reaches, DisconnectUsers
// (people: usernames and JWT subjects) or DisconnectServices (other API
// keys, principals "api:<name>").
const (
	Disconnect         = "disconnect"
	DisconnectUsers    = "user"
	DisconnectServices = "api"
)

// CheckScope reports whether the configured rules honour an API key scope,
// "<action>:<namespace>:<pattern>": nil when a rule lets it grant something,
// else an error that says why it would do nothing and names the config key
// that would make it count. A key created with a scope no rule honours is
// refused every time it uses it, which looks like a broken key rather than
// a missing rule; refusing it at creation says so once, where it can be
// fixed. The scope's syntax is checked separately (token.ValidateScope).
func (r *Rules) CheckScope(scope string) error {
	act, rest, _ := strings.Cut(scope, ":")
	ns, _, _ := strings.Cut(rest, ":")
	if act == Disconnect {
		if ns == DisconnectUsers || ns == DisconnectServices {
			return nil
		}
		return fmt.Errorf("scope %q does nothing: disconnect scopes are disconnect:%s:<pattern> (users and JWT subjects) or disconnect:%s:<pattern> (other API keys)", scope, DisconnectUsers, DisconnectServices)
	}
	key := "namespaces." + ns + "." + act
	n, ok := r.ns[ns]
	if !ok {
		return fmt.Errorf("scope %q does nothing: namespace %q is not configured; add %s: [scope] to the config to let API keys %s there", scope, ns, key, act)
	}
	grants, known := n.grants(Action(act))
	if !known {
		return fmt.Errorf("scope %q: action %q is not one of subscribe, publish, history, presence, disconnect", scope, act)
	}
	for _, g := range grants {
		if g.kind == grantScope {
			return nil
		}
	}
	return fmt.Errorf("scope %q does nothing: %s does not list scope (it lists: %s); add scope to %s in the config to let API keys %s in %q", scope, key, grantList(grants), key, act, ns)
}

// grantList writes grants back as their config entries.
func grantList(gs []grant) string {
	if len(gs) == 0 {
		return "nothing"
	}
	out := make([]string, len(gs))
	for i, g := range gs {
		switch g.kind {
		case grantUsers:
			out[i] = entryUsers
		case grantOwner:
			out[i] = entryOwner
		case grantScope:
			out[i] = entryScope
		case grantRole:
			out[i] = entryRole + g.role
		}
	}
	return strings.Join(out, ", ")
}
