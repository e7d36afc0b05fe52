package check

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Options says what to scan and with which credential. The zero value of
// every field but Target is valid.
type Options struct {
	// Target is the ws:// or wss:// URL of the endpoint.
	Target string
	// Origin is the legitimate origin, the one the site's own pages send.
	// Empty means the target's own origin (https://host[:port] for wss://).
	Origin string
	// Cookies are credential cookies ("NAME=VALUE") sent on every handshake.
	Cookies []string
	// Header is sent on every handshake (an Authorization header, say).
	Header http.Header
	// Subprotocols are offered on every handshake, in order. One whose
	// dot-separated part is 8 or more characters long counts as a credential.
	Subprotocols []string
	// Roots verifies the server's certificate. Nil means the system roots.
	Roots *x509.CertPool
	// Message is a small text message the endpoint accepts, sent to learn
	// how it answers and after each probe to see whether the socket is still
	// served. Empty means {"id":1,"op":"ping"}, wsguard's ping, which an
	// echo server simply echoes.
	Message string
	// Slow enables the checks that take minutes (WS-IDLE).
	Slow bool
	// IdleWait is how long WS-IDLE keeps a silent connection open. Zero
	// means 120 s.
	IdleWait time.Duration
	// StepTimeout bounds each step (a dial, a handshake, the wait for an
	// answer). Zero means 5 s.
	StepTimeout time.Duration
	// Budget bounds the traffic sent. Zero means DefaultBudget.
	Budget Budget
}

// ErrUnreachable means the target could not be reached at all: no TCP
// connection, no TLS handshake, or no WebSocket handshake with the
// legitimate origin and the given credential. `wsguard check` exits 2.
var ErrUnreachable = errors.New("target unreachable")

// Report is the outcome of one scan.
type Report struct {
	Target   string    `json:"target"`
	Grade    string    `json:"grade"`
	Findings []Finding `json:"findings"`
	Passed   []ID      `json:"passed"`
	Skipped  []Skipped `json:"skipped"`
	// PassedEvidence says, for each passed check, what showed it passed.
	PassedEvidence []Note `json:"passed_evidence"`
	// Sent is the traffic the scan sent, Budget the bound it was held to.
	Sent   Budget `json:"sent"`
	Budget Budget `json:"budget"`
}

// Worst is the highest severity found, 0 when nothing was.
func (r *Report) Worst() Severity {
	var w Severity
	for _, f := range r.Findings {
		w = max(w, f.Severity)
	}
	return w
}

// Has reports whether the report holds a finding with id.
func (r *Report) Has(id ID) bool {
	for _, f := range r.Findings {
		if f.ID == id {
			return true
		}
	}
	return false
}

// outcome is what one check says: a finding (evidence set), a pass, or a
// skip (reason set).
type outcome struct {
	evidence string // non-empty: a finding
	passed   string // why it passed (Report.PassedEvidence)
	skipped  string // non-empty: not checked
}

func found(format string, args ...any) outcome {
	return outcome{evidence: fmt.Sprintf(format, args...)}
}
func passed(format string, args ...any) outcome { return outcome{passed: fmt.Sprintf(format, args...)} }
func skipped(format string, args ...any) outcome {
	return outcome{skipped: fmt.Sprintf(format, args...)}
}

// checks maps each id to the function that checks it; Run calls them in
// the order of order.
var checks = map[ID]func(*scan, context.Context) outcome{
	Plaintext:     (*scan).checkPlaintext,
	TLSOld:        (*scan).checkTLSOld,
	Cert:          (*scan).checkCert,
	HSTS:          (*scan).checkHSTS,
	OriginForeign: (*scan).checkForeign,
	OriginSibling: (*scan).checkSibling,
	OriginNull:    (*scan).checkNull,
	OriginMissing: (*scan).checkMissing,
	CredEcho:      (*scan).checkCredEcho,
	Cookie:        (*scan).checkCookie,
	Size:          (*scan).checkSize,
	UTF8:          (*scan).checkUTF8,
	Deflate:       (*scan).checkDeflate,
	Rate:          (*scan).checkRate,
	Idle:          (*scan).checkIdle,
}

// scan is the state of one run.
type scan struct {
	opt    Options
	target *url.URL
	secure bool   // wss://
	addr   string // host:port dialled
	origin string // the legitimate origin
	meter  *meter

	// From the TLS and baseline steps.
	certErr  error          // the certificate did not verify
	base     *http.Response // the baseline handshake's answer
	replies  bool           // the endpoint answers the probe message
	msgClose string         // the endpoint closes on the probe message: why
	cookies  []*http.Cookie // every Set-Cookie seen
}

