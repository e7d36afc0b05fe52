// Package cli implements the wsguard subcommands. Each command loads the
// same configuration as serve (file, WSGUARD_* environment, flags) and acts
// on the same store, so `user disable` on a node's data takes effect on the
// running server.
package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/wsguard/wsguard/internal/atrest"
	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/config"
	"github.com/wsguard/wsguard/internal/identity"
	"github.com/wsguard/wsguard/internal/server"
	"github.com/wsguard/wsguard/internal/store"
)

const usage = `wsguard: real-time messaging over WebSockets, secure by default

Usage:
  wsguard serve [--config FILE]             run the server (default https://localhost:8443)
  wsguard proxy --upstream ws://127.0.0.1:9000/socket [--config FILE]
                                            every control of serve in front of an existing
                                            WebSocket backend (gateway mode)
  wsguard config check [FILE]               check a config as serve would (file and WSGUARD_*)
  wsguard config init [FILE] [--force]      write a commented config with every default
  wsguard user add NAME [--admin] [--password-stdin]
  wsguard user list | disable NAME | enable NAME | reset-2fa NAME
  wsguard user roles NAME [ROLE ...]        replace a user's roles (live sockets close)
  wsguard apikey add NAME --scope publish:room:* [--scope ...]
  wsguard apikey list | revoke NAME
  wsguard session revoke --user NAME        end every session of a user
  wsguard audit verify [FILE] [--key FILE]  check the audit log's MAC chain and signed head
  wsguard audit rotate                      move the audit log aside and start a new chain
  wsguard bench [--conns N] [--messages N] [--size BYTES]
                                            measure a local node over wss
  wsguard check wss://host/path [--origin O] [--cookie N=V] [--header "K: V"] [--subprotocol P]
                                            scan any WebSocket endpoint for weaknesses (docs/CHECK.md)
  wsguard version                           print the version, VCS revision and module versions
  wsguard --version                         print the version and VCS revision
  wsguard COMMAND --help                    usage of one command

Every command takes --config FILE; WSGUARD_<KEY> environment variables override the file.
`

// Main runs one command and returns the exit code: 0 on success (and for
// --help and --version), 1 when the command failed, 2 when the command
// line itself is wrong.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stdout, stderr, env)
	case "proxy":
		err = proxyCmd(args[1:], stdout, stderr, env)
	case "config":
		err = configCmd(args[1:], stdout, env)
	case "user":
		err = userCmd(args[1:], stdin, stdout, env)
	case "session":
		err = sessionCmd(args[1:], stdout, env)
	case "apikey":
		err = apikeyCmd(args[1:], stdout, env)
	case "audit":
		err = auditCmd(args[1:], stdout, env)
	case "bench":
		err = benchCmd(args[1:], stdout, stderr)
	case "check":
		err = checkCmd(args[1:], stdout, stderr, env)
	case "version":
		err = versionCmd(args[1:], stdout)
	case "--version", "-version", "-v":
		fmt.Fprintln(stdout, versionLine())
	case "help", "-h", "-help", "--help":
		if len(args) == 2 && synopsis[args[1]] != "" {
			printHelp(stdout, args[1], nil)
			return exitOK
		}
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "wsguard: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	var help helpRequested
	var bad *usageError
	var code *exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		if code.err != nil {
			fmt.Fprintf(stderr, "wsguard: %v\n", code.err)
		}
		return code.code
	case errors.As(err, &help):
		printHelp(stdout, args[0], help.fs)
		return exitOK
	case errors.As(err, &bad):
		fmt.Fprintf(stderr, "wsguard: %v\n(run 'wsguard %s --help' for usage)\n", err, args[0])
		return exitUsage
	}
	fmt.Fprintf(stderr, "wsguard: %v\n", err)
	return exitError
}

// loadConfig loads the config every command acts on: path (--config, or
// else WSGUARD_CONFIG), then the WSGUARD_* environment, validated.
func loadConfig(path string, env []string) (config.Config, error) {
	return config.LoadValid(path, env)
}

