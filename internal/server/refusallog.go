package server

import (
	"net/http"
	"sync"
	"time"
	"unicode/utf8"
)

// refusalLogEvery is how often one refusal reason reaches the log: often
// enough that an operator watching the terminal sees why browsers cannot
// connect, rarely enough that a scanner cannot flood it (the audit log
// and the wsguard_refusals_total metric keep every one).
const refusalLogEvery = time.Minute

// refusalKeys names the setting to look at for the refusals a config can
// cause. Refusals of a client's own credential have no key: nothing in
// the config is wrong.
var refusalKeys = map[string]string{
	"origin_not_allowed":   "allowed_origins (or public_url, which it defaults from)",
	"origin_null":          "allowed_origins",
	"tls_required":         "public_url",
	"handshake_rate":       "limits.handshakes_per_second",
	"connection_cap":       "limits.conns_per_user, limits.conns_per_ip or limits.max_conns",
	"ip_banned":            "limits.ban_after_failures",
	"client_cert_required": "tls.client_ca_file",
}

// refusalLog rate-limits handshake refusals on the terminal, per reason.
type refusalLog struct {
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

// warnRefusal writes a refused handshake to the structured log at warn,
// at most once per reason per refusalLogEvery, naming the reason, the
// setting to change and how many were left out since the last line.
func (s *Server) warnRefusal(r *http.Request, reason string) {
	now := s.clock.Now()
	l := &s.refusals
	l.mu.Lock()
	if l.last == nil {
		l.last, l.suppressed = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := l.last[reason]; ok && now.Sub(t) < refusalLogEvery {
		l.suppressed[reason]++
		l.mu.Unlock()
		return
	}
	l.last[reason] = now
	n := l.suppressed[reason]
	delete(l.suppressed, reason)
	l.mu.Unlock()

	attrs := []any{"reason", reason, "origin", clip(r.Header.Get("Origin"), 200)}
	if key := refusalKeys[reason]; key != "" {
		attrs = append(attrs, "change", key)
	}
	if reason == "origin_not_allowed" || reason == "origin_null" {
		attrs = append(attrs, "allowed_origins", s.origins.List())
	}
	if n > 0 {
		attrs = append(attrs, "same_reason_not_logged", n)
	}
	s.log.Warn("WebSocket handshake refused (every refusal is in the audit log; this line repeats at most once a minute per reason)", attrs...)
}

// clip shortens a client-supplied value for the log.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
