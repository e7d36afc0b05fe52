package ratelimit

import "time"

// DefaultMaxKeys bounds every table in this package unless WithMaxKeys says
// otherwise.
const DefaultMaxKeys = 100_000

// Option adjusts a constructor in this package.
type Option func(*options)

type options struct {
	maxKeys int
	policy  Policy
}

// WithMaxKeys caps how many keys a table remembers. When it is full, the
// least recently used key is forgotten (see the package doc for the
// trade-off). Zero or less means DefaultMaxKeys.
func WithMaxKeys(n int) Option { return func(o *options) { o.maxKeys = n } }

// WithPolicy sets the Throttle's policy. Other constructors ignore it.
func WithPolicy(p Policy) Option { return func(o *options) { o.policy = p } }

func buildOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.maxKeys <= 0 {
		o.maxKeys = DefaultMaxKeys
	}
	return o
}

// elapsed is now-since, never negative: a clock stepped back counts as no
// time passing rather than as a refund or a penalty.
func elapsed(since, now time.Time) time.Duration {
	if d := now.Sub(since); d > 0 {
		return d
	}
	return 0
}
