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

// Channels and Info are the API-key scope actions of /api/v1/channels and
// /api/v1/info. channels:<ns>:<pattern> lets a key list the active channels
// of ns matching pattern, with their subscriber counts; info:node:<pattern>
// lets it read the nodes' connection counts (info:node:* for all nodes).
// Neither reads messages or names users, so no namespace rule is involved.
const (
	Channels  = "channels"
	Info      = "info"
	InfoNodes = "node"
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
	if act == Info {
		if ns == InfoNodes {
			return nil
		}
		return fmt.Errorf("scope %q does nothing: info scopes are info:%s:<pattern> (info:%s:* for every node)", scope, InfoNodes, InfoNodes)
	}
	if act == Channels {
		if _, ok := r.ns[ns]; ok {
			return nil
		}
		return fmt.Errorf("scope %q does nothing: namespace %q is not configured (add namespaces.%s to the config)", scope, ns, ns)
	}
	key := "namespaces." + ns + "." + act
	n, ok := r.ns[ns]
	if !ok {
		return fmt.Errorf("scope %q does nothing: namespace %q is not configured; add %s: [scope] to the config to let API keys %s there", scope, ns, key, act)
	}
	grants, known := n.grants(Action(act))
	if !known {
		return fmt.Errorf("scope %q: action %q is not one of subscribe, publish, history, presence, disconnect, channels, info", scope, act)
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
