package cli

import (
	"io"
	"log/slog"

	"github.com/wsguard/wsguard/internal/config"
)

// newLogger is the server's log: JSON lines on w, at the configured
// log.level and above.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: c.SlogLevel()}))
}
