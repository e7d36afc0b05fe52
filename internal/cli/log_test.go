package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wsguard/wsguard/internal/config"
)

// TestLogLevel: the operator's log.level decides what reaches the
// terminal; the default keeps info and drops debug.
func TestLogLevel(t *testing.T) {
	for _, tc := range []struct {
		level string
		want  []string // messages that must appear, of debug/info/warn/error
	}{
		{"", []string{"info", "warn", "error"}}, // Default().Log
		{"debug", []string{"debug", "info", "warn", "error"}},
		{"info", []string{"info", "warn", "error"}},
		{"warn", []string{"warn", "error"}},
		{"error", []string{"error"}},
	} {
		t.Run(tc.level, func(t *testing.T) {
			var env []string
			if tc.level != "" {
				env = []string{"WSGUARD_LOG_LEVEL=" + tc.level}
			}
			cfg, err := config.Load("", env)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			log := newLogger(&buf, cfg.Log)
			log.Debug("msg-debug")
			log.Info("msg-info")
			log.Warn("msg-warn")
			log.Error("msg-error")
			got := buf.String()
			for _, l := range []string{"debug", "info", "warn", "error"} {
				want := false
				for _, w := range tc.want {
					want = want || w == l
				}
				if has := strings.Contains(got, `"msg":"msg-`+l+`"`); has != want {
					t.Errorf("level %q: %s line written = %v, want %v\n%s", tc.level, l, has, want, got)
				}
			}
		})
	}
}