// loadServeConfig is loadConfig plus every other check serve makes before
// it opens anything (server.CheckConfig): `serve` and `config check` both
// use it, so check says ok exactly when serve would start.
func loadServeConfig(path string, env []string) (config.Config, error) {
	cfg, err := loadConfig(path, env)
	if err != nil {
		return cfg, err
	}
	return cfg, server.CheckConfig(cfg)
}

func newFlags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "config file (YAML)")
	return fs, cfgPath
}

// parseInterspersed lets flags follow positional arguments (user add NAME --admin).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, flagError(fs, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func serve(args []string, stdout, stderr io.Writer, env []string) error {
	fs, cfgPath := newFlags("serve")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	cfg, err := loadServeConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	return runNode(cfg, server.ModeServe, stdout, stderr)
}

// proxyCmd is `wsguard proxy`: the same configuration, listeners, sign-in
// and checks as serve, with the upstream relayed at proxy.path.
func proxyCmd(args []string, stdout, stderr io.Writer, env []string) error {
	fs, cfgPath := newFlags("proxy")
	upstream := fs.String("upstream", "", "the backend, ws:// or wss:// (overrides proxy.upstream)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("wsguard proxy takes no arguments (got %q); the backend is --upstream URL", pos[0])
	}
	cfg, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	if *upstream != "" {
		cfg.Proxy.Upstream = *upstream
		if err := cfg.Validate(); err != nil {
			return err
		}
	}
	if err := cfg.RequireUpstream(); err != nil {
		return usagef("%v", err)
	}
	if err := server.CheckConfig(cfg); err != nil {
		return err
	}
	return runNode(cfg, server.ModeProxy, stdout, stderr)
}

// runNode serves cfg in mode until SIGTERM or Ctrl-C, then drains.
func runNode(cfg config.Config, mode server.Mode, stdout, stderr io.Writer) error {
	log := newLogger(stderr, cfg.Log)
	srv, err := server.New(cfg, server.Options{Logger: log, Stdout: stdout, Mode: mode})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	runErr := srv.Run(ctx, server.Listeners{}, hup)
	return errors.Join(runErr, srv.Close())
}

// configCmd runs `config check` and `config init`.
func configCmd(args []string, stdout io.Writer, env []string) error {
	fs, cfgPath := newFlags("config")
	force := fs.Bool("force", false, "config init: overwrite an existing file")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || len(pos) > 2 {
		return usagef("usage: wsguard config check [FILE] | wsguard config init [FILE] [--force]")
	}
	file := *cfgPath
	if len(pos) == 2 {
		file = pos[1]
	}
	switch pos[0] {
	case "check":
		cfg, err := loadServeConfig(file, env)
		if err != nil {
			return err
		}
		// Name what was read: the file given, else the one WSGUARD_CONFIG
		// names (a container's config), else the defaults.
		name := file
		if name == "" {
			name = "defaults"
			for _, kv := range env {
				if v, ok := strings.CutPrefix(kv, config.EnvConfig+"="); ok && v != "" {
					name = v + " (" + config.EnvConfig + ")"
				}
			}
		}
		fmt.Fprintf(stdout, "%s: ok (listen %s, public_url %s, allowed_origins %s)\n", name, cfg.Listen, cfg.PublicURL, strings.Join(cfg.AllowedOrigins, " "))
		return nil
	case "init":
		if file == "" {
			file = "wsguard.yaml"
		}
		if err := config.WriteSample(file, *force); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s written: every key at its default; edit it, then run wsguard config check %s\n", file, file)
		return nil
	}
	return usagef("unknown config command %q (allowed: check, init)", pos[0])
}

// openNode opens what an admin command acts on: the store and the audit
// log of the node the config names. closeAll closes both and reports an
// audit log that could not be flushed.
func openNode(cfgPath string, env []string) (st store.Store, al *audit.Log, closeAll func() error, err error) {
	cfg, err := loadConfig(cfgPath, env)
	if err != nil {
		return nil, nil, nil, err
	}
	if st, err = openStore(cfg); err != nil {
		return nil, nil, nil, err
	}
	// The CLI writes the same chain as a running server and moves the same
	// signed head in the same store.
	if al, err = audit.Open(cfg.Audit.File, audit.Options{KeyFile: cfg.Audit.KeyFile, Heads: st}); err != nil {
		_ = st.Close()
		return nil, nil, nil, err
	}
	st, closeBroker := withAnnouncer(cfg, st)
	return st, al, func() error { return errors.Join(al.Close(), st.Close(), closeBroker()) }, nil
}

