package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/server"
	"github.com/wsguard/wsguard/internal/token"
)

// scopeList is a repeatable --scope flag.
type scopeList []string

func (s *scopeList) String() string { return strings.Join(*s, ",") }

func (s *scopeList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// apikeyCmd runs `apikey add NAME --scope S...`, `apikey list` and
// `apikey revoke NAME`. add prints the key alone on stdout, once: only its
// hash is stored, and the audit log records the name and scopes, never the key.
func apikeyCmd(args []string, stdout io.Writer, env []string) error {
	fs, cfgPath := newFlags("apikey")
	var scopes scopeList
	fs.Var(&scopes, "scope", "action:namespace:pattern, e.g. publish:room:* (repeatable); the namespace must list scope for that action")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("usage: wsguard apikey add NAME --scope publish:room:* | list | revoke NAME")
	}
	if pos[0] != "add" && pos[0] != "list" && pos[0] != "revoke" { // before opening anything
		return usagef("unknown apikey command %q (allowed: add, list, revoke)", pos[0])
	}
	if pos[0] == "add" {
		if err := checkScopesHonoured(*cfgPath, env, scopes); err != nil {
			return err
		}
	}
	st, al, closeNode, err := openNode(*cfgPath, env)
	if err != nil {
		return err
	}
	defer closeNode()
	ctx := context.Background()
	switch pos[0] {
	case "add":
		if len(pos) != 2 {
			return usagef("usage: wsguard apikey add NAME --scope publish:room:* [--scope ...]")
		}
		raw, err := server.CreateAPIKey(ctx, st, pos[1], scopes)
		if err != nil {
			return err
		}
		al.Record(audit.Event{Type: "apikey.created", Reason: "cli", User: "api:" + pos[1], Fields: map[string]string{"scopes": scopes.String()}})
		fmt.Fprintln(stdout, raw)
	case "list":
		if len(pos) != 1 {
			return usagef("usage: wsguard apikey list")
		}
		keys, err := st.ListAPIKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSCOPES\tREVOKED\tCREATED")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", k.Name, strings.Join(k.Scopes, ","), k.Revoked, k.CreatedAt.UTC().Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	case "revoke":
		if len(pos) != 2 {
			return usagef("usage: wsguard apikey revoke NAME")
		}
		if err := server.RevokeAPIKey(ctx, st, pos[1]); err != nil {
			return err
		}
		al.Record(audit.Event{Type: "apikey.revoked", Reason: "cli", User: "api:" + pos[1]})
		fmt.Fprintf(stdout, "api key %s revoked; its live sockets close within a second\n", pos[1])
	default:
		return usagef("unknown apikey command %q (allowed: add, list, revoke)", pos[0])
	}
	return nil
}

// checkScopesHonoured refuses scopes that no namespace rule of the
// configuration honours: such a key would be refused on every use. The
// error names the config key that would make the scope count.
func checkScopesHonoured(cfgPath string, env []string, scopes []string) error {
	cfg, err := loadConfig(cfgPath, env)
	if err != nil {
		return err
	}
	rules, err := authz.New(cfg.Namespaces)
	if err != nil {
		return err
	}
	var errs []error
	for _, sc := range scopes {
		if token.ValidateScope(sc) != nil {
			continue // CreateAPIKey reports the syntax
		}
		if err := rules.CheckScope(sc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
