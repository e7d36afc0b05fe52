package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// Exit codes, as command-line tools conventionally use them.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // the command line itself is wrong
)

// usageError is a command line that does not say what to do: Main prints
// it with a pointer to --help and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// helpRequested is -h, -help or --help on a subcommand: Main prints that
// command's usage on stdout and exits 0.
type helpRequested struct{ fs *flag.FlagSet }

func (helpRequested) Error() string { return "help requested" }

// flagError turns a flag package error into a usage error or a help request.
func flagError(fs *flag.FlagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return helpRequested{fs: fs}
	}
	return usagef("wsguard %s: %v", fs.Name(), err)
}

// synopsis is each command's usage line(s), shown by `wsguard CMD --help`.
var synopsis = map[string]string{
	"serve":   "wsguard serve [--config FILE]\n\nRuns the server until SIGTERM or Ctrl-C, then drains live sockets.",
	"proxy":   "wsguard proxy --upstream ws://127.0.0.1:9000/socket [--config FILE]\n\nRuns every control of serve (TLS, sign-in, 2FA, sessions, tickets, JWT, API keys, limits)\nin front of an existing WebSocket backend, relayed at proxy.path (default /ws); the backend\nreceives the verified identity in signed X-Wsguard-* headers (see docs/PROXY.md).",
	"config":  "wsguard config check [FILE] [--config FILE]\n  wsguard config init [FILE] [--force]\n\ncheck loads FILE (or --config, or WSGUARD_CONFIG) with the WSGUARD_* environment exactly as serve does\nand reports every problem; init writes a commented config with every key at its default\n(default file wsguard.yaml; an existing file is kept unless --force).",
	"user":    "wsguard user add NAME [--admin] [--password-stdin]\n  wsguard user list | disable NAME | enable NAME | reset-2fa NAME\n  wsguard user roles NAME [ROLE ...]",
	"apikey":  "wsguard apikey add NAME --scope publish:news:* [--scope ...]\n  wsguard apikey list | revoke NAME",
	"session": "wsguard session revoke --user NAME",
	"audit":   "wsguard audit verify [FILE] [--key FILE]\n  wsguard audit rotate",
	"bench":   "wsguard bench [--conns N] [--messages N] [--size BYTES]",
	"check":   "wsguard check wss://host/path [--origin O] [--cookie NAME=VALUE] [--header \"K: V\"]... [--subprotocol P]...\n          [--ca FILE] [--json] [--fail-on critical|high|medium|low] [--slow]\n\nProbes one WebSocket endpoint, wsguard or any other, with bounded traffic and reports findings\n(docs/CHECK.md). Exit 0 when nothing reaches --fail-on (default high), 1 when something does,\n2 on a usage error or an unreachable target.",
	"version": "wsguard version\n\nPrints the version, the VCS revision it was built from and the module versions.",
}

// printHelp writes cmd's usage and flags to w.
func printHelp(w io.Writer, cmd string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage:\n  %s\n", synopsis[cmd])
	if fs == nil {
		return
	}
	var flags strings.Builder
	fs.SetOutput(&flags)
	fs.PrintDefaults()
	if flags.Len() > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s", flags.String())
	}
	if cmd != "check" { // the scanner reads no config
		fmt.Fprintln(w, "\nWSGUARD_<KEY> environment variables override the config file (see docs/CONFIG.md).")
	}
}

// versionLine is "wsguard VERSION (rev REVISION[, modified], TIME; GO)",
// read from the build information the Go toolchain stamps into the binary.
func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "wsguard (no build info)"
	}
	return formatVersion(bi)
}

// formatVersion is versionLine for given build information. A binary built
// with -buildvcs=false, or outside a git checkout, has no revision: it
// says "rev unknown" rather than nothing.
func formatVersion(bi *debug.BuildInfo) string {
	var rev, when, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if when != "" {
		when = ", " + when
	}
	return fmt.Sprintf("wsguard %s (rev %s%s%s; %s)", bi.Main.Version, rev, modified, when, bi.GoVersion)
}