// openStore opens the node's store with the key that seals its TOTP
// secrets, creating data_dir (0700) and, for a store of its own, the key on
// a first use; a shared store's key must be given (secrets_key_file).
func openStore(cfg config.Config) (store.Store, error) {
	if _, err := atrest.Dir(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	sealer, _, err := atrest.KeyFor(cfg.SecretsKeyPath(), cfg.SharedStore())
	if err != nil {
		return nil, err
	}
	if cfg.SharedStore() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return store.OpenPostgres(ctx, cfg.Store, store.PostgresOptions{Sealer: sealer})
	}
	path := filepath.Join(cfg.DataDir, "wsguard.db")
	if p, ok := strings.CutPrefix(cfg.Store, "sqlite:"); ok {
		path = p
	} else if cfg.Store != "" {
		return nil, fmt.Errorf("store: %q is not supported by this command yet", cfg.Store)
	}
	return store.OpenSQLite(path, store.SQLiteOptions{Sealer: sealer})
}

func userCmd(args []string, stdin io.Reader, stdout io.Writer, env []string) error {
	fs, cfgPath := newFlags("user")
	admin := fs.Bool("admin", false, "make the user an admin")
	pwStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("usage: wsguard user add|list|disable|enable|reset-2fa [NAME]")
	}
	switch pos[0] { // before opening anything: a typo must not create data_dir
	case "add", "list", "disable", "enable", "reset-2fa", "roles":
	default:
		return usagef("unknown user command %q (allowed: add, list, disable, enable, reset-2fa, roles)", pos[0])
	}
	st, al, closeNode, err := openNode(*cfgPath, env)
	if err != nil {
		return err
	}
	defer closeNode()
	ctx := context.Background()
	needName := func() (string, error) {
		if len(pos) != 2 {
			return "", usagef("usage: wsguard user %s NAME", pos[0])
		}
		return pos[1], nil
	}
	switch pos[0] {
	case "add":
		name, err := needName()
		if err != nil {
			return err
		}
		if !*pwStdin {
			return usagef("user add: pass the password on standard input with --password-stdin (never as an argument: it would show in ps and shell history)")
		}
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		h := identity.NewHasher(identity.HasherOptions{})
		u, err := server.CreateUser(ctx, st, h, name, line, *admin)
		if err != nil {
			return err
		}
		al.Record(audit.Event{Type: "user.created", Reason: "cli", User: u.Name, Fields: map[string]string{"admin": fmt.Sprint(u.Admin)}})
		fmt.Fprintf(stdout, "user %s created\n", u.Name)
	case "list":
		users, err := st.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tADMIN\tDISABLED\t2FA\tCREATED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%s\n", u.Name, u.Admin, u.Disabled, u.TOTPSecret != "", u.CreatedAt.UTC().Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	case "disable", "enable":
		name, err := needName()
		if err != nil {
			return err
		}
		if err := server.SetUserDisabled(ctx, st, al, name, pos[0] == "disable"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s %sd\n", name, pos[0])
	case "reset-2fa":
		name, err := needName()
		if err != nil {
			return err
		}
		if err := server.ResetTwoFactor(ctx, st, al, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "two-factor reset for %s; every session ended\n", name)
	case "roles":
		if len(pos) < 2 {
			return usagef("usage: wsguard user roles NAME [ROLE ...]")
		}
		if err := server.SetUserRoles(ctx, st, pos[1], pos[2:]); err != nil {
			return err
		}
		al.Record(audit.Event{Type: "user.roles", Reason: "cli", User: pos[1], Fields: map[string]string{"roles": strings.Join(pos[2:], ",")}})
		fmt.Fprintf(stdout, "roles of %s set to [%s]; live sockets closed\n", pos[1], strings.Join(pos[2:], " "))
	default:
		return usagef("unknown user command %q (allowed: add, list, disable, enable, reset-2fa, roles)", pos[0])
	}
	return nil
}

