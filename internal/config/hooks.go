package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Hooks lets the application's own backend take part in decisions
// (connect, subscribe, publish) and hear of events (joins, leaves,
// connection ends). Every request is signed with HMAC-SHA256 using the
// secret in SecretFile. An empty URL switches that hook off.
type Hooks struct {
	Connect   string `yaml:"connect"`   // asked after the handshake checks pass; may add roles. Default off.
	Subscribe string `yaml:"subscribe"` // asked before each subscribe. Default off.
	Publish   string `yaml:"publish"`   // asked before each socket publish; may amend data. Default off.
	Events    string `yaml:"events"`    // told of joins, leaves and connection ends (webhooks). Default off.
	// SecretFile holds the HMAC-SHA256 key (at least 32 bytes) that signs
	// every hook request. Required when any hook is set.
	SecretFile string `yaml:"secret_file"`
	// Timeout bounds each decision request; past it the answer is no
	// (fail closed). Default 2s, allowed 100ms to 30s.
	Timeout Duration `yaml:"timeout"`
	// AllowLoopbackHTTP lets a hook URL be plain http:// to a loopback
	// address (a backend on the same host). Off by default; on, it warns
	// at every start and is counted as an insecure setting.
	AllowLoopbackHTTP bool `yaml:"allow_loopback_http"`
	// EventsQueue bounds the webhook events waiting for delivery; when it
	// is full the oldest is dropped (and counted). Default 10000.
	EventsQueue int `yaml:"events_queue"`
	// EventsAttempts is how many times one webhook is tried before it is
	// given up (with backoff between tries). Default 5, allowed 1 to 20.
	EventsAttempts int `yaml:"events_attempts"`
}

// Hook limits, shared by Validate and its messages.
const (
	minHookTimeout = 100 * time.Millisecond
	maxHookTimeout = 30 * time.Second
)

// Enabled reports whether any hook URL is set.
func (h Hooks) Enabled() bool {
	return h.Connect != "" || h.Subscribe != "" || h.Publish != "" || h.Events != ""
}

// urls lists the hook keys and their URLs.
func (h Hooks) urls() [][2]string {
	return [][2]string{{"hooks.connect", h.Connect}, {"hooks.subscribe", h.Subscribe}, {"hooks.publish", h.Publish}, {"hooks.events", h.Events}}
}

func (c Config) validateHooks(p *problems) {
	h := c.Hooks
	for _, ku := range h.urls() {
		key, raw := ku[0], ku[1]
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		switch {
		case err != nil || u.Host == "" || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http"):
			p.add(key, "%q is not a URL (allowed: https://host/path)", RedactURL(raw))
		case u.User != nil:
			p.add(key, "%q carries credentials in the URL; requests are signed with hooks.secret_file instead (allowed: https://host/path)", RedactURL(raw))
		case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
			p.add(key, "%q is plain http to another host; a network attacker could read and answer the server's questions (allowed: https://..., or http:// to a loopback address with hooks.allow_loopback_http: true)", RedactURL(raw))
		case u.Scheme == "http" && !h.AllowLoopbackHTTP:
			p.add(key, "%q is plain http; set hooks.allow_loopback_http: true to allow it to a loopback address (allowed: https://...)", RedactURL(raw))
		}
	}
	if h.Enabled() && strings.TrimSpace(h.SecretFile) == "" {
		p.add("hooks.secret_file", "empty while a hook URL is set; hook requests must be signed (allowed: a file holding at least 32 random bytes, e.g. openssl rand -hex 32)")
	}
	if h.Timeout.D() < minHookTimeout || h.Timeout.D() > maxHookTimeout {
		p.add("hooks.timeout", "%s is out of range (allowed: %s to %s)", h.Timeout.D(), minHookTimeout, maxHookTimeout)
	}
	if h.EventsQueue < 1 || h.EventsQueue > 1_000_000 {
		p.add("hooks.events_queue", "%d is out of range (allowed: 1 to 1000000)", h.EventsQueue)
	}
	if h.EventsAttempts < 1 || h.EventsAttempts > 20 {
		p.add("hooks.events_attempts", "%d is out of range (allowed: 1 to 20)", h.EventsAttempts)
	}
}

// hookWarnings lists the weakening hook settings that are on.
func (c Config) hookWarnings() []string {
	if !c.Hooks.AllowLoopbackHTTP {
		return nil
	}
	var plain []string
	for _, ku := range c.Hooks.urls() {
		if strings.HasPrefix(strings.ToLower(ku[1]), "http://") {
			plain = append(plain, ku[0])
		}
	}
	if len(plain) == 0 {
		return []string{"hooks.allow_loopback_http: plain http hook URLs to loopback are allowed"}
	}
	return []string{fmt.Sprintf("hooks.allow_loopback_http: %s sent over plain http to loopback; anyone on the host can read or answer them", strings.Join(plain, ", "))}
}
