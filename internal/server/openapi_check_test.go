package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// A small validator of the OpenAPI 3.1 subset docs/openapi.yaml uses: it
// knows the schema keywords below and refuses any other, so the file
// cannot use a keyword whose meaning the test would silently skip.

type apiSpec struct {
	doc map[string]any
}

func loadSpec(t *testing.T) *apiSpec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("docs/openapi.yaml: openapi %q, want 3.1.x", v)
	}
	return &apiSpec{doc: doc}
}

func (sp *apiSpec) paths() map[string]any {
	p, _ := sp.doc["paths"].(map[string]any)
	return p
}

// operations lists "METHOD /path" of every operation in the file.
func (sp *apiSpec) operations() []string {
	var out []string
	for path, item := range sp.paths() {
		for m := range item.(map[string]any) {
			switch m {
			case "get", "put", "post", "delete", "patch", "head", "options":
				out = append(out, strings.ToUpper(m)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// checkRoutes compares the server's routes with the file's, both ways.
func (sp *apiSpec) checkRoutes(server []string) []string {
	var errs []string
	file := sp.operations()
	for _, r := range server {
		if !slices.Contains(file, r) {
			errs = append(errs, "the server has "+r+", docs/openapi.yaml does not describe it")
		}
	}
	for _, r := range file {
		if !slices.Contains(server, r) {
			errs = append(errs, "docs/openapi.yaml describes "+r+", the server has no such route")
		}
	}
	return errs
}

func (sp *apiSpec) resolve(v any) any {
	for {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return v
		}
		var cur any = sp.doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cm, _ := cur.(map[string]any)
			cur = cm[part]
		}
		if cur == nil {
			panic("docs/openapi.yaml: unresolved $ref " + ref)
		}
		v = cur
	}
}

// checkAnswer validates one answer of the server: the operation exists,
// its status is listed, and the JSON body matches that status's schema.
// A 404 for a path outside the file answers the generic Error schema.
func (sp *apiSpec) checkAnswer(method, path string, status int, contentType string, body []byte) error {
	item, ok := sp.paths()[path].(map[string]any)
	if !ok {
		if status == http.StatusNotFound {
			return sp.checkBody(sp.resolve(map[string]any{"$ref": "#/components/schemas/Error"}), contentType, body)
		}
		return fmt.Errorf("%s %s answered %d: the path is not in docs/openapi.yaml", method, path, status)
	}
	op, ok := item[strings.ToLower(method)].(map[string]any)
	if !ok && (status == http.StatusNotFound || status == http.StatusMethodNotAllowed) {
		return sp.checkBody(sp.resolve(map[string]any{"$ref": "#/components/schemas/Error"}), contentType, body)
	}
	if !ok {
		return fmt.Errorf("%s %s answered %d: the method is not in docs/openapi.yaml", method, path, status)
	}
	responses, _ := op["responses"].(map[string]any)
	resp, ok := responses[strconv.Itoa(status)]
	if !ok {
		resp, ok = responses["default"]
	}
	if !ok {
		return fmt.Errorf("%s %s answered %d, which docs/openapi.yaml does not list (body %.200s)", method, path, status, body)
	}
	r := sp.resolve(resp).(map[string]any)
	content, _ := r["content"].(map[string]any)
	js, _ := content["application/json"].(map[string]any)
	if js == nil {
		if len(bytes.TrimSpace(body)) != 0 {
			return fmt.Errorf("%s %s %d: body %.200s where the file describes none", method, path, status, body)
		}
		return nil
	}
	if err := sp.checkBody(js["schema"], contentType, body); err != nil {
		return fmt.Errorf("%s %s %d: %v", method, path, status, err)
	}
	return nil
}

func (sp *apiSpec) checkBody(schema any, contentType string, body []byte) error {
	if !strings.HasPrefix(contentType, "application/json") {
		return fmt.Errorf("Content-Type %q, want application/json", contentType)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("body is not JSON: %.200q", body)
	}
	return sp.validate(schema, v, "$")
}

var dateTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$`)

// validate checks v against schema; at is the JSON path for messages.
func (sp *apiSpec) validate(schema any, v any, at string) error {
	s, ok := sp.resolve(schema).(map[string]any)
	if !ok {
		return fmt.Errorf("%s: schema is not an object", at)
	}
	for k := range s {
		switch k {
		case "type", "properties", "required", "additionalProperties", "items", "enum", "const",
			"minimum", "minLength", "maxLength", "minItems", "maxItems", "oneOf", "pattern", "format",
			"description", "title":
		default:
			return fmt.Errorf("%s: schema keyword %q is not known to this validator; teach it or do not use it", at, k)
		}
	}
	if c, ok := s["const"]; ok && !jsonEqual(c, v) {
		return fmt.Errorf("%s: %v, want %v", at, v, c)
	}
	if e, ok := s["enum"].([]any); ok && !slices.ContainsFunc(e, func(x any) bool { return jsonEqual(x, v) }) {
		return fmt.Errorf("%s: %v is not one of %v", at, v, e)
	}
	if one, ok := s["oneOf"].([]any); ok {
		n := 0
		var errs []string
		for _, alt := range one {
			if err := sp.validate(alt, v, at); err == nil {
				n++
			} else {
				errs = append(errs, err.Error())
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: matches %d of oneOf's %d schemas, want 1 (%s)", at, n, len(one), strings.Join(errs, "; "))
		}
	}
	if t, ok := s["type"].(string); ok {
		if err := checkType(t, v, at); err != nil {
			return err
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := x[r.(string)]; !ok {
					return fmt.Errorf("%s: required property %q missing", at, r)
				}
			}
		}
		for k, val := range x {
			ps, ok := props[k]
			if !ok {
				if ap, ok := s["additionalProperties"].(bool); ok && !ap {
					return fmt.Errorf("%s: property %q is not in the schema", at, k)
				}
				continue
			}
			if err := sp.validate(ps, val, at+"."+k); err != nil {
				return err
			}
		}
	case []any:
		if n, ok := s["minItems"].(int); ok && len(x) < n {
			return fmt.Errorf("%s: %d items, want at least %d", at, len(x), n)
		}
		if n, ok := s["maxItems"].(int); ok && len(x) > n {
			return fmt.Errorf("%s: %d items, want at most %d", at, len(x), n)
		}
		if items, ok := s["items"]; ok {
			for i, e := range x {
				if err := sp.validate(items, e, at+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
		}
	case string:
		if n, ok := s["minLength"].(int); ok && len([]rune(x)) < n {
			return fmt.Errorf("%s: %q shorter than %d", at, x, n)
		}
		if n, ok := s["maxLength"].(int); ok && len([]rune(x)) > n {
			return fmt.Errorf("%s: longer than %d", at, n)
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(x) {
			return fmt.Errorf("%s: %q does not match %s", at, x, p)
		}
		if f, _ := s["format"].(string); f == "date-time" && !dateTimeRE.MatchString(x) {
			return fmt.Errorf("%s: %q is not a date-time", at, x)
		}
	case json.Number:
		if m, ok := s["minimum"].(int); ok {
			f, _ := x.Float64()
			if f < float64(m) {
				return fmt.Errorf("%s: %s below the minimum %d", at, x, m)
			}
		}
	}
	return nil
}

func checkType(t string, v any, at string) error {
	ok := false
	switch t {
	case "object":
		_, ok = v.(map[string]any)
	case "array":
		_, ok = v.([]any)
	case "string":
		_, ok = v.(string)
	case "boolean":
		_, ok = v.(bool)
	case "integer":
		if n, isNum := v.(json.Number); isNum {
			f, err := n.Float64()
			ok = err == nil && f == math.Trunc(f)
		}
	case "number":
		_, ok = v.(json.Number)
	case "null":
		ok = v == nil
	default:
		return fmt.Errorf("%s: type %q is not known to this validator", at, t)
	}
	if !ok {
		return fmt.Errorf("%s: %s (%T), want %s", at, fmt.Sprint(v), v, t)
	}
	return nil
}

// jsonEqual compares a YAML-decoded value with a JSON-decoded one.
func jsonEqual(a, b any) bool {
	ab, _ := json.Marshal(a)
	var x any
	dec := json.NewDecoder(bytes.NewReader(ab))
	dec.UseNumber()
	_ = dec.Decode(&x)
	xb, _ := json.Marshal(x)
	bb, _ := json.Marshal(b)
	return bytes.Equal(xb, bb)
}

// specRecorder is an http.RoundTripper that checks every /api/v1 answer
// against the file as the tests go, and remembers which operations answered
// 2xx, so a test can insist each was driven at least once.
type specRecorder struct {
	t    *testing.T
	spec *apiSpec
	next http.RoundTripper

	mu   sync.Mutex
	seen map[string]bool
}

func (r *specRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.Path, "/api/v1/") {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := r.spec.checkAnswer(req.Method, req.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"), body); err != nil {
		r.t.Errorf("answer drifts from docs/openapi.yaml: %v", err)
	}
	r.mu.Lock()
	if resp.StatusCode < 300 {
		r.seen[req.Method+" "+req.URL.Path] = true
	}
	r.mu.Unlock()
	return resp, nil
}

// specClient returns an HTTP client whose every API answer is checked.
func (ts *testServer) specClient(t *testing.T, sp *apiSpec) (*http.Client, *specRecorder) {
	rec := &specRecorder{t: t, spec: sp, next: &http.Transport{TLSClientConfig: ts.tlsConfig()}, seen: map[string]bool{}}
	return &http.Client{Transport: rec, Timeout: 20 * time.Second}, rec
}

// call sends one API request through a checked client.
func specCall(t *testing.T, c *http.Client, ts *testServer, method, path string, h http.Header, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, ts.url+path, rd)
	for k, v := range h {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s answered %d with non-JSON %q", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

var (
	sharedSpecOnce sync.Once
	sharedSpec     *apiSpec
)

// checkAgainstSpec checks one answer of the server against
// docs/openapi.yaml; the shared test helpers call it, so every answer any
// test sees is checked, not only those of the OpenAPI tests. A 431 (header
// too large) comes from net/http before any handler and is not the API's.
func checkAgainstSpec(t *testing.T, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	if !strings.HasPrefix(req.URL.Path, "/api/v1/") || resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge {
		return
	}
	sharedSpecOnce.Do(func() { sharedSpec = loadSpec(t) })
	if err := sharedSpec.checkAnswer(req.Method, req.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"), body); err != nil {
		t.Errorf("answer drifts from docs/openapi.yaml: %v", err)
	}
}
