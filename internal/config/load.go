package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxFileBytes bounds the config file read. A real file is a few KiB; the
// cap keeps a mistaken path (a log, a device) from being slurped whole.
const maxFileBytes = 1 << 20

// EnvPrefix starts every environment override. EnvConfig names the file to
// load and is not itself a key.
const (
	EnvPrefix = "WSGUARD_"
	EnvConfig = "WSGUARD_CONFIG"
)

// Load returns Default() overlaid with the YAML file at path (none when path
// is "") and then with the WSGUARD_* entries of env ("KEY=VALUE" strings, as
// from os.Environ), and fills the derived defaults (public_url from listen,
// allowed_origins from public_url, audit.file and audit.key_file under
// data_dir).
//
// The file is decoded strictly: an unknown key is an error naming the file,
// the line and the dotted key, because a misspelt security setting silently
// ignored is a setting silently off. Load does not validate: call Validate.
func Load(path string, env []string) (Config, error) {
	if path == "" {
		return LoadBytes("", nil, env)
	}
	f, err := os.Open(path) // #nosec G304 -- the config file the operator named
	if err != nil {
		return Config{}, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return Config{}, fmt.Errorf("config file %q: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return Config{}, fmt.Errorf("config file %q: larger than %d bytes", path, maxFileBytes)
	}
	return LoadBytes(path, data, env)
}

// LoadBytes is Load with the file's contents given (tests, fuzzing,
// embedders); name is used in error messages only. Empty data means no file.
func LoadBytes(name string, data []byte, env []string) (Config, error) {
	c := Default()
	// public_url follows listen unless set: a newcomer who changes only the
	// port gets a setup link and an origin allowlist on that port.
	c.PublicURL = ""
	if len(bytes.TrimSpace(data)) > 0 {
		if err := decodeYAML(name, data, &c); err != nil {
			return Config{}, err
		}
	}
	if err := applyEnv(&c, env); err != nil {
		return Config{}, err
	}
	c.fillDerived()
	return c, nil
}

// fillDerived sets the defaults that depend on other keys.
func (c *Config) fillDerived() {
	if c.PublicURL == "" {
		c.PublicURL = publicURLFor(c.Listen)
	}
	if len(c.AllowedOrigins) == 0 {
		if o, err := originOf(c.PublicURL); err == nil {
			c.AllowedOrigins = []string{o}
		}
	}
	if c.Audit.File == "" && c.DataDir != "" {
		c.Audit.File = filepath.Join(c.DataDir, "audit.log")
	}
	if c.Audit.KeyFile == "" && c.DataDir != "" {
		c.Audit.KeyFile = filepath.Join(c.DataDir, "audit.key")
	}
}

// publicURLFor is the https URL that reaches listen from this machine:
// its host (localhost for an empty or wildcard one) and its port (omitted
// when 443). "" when listen is not host:port; Validate says why.
func publicURLFor(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	if port == "443" {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return "https://" + host
	}
	return "https://" + net.JoinHostPort(host, port)
}

// originOf returns scheme://host[:port] of an http(s) URL, lowercased, with
// the scheme's default port omitted (the form browsers send in Origin).
func originOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", errors.New("no host")
	}
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(host, port), nil
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, nil
}

// decodeYAML checks data against Config's shape (for messages that name the
// file, line and dotted key), then decodes it with the YAML decoder's KnownFields.
func decodeYAML(name string, data []byte, c *Config) error {
	if name == "" {
		name = "config"
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var problems []string
	checkNode(&root, reflect.TypeOf(Config{}), "", &problems)
	if len(problems) > 0 {
		for i, p := range problems {
			problems[i] = name + ":" + p
		}
		return errors.New(strings.Join(problems, "\n"))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: only one YAML document is allowed", name)
	}
	return nil
}

var durationType = reflect.TypeOf(Duration(0))

// checkNode walks n against type t, appending "line: problem" for every
// unknown key and every value that does not decode into its field. Aliases
// are not followed (the decoder handles them with its own expansion limits).
func checkNode(n *yaml.Node, t reflect.Type, path string, problems *[]string) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			checkNode(c, t, path, problems)
		}
		return
	case yaml.AliasNode:
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	switch {
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*problems = append(*problems, fmt.Sprintf("%d: %s: expected a mapping of keys", n.Line, display(path)))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				*problems = append(*problems, fmt.Sprintf("%d: %s: keys must be plain names", k.Line, display(path)))
				continue
			}
			if k.Value == "<<" { // merge key: its contents are checked by the decoder
				continue
			}
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				*problems = append(*problems, fmt.Sprintf("%d: unknown key %q (allowed here: %s)", k.Line, join(path, k.Value), strings.Join(tagNames(t), ", ")))
				continue
			}
			checkNode(v, f.Type, join(path, k.Value), problems)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			*problems = append(*problems, fmt.Sprintf("%d: %s: expected a mapping", n.Line, display(path)))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			checkNode(v, t.Elem(), join(path, k.Value), problems)
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.SequenceNode {
			*problems = append(*problems, fmt.Sprintf("%d: %s: expected a list", n.Line, display(path)))
			return
		}
		for i, c := range n.Content {
			checkNode(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), problems)
		}
	default:
		if hasAlias(n, 0) {
			return // left to the decoder and its alias-expansion limits
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			*problems = append(*problems, fmt.Sprintf("%d: %s: %s", n.Line, display(path), leafMessage(err, t)))
		}
	}
}

// hasAlias reports whether a leaf value uses an alias anywhere below it.
func hasAlias(n *yaml.Node, depth int) bool {
	if n.Kind == yaml.AliasNode || depth > 100 {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c, depth+1) {
			return true
		}
	}
	return false
}

// leafMessage turns a YAML decode error into "what is wrong (allowed: ...)".
func leafMessage(err error, t reflect.Type) string {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
		if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "line ") && i > 0 {
			msg = msg[i+2:]
		}
	}
	if t == durationType {
		return msg // already says what a duration looks like
	}
	allowed := allowedFor(t)
	if t.Kind() == reflect.Slice {
		allowed = "a list of strings"
	}
	return fmt.Sprintf("%s (allowed: %s)", msg, allowed)
}

func display(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlName returns the key a struct field is written as, "" when none.
func yamlName(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if n := yamlName(f); n != "" && n == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tagNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if n := yamlName(t.Field(i)); n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
