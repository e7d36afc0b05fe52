package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// envField is one key settable from the environment.
type envField struct {
	key   string        // dotted YAML key, for messages
	value reflect.Value // addressable field inside the Config being built
}

// envFields maps WSGUARD_<KEY> names to the fields of c they set. Keys come
// from the yaml tags, nested keys joined by "_" and uppercased, so the
// environment can never name a setting the file cannot. Maps and lists of
// structs (namespaces, jwt.keys) have no environment form.
func envFields(c *Config) map[string]envField {
	out := map[string]envField{}
	var walk func(v reflect.Value, key string)
	walk = func(v reflect.Value, key string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			name := yamlName(t.Field(i))
			if name == "" {
				continue
			}
			fv := v.Field(i)
			k := join(key, name)
			if fv.Kind() == reflect.Struct {
				walk(fv, k)
				continue
			}
			if allowedFor(fv.Type()) == "" {
				continue
			}
			env := EnvPrefix + strings.ToUpper(strings.ReplaceAll(k, ".", "_"))
			if prev, dup := out[env]; dup {
				panic(fmt.Sprintf("config: %s and %s both map to %s", prev.key, k, env))
			}
			out[env] = envField{key: k, value: fv}
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return out
}

// EnvNames lists every WSGUARD_ variable Load understands, sorted.
func EnvNames() []string {
	var c Config
	var names []string
	for k := range envFields(&c) {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// allowedFor describes the values a field type accepts from the
// environment; "" means the type has no environment form.
func allowedFor(t reflect.Type) string {
	if t == durationType {
		return "a duration such as 30s, 15m, 24h"
	}
	switch t.Kind() {
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "a comma-separated list"
		}
	}
	return ""
}

// applyEnv sets c's fields from the WSGUARD_* entries of env. Every problem
// is reported, each naming the variable and what it accepts; an unknown
// WSGUARD_ variable is a problem too (a misspelt override must not be
// silently ignored). The variables Kubernetes injects for a Service named
// wsguard are skipped (see isServiceLink).
func applyEnv(c *Config, env []string) error {
	fields := envFields(c)
	var errs []error
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || name == EnvConfig {
			continue
		}
		f, known := fields[name]
		if !known && isServiceLink(name) {
			continue
		}
		if !known {
			errs = append(errs, fmt.Errorf("environment variable %s: no configuration key has this name (nested keys are joined by _, e.g. WSGUARD_TLS_CERT_FILE; namespaces and jwt.keys can only be set in the file)", name))
			continue
		}
		if err := setFromString(f.value, val); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s (%s): %w (allowed: %s)", name, f.key, err, allowedFor(f.value.Type())))
		}
	}
	return errors.Join(errs...)
}

// isServiceLink reports whether name is one of the variables Kubernetes
// injects into every pod for a Service named wsguard (the Docker-links
// form): WSGUARD_PORT=tcp://10.0.0.1:8443, WSGUARD_PORT_8443_TCP_ADDR=...,
// WSGUARD_SERVICE_HOST=..., WSGUARD_SERVICE_PORT_HTTPS=... Refusing them
// would crash-loop the pod; no configuration key starts with port or
// service, so skipping them cannot hide a misspelt override of a real key.
func isServiceLink(name string) bool {
	rest := strings.TrimPrefix(name, EnvPrefix)
	return rest == "PORT" || strings.HasPrefix(rest, "PORT_") || strings.HasPrefix(rest, "SERVICE_")
}

// setFromString parses s into v according to v's type.
func setFromString(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a duration", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not an integer in range", s)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%q is not a finite number", s)
		}
		v.SetFloat(f)
	case reflect.Slice:
		var list []string
		for _, part := range strings.Split(s, ",") {
			if p := strings.TrimSpace(part); p != "" {
				list = append(list, p)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("type %s cannot be set from the environment", v.Type())
	}
	return nil
}