func sessionCmd(args []string, stdout io.Writer, env []string) error {
	fs, cfgPath := newFlags("session")
	user := fs.String("user", "", "end every session of this user")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "revoke" || *user == "" {
		return usagef("usage: wsguard session revoke --user NAME")
	}
	st, al, closeNode, err := openNode(*cfgPath, env)
	if err != nil {
		return err
	}
	n, err := server.RevokeUserSessions(context.Background(), st, al, *user)
	if err != nil {
		_ = closeNode()
		return err
	}
	fmt.Fprintf(stdout, "%d session(s) of %s ended\n", n, *user)
	if err := closeNode(); err != nil {
		return fmt.Errorf("audit.file: the session.revoked event may not be recorded: %w", err)
	}
	return nil
}

func auditCmd(args []string, stdout io.Writer, env []string) error {
	fs, cfgPath := newFlags("audit")
	keyFile := fs.String("key", "", "the log's key file (default: audit.key_file of the config)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 1 && pos[0] == "rotate" {
		return auditRotate(*cfgPath, stdout, env)
	}
	if len(pos) < 1 || pos[0] != "verify" || len(pos) > 2 {
		return usagef("usage: wsguard audit verify [FILE] [--key FILE] | wsguard audit rotate")
	}
	cfg, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	path := cfg.Audit.File
	if len(pos) == 2 {
		path = pos[1]
	}
	if *keyFile == "" {
		*keyFile = cfg.Audit.KeyFile
	}
	key, err := audit.ReadKey(*keyFile)
	if err != nil {
		return fmt.Errorf("%w (pass the key the log was written with: --key FILE or audit.key_file)", err)
	}
	// The signed head in the store is this node's: it applies to the
	// node's own audit.file, not to a copy or a segment set aside.
	var head *audit.Head
	if sameFile(path, cfg.Audit.File) {
		st, err := openStore(cfg)
		if err != nil {
			return err
		}
		h, err := audit.LoadHead(context.Background(), st, key)
		if err = errors.Join(err, st.Close()); err != nil {
			return err
		}
		head = &h
	}
	f, err := os.Open(path) // #nosec G304 -- the operator names the file to verify
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := audit.Verify(f, key, head)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if head == nil {
		fmt.Fprintf(stdout, "%s: %d lines, MAC chain intact (not this node's audit.file: no signed head to check, so a cut tail would not show)\n", path, n)
		return nil
	}
	fmt.Fprintf(stdout, "%s: %d lines, MAC chain intact, signed head at line %d\n", path, n, head.Seq)
	return nil
}

// auditRotate moves the node's audit log aside and starts a new chain
// linked to it; a running server follows to the new file.
func auditRotate(cfgPath string, stdout io.Writer, env []string) error {
	_, al, closeNode, err := openNode(cfgPath, env)
	if err != nil {
		return err
	}
	aside, err := al.Rotate()
	if err = errors.Join(err, closeNode()); err != nil {
		return err
	}
	if aside == "" {
		fmt.Fprintln(stdout, "audit log empty: nothing to rotate")
		return nil
	}
	fmt.Fprintf(stdout, "audit log moved to %s; a new chain starts with an audit.rotated event naming it\n", aside)
	return nil
}

// sameFile reports whether a and b name one file (or the same missing path).
func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA != nil || errB != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return os.SameFile(sa, sb)
}

// versionCmd prints the version line, then the module versions.
func versionCmd(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return flagError(fs, err)
	}
	if fs.NArg() > 0 {
		return usagef("usage: wsguard version takes no arguments")
	}
	fmt.Fprintln(w, versionLine())
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	for _, d := range bi.Deps {
		v := d.Version
		if d.Replace != nil {
			v += " => " + d.Replace.Path + " " + d.Replace.Version
		}
		fmt.Fprintf(w, "  %s %s\n", d.Path, v)
	}
	return nil
}