// Run scans opt.Target and returns the report. The error is a usage error
// (a bad URL or origin) or wraps ErrUnreachable; findings are not errors.
func Run(ctx context.Context, opt Options) (*Report, error) {
	s, err := newScan(opt)
	if err != nil {
		return nil, err
	}
	rep := &Report{Target: s.target.String(), Budget: s.meter.limit, Findings: []Finding{}, Passed: []ID{}, Skipped: []Skipped{}, PassedEvidence: []Note{}}
	if err := s.baseline(ctx); err != nil {
		return nil, err
	}
	for _, id := range order {
		if err := ctx.Err(); err != nil {
			rep.Skipped = append(rep.Skipped, Skipped{ID: id, Reason: "the scan was interrupted: " + err.Error()})
			continue
		}
		o := checks[id](s, ctx)
		switch {
		case o.evidence != "":
			rep.Findings = append(rep.Findings, newFinding(id, o.evidence))
		case o.skipped != "":
			rep.Skipped = append(rep.Skipped, Skipped{ID: id, Reason: o.skipped})
		default:
			rep.Passed = append(rep.Passed, id)
			rep.PassedEvidence = append(rep.PassedEvidence, Note{ID: id, Evidence: o.passed})
		}
	}
	rep.Sent = s.meter.spent()
	rep.Grade = grade(rep.Findings)
	return rep, nil
}

func newScan(opt Options) (*scan, error) {
	u, err := url.Parse(opt.Target)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", opt.Target, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("target %q: the scheme must be ws:// or wss://", opt.Target)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("target %q: no host", opt.Target)
	}
	if u.User != nil {
		return nil, fmt.Errorf("target %q: give credentials with --header or --cookie, not in the URL", opt.Target)
	}
	u.Fragment = ""
	s := &scan{opt: opt, target: u, secure: u.Scheme == "wss"}
	port := u.Port()
	if port == "" {
		port = "80"
		if s.secure {
			port = "443"
		}
	}
	s.addr = net.JoinHostPort(u.Hostname(), port)
	s.origin = opt.Origin
	if s.origin == "" {
		scheme := "http"
		if s.secure {
			scheme = "https"
		}
		s.origin = scheme + "://" + u.Host
	} else if _, err := parseOrigin(s.origin); err != nil {
		return nil, err
	}
	if s.opt.Message == "" {
		s.opt.Message = `{"id":1,"op":"ping"}`
	}
	if s.opt.IdleWait == 0 {
		s.opt.IdleWait = 120 * time.Second
	}
	if s.opt.StepTimeout == 0 {
		s.opt.StepTimeout = 5 * time.Second
	}
	if s.opt.Budget == (Budget{}) {
		s.opt.Budget = DefaultBudget
	}
	s.meter = &meter{limit: s.opt.Budget}
	return s, nil
}

// parseOrigin checks an --origin value: scheme://host[:port] and nothing else.
func parseOrigin(o string) (*url.URL, error) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("origin %q: want scheme://host[:port], as a browser sends it (https://app.example.com)", o)
	}
	return u, nil
}

// isCredentialProtocol says whether a subprotocol carries a secret: one of
// its dot-separated parts is 8 or more characters long (wsguard.csrf.<token>,
// x-token.<secret>), unlike a protocol name (wsguard.v1).
func isCredentialProtocol(p string) bool {
	for part := range strings.SplitSeq(p, ".") {
		if len(part) >= 8 {
			return true
		}
	}
	return false
}

// siblingOrigins are same-site origins other than the legitimate one: the
// same host on another port, and a sibling subdomain when the host has one.
func siblingOrigins(legit string) []string {
	u, err := url.Parse(legit)
	if err != nil {
		return nil
	}
	host, port := u.Hostname(), u.Port()
	n := 443
	if u.Scheme == "http" {
		n = 80
	}
	if port != "" {
		n, _ = strconv.Atoi(port)
	}
	other := n + 1
	if other > 65535 {
		other = n - 1
	}
	out := []string{u.Scheme + "://" + net.JoinHostPort(host, strconv.Itoa(other))}
	if net.ParseIP(host) == nil {
		if labels := strings.Split(host, "."); len(labels) >= 3 {
			sib := "wsguard-check." + strings.Join(labels[1:], ".")
			if port != "" {
				sib = net.JoinHostPort(sib, port)
			}
			out = append(out, u.Scheme+"://"+sib)
		}
	}
	return out
}

// foreignOrigins are origins of other sites: one unrelated, and two that
// catch prefix and suffix matching of the legitimate host.
func foreignOrigins(legit string) []string {
	u, err := url.Parse(legit)
	if err != nil {
		return nil
	}
	host := u.Hostname()
	out := []string{"https://wsguard-check.invalid"}
	if net.ParseIP(host) == nil {
		out = append(out,
			u.Scheme+"://"+host+".wsguard-check.invalid", // prefix match: HasPrefix(origin, legit)
			u.Scheme+"://wsguardcheck"+host,              // suffix match: HasSuffix(origin, host)
		)
	}
	return out
}
