package config

import "fmt"

// Check implements `wsguard config check FILE`: it loads the file with no
// environment overrides and validates it, returning every problem with the
// file name in front.
func Check(path string) error {
	c, err := Load(path, nil)
	if err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
