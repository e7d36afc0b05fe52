package config

import (
	"strings"
	"testing"
	"time"
)

// TestHooksValidation: hook URLs must be https, or plain http to loopback
// only when allowed explicitly (and then a warning); a secret is required.
func TestHooksValidation(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Hooks)
		want   string // a problem's key, "" for valid
	}{
		{"off", func(h *Hooks) {}, ""},
		{"https", func(h *Hooks) { h.Connect = "https://app.example/hooks/connect"; h.SecretFile = "s" }, ""},
		{"no secret", func(h *Hooks) { h.Connect = "https://app.example/c" }, "hooks.secret_file"},
		{"http elsewhere", func(h *Hooks) { h.Events = "http://app.example/e"; h.SecretFile = "s"; h.AllowLoopbackHTTP = true }, "hooks.events"},
		{"http loopback not allowed", func(h *Hooks) { h.Publish = "http://127.0.0.1:9000/p"; h.SecretFile = "s" }, "hooks.publish"},
		{"http loopback allowed", func(h *Hooks) { h.Publish = "http://127.0.0.1:9000/p"; h.SecretFile = "s"; h.AllowLoopbackHTTP = true }, ""},
		{"credentials in URL", func(h *Hooks) { h.Subscribe = "https://u:p@app.example/s"; h.SecretFile = "s" }, "hooks.subscribe"},
		{"not a URL", func(h *Hooks) { h.Subscribe = "app.example/s"; h.SecretFile = "s" }, "hooks.subscribe"},
		{"timeout too long", func(h *Hooks) { h.Timeout = Duration(time.Minute) }, "hooks.timeout"},
		{"timeout too short", func(h *Hooks) { h.Timeout = Duration(time.Millisecond) }, "hooks.timeout"},
		{"queue zero", func(h *Hooks) { h.EventsQueue = 0 }, "hooks.events_queue"},
		{"attempts", func(h *Hooks) { h.EventsAttempts = 50 }, "hooks.events_attempts"},
	}
	for _, c := range cases {
		cfg := valid()
		c.mutate(&cfg.Hooks)
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want+":")):
			t.Errorf("%s: %v, want a problem with %s", c.name, err, c.want)
		}
	}
	cfg := valid()
	cfg.Hooks.Events = "http://localhost:9000/e"
	cfg.Hooks.SecretFile = "s"
	cfg.Hooks.AllowLoopbackHTTP = true
	found := false
	for _, w := range cfg.Warnings() {
		found = found || strings.Contains(w, "hooks.allow_loopback_http") && strings.Contains(w, "hooks.events")
	}
	if !found {
		t.Fatalf("plain http hooks do not warn: %v", cfg.Warnings())
	}
}
