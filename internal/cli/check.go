package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wsguard/wsguard/internal/check"
)

// exitCode ends a command with a given code: err (if any) is printed, the
// code returned. check uses it for "findings reached --fail-on" (1) and
// "target unreachable" (2, like a usage error but without the --help hint).
type exitCode struct {
	code int
	err  error
}

func (e *exitCode) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// checkCmd scans one WebSocket endpoint and prints the report. It exits 0
// when nothing reaches --fail-on, 1 when something does, 2 on a usage error
// or an unreachable target.
func checkCmd(args []string, stdout, stderr io.Writer, env []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cookies, headers, protocols multiFlag
	origin := fs.String("origin", "", "the legitimate origin, as the site's own pages send it (default: the target's origin)")
	fs.Var(&cookies, "cookie", "credential cookie `NAME=VALUE` sent on every handshake (repeatable)")
	fs.Var(&headers, "header", "header `\"K: V\"` sent on every handshake, an Authorization header say (repeatable)")
	fs.Var(&protocols, "subprotocol", "subprotocol `P` offered on every handshake, in order (repeatable)")
	caFile := fs.String("ca", "", "PEM `FILE` of CA certificates to verify the server with, besides the system roots")
	asJSON := fs.Bool("json", false, "print the report as JSON (for CI)")
	failOn := fs.String("fail-on", "high", "exit 1 when a finding of this severity or worse is found: critical, high, medium or low")
	slow := fs.Bool("slow", false, "also run the checks that take minutes (WS-IDLE: 120 s)")
	message := fs.String("message", "", "a small text message the endpoint accepts (default {\"id\":1,\"op\":\"ping\"}, which echo servers echo)")
	verbose := fs.Bool("verbose", false, "show what showed each passed check")
	timeout := fs.Duration("timeout", 5*time.Second, "bound on each step: a dial, a handshake, the wait for an answer")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("check takes one URL (wss://host/path), got %d arguments", len(pos))
	}
	threshold, ok := check.ParseSeverity(*failOn)
	if !ok {
		return usagef("--fail-on %q: want critical, high, medium or low", *failOn)
	}
	if *timeout <= 0 {
		return usagef("--timeout %s: want a positive duration such as 5s", *timeout)
	}
	opt := check.Options{Target: pos[0], Origin: *origin, Subprotocols: protocols, Slow: *slow, Message: *message, StepTimeout: *timeout}
	for _, c := range cookies {
		if name, _, ok := strings.Cut(c, "="); !ok || name == "" || strings.ContainsAny(c, "; \t\r\n") {
			return usagef("--cookie %q: want NAME=VALUE (one cookie per flag)", clipArg(c))
		}
	}
	opt.Cookies = cookies
	opt.Header = http.Header{}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\r\n") || strings.ContainsAny(v, "\r\n") {
			return usagef("--header %q: want \"Name: value\"", clipArg(h))
		}
		ck := textproto.CanonicalMIMEHeaderKey(k)
		switch {
		case ck == "Origin":
			return usagef("--header Origin: give the legitimate origin with --origin (the scan sends other origins itself)")
		case ck == "Cookie":
			return usagef("--header Cookie: give cookies with --cookie NAME=VALUE")
		case strings.HasPrefix(ck, "Sec-Websocket-") || ck == "Upgrade" || ck == "Connection" || ck == "Host":
			return usagef("--header %s: the scan sets this header itself (subprotocols: --subprotocol)", ck)
		}
		opt.Header.Add(ck, strings.TrimSpace(v))
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return usagef("--ca: %v", err)
		}
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return usagef("--ca %s: no PEM certificate in it", *caFile)
		}
		opt.Roots = roots
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	rep, err := check.Run(ctx, opt)
	switch {
	case errors.Is(err, check.ErrUnreachable):
		return &exitCode{code: exitUsage, err: fmt.Errorf("check: %w", err)}
	case err != nil:
		return usagef("check: %v", err)
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else if *verbose {
		err = rep.WriteTextVerbose(stdout, useColor(stdout, env))
	} else {
		err = rep.WriteText(stdout, useColor(stdout, env))
	}
	if err != nil {
		return err
	}
	if w := rep.Worst(); w >= threshold {
		fmt.Fprintf(stderr, "wsguard check: grade %s, a finding at %s or worse (--fail-on %s)\n", rep.Grade, threshold, threshold)
		return &exitCode{code: exitError}
	}
	return nil
}

// clipArg keeps a bad flag value short in an error: it may hold a secret.
func clipArg(s string) string {
	if len(s) > 12 {
		return s[:8] + "..."
	}
	return s
}

// useColor: colours only on a terminal, and never with NO_COLOR set or
// TERM=dumb.
func useColor(w io.Writer, env []string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, "NO_COLOR=") || kv == "TERM=dumb" {
			return false
		}
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
