package config

import (
	"fmt"
	"strings"
)

// LoadValid is the one way every wsguard command loads its configuration:
// the file at path (or, when path is "", the file WSGUARD_CONFIG names in
// env, or none), overlaid with the WSGUARD_* entries of env, then
// validated. Problems name the file in front, so `wsguard config check`
// and `wsguard serve` report the same thing in the same words.
func LoadValid(path string, env []string) (Config, error) {
	if path == "" {
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, EnvConfig+"="); ok {
				path = v
			}
		}
	}
	c, err := Load(path, env)
	if err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		if path == "" {
			return c, err
		}
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
