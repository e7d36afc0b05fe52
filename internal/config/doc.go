// Package config loads wsguard's configuration: defaults, one YAML file,
// WSGUARD_* environment overrides, derived defaults, then validation.
//
// Order: Default(), then the file (strict: unknown keys, wrong types and
// extra documents are errors naming file, line and dotted key), then the
// environment (WSGUARD_<KEY>, nested keys joined by "_" and uppercased,
// lists comma-separated; an unknown WSGUARD_ variable is an error, except
// WSGUARD_CONFIG, which names the file, and the WSGUARD_PORT* and
// WSGUARD_SERVICE_* variables Kubernetes injects for a Service named
// wsguard), then derived defaults: public_url = https://<listen host>:<listen
// port>, allowed_origins = origin of public_url, audit.file =
// <data_dir>/audit.log, audit.key_file = <data_dir>/audit.key.
// LoadValid is the one entry point of every command: load, then Validate.
// Maps in the file (namespaces) are merged into the defaults, so "room" and
// "user" keep their rules unless redefined.
//
// Threat model: the dangerous configuration. A setting that weakens
// security is never the default and never silent. Validate is the
// secure-config gate that serve runs before listening: it refuses plain ws
// outside loopback development, "*" or "null" origins (cookie auth is
// always on), JWT keys without audience and issuer or with an algorithm
// outside the per-key allowlist, compression without a decompressed-size
// cap, and insecure_dev on a reachable address. Every refusal names the key
// to change and the values allowed. Warnings lists the weakening settings
// that are allowed but on, for a log line, an audit event and a metric at
// every start; Advice lists the valid settings that will probably not work
// (a public_url on another port than listen, a network listen with the
// development certificate). Error messages never print secrets: secrets live in files
// (jwt.keys[].secret_file) and DSN passwords are redacted.
//
// Concurrency: Config is a plain value; Load, Validate and Warnings share
// no state and are safe to call from any goroutine.
package config
