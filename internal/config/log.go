package config

import (
	"log/slog"
	"strings"
)

// logLevels are the values log.level accepts, quietest last.
var logLevels = []string{"debug", "info", "warn", "error"}

// Log configures the server's own log (JSON lines on standard error), not
// the audit log, which records every security event whatever the level.
type Log struct {
	// Level is the least severe level written: debug, info, warn or error.
	// Default info.
	Level string `yaml:"level"`
}

// SlogLevel returns the level as a slog.Level. Call it on a validated
// config; an unknown level is treated as info.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (c Config) validateLog(p *problems) {
	if !contains(logLevels, c.Log.Level) {
		p.add("log.level", "%q is not a level (allowed: %s)", c.Log.Level, strings.Join(logLevels, ", "))
	}
}
