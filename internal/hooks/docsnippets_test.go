package hooks

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// snippet returns the code block of lang in docs/CLIENTS.md's "Backend
// hooks" section that contains marker.
func snippet(t *testing.T, lang, marker string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "CLIENTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "\n## Backend hooks")
	if i < 0 {
		t.Fatal(`docs/CLIENTS.md has no "## Backend hooks" section`)
	}
	re := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```")
	for _, m := range re.FindAllStringSubmatch(doc[i:], -1) {
		if strings.Contains(m[1], marker) {
			return m[1]
		}
	}
	t.Fatalf("docs/CLIENTS.md: no %s block with %q under Backend hooks", lang, marker)
	return ""
}

type snippetCase struct {
	Name   string `json:"name"`
	Secret string `json:"secret"` // base64
	Header string `json:"header"`
	Body   string `json:"body"` // base64
	Now    int64  `json:"now"`
	Want   bool   `json:"want"`
}

// snippetCases are requests signed by the server's own Sign, and forgeries.
func snippetCases() []snippetCase {
	now := time.Unix(1_790_000_000, 0)
	body := []byte(`{"event":"join","id":"x","user":"alice","channel":"room:lobby"}`)
	other := []byte("another secret of at least thirty-two bytes")
	good := Sign(secret, body, now)
	enc := base64.StdEncoding.EncodeToString
	c := func(name string, sec []byte, header string, b []byte, at time.Time, want bool) snippetCase {
		return snippetCase{name, enc(sec), header, enc(b), at.Unix(), want}
	}
	return []snippetCase{
		c("signed by the server", secret, good, body, now, true),
		c("signed by the server, 4 minutes ago", secret, good, body, now.Add(4*time.Minute), true),
		c("another secret", secret, Sign(other, body, now), body, now, false),
		c("altered body", secret, good, []byte(strings.Replace(string(body), "alice", "admin", 1)), now, false),
		c("no header", secret, "", body, now, false),
		c("garbage header", secret, "sha256=deadbeef", body, now, false),
		c("replayed 10 minutes later", secret, good, body, now.Add(10*time.Minute), false),
		c("timestamp changed", secret, strings.Replace(good, "t=1790000000", "t=1790000001", 1), body, now, false),
		c("signature cut short", secret, good[:len(good)-2], body, now, false),
	}
}

func runSnippet(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s snippet: %v\n%s", name, err, out)
	}
	var got []bool
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s snippet printed %q", name, out)
	}
	cases := snippetCases()
	if len(got) != len(cases) {
		t.Fatalf("%s snippet: %d answers for %d cases", name, len(got), len(cases))
	}
	for i, c := range cases {
		if got[i] != c.Want {
			t.Errorf("%s snippet, %s: %v, want %v", name, c.Name, got[i], c.Want)
		}
	}
}

func writeCases(t *testing.T, dir string) string {
	t.Helper()
	b, _ := json.Marshal(snippetCases())
	p := filepath.Join(dir, "cases.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDocSnippetGo runs the Go verification snippet of docs/CLIENTS.md.
func TestDocSnippetGo(t *testing.T) {
	dir := t.TempDir()
	src := "package main\n\nimport (\n\t\"encoding/base64\"\n\t\"encoding/json\"\n\t\"os\"\n)\n\n" +
		snippet(t, "go", "func verifyWsguard") + `
func main() {
	b, _ := os.ReadFile(os.Args[1])
	var cases []struct {
		Secret, Header, Body string
		Now                  int64
	}
	_ = json.Unmarshal(b, &cases)
	out := []bool{}
	for _, c := range cases {
		s, _ := base64.StdEncoding.DecodeString(c.Secret)
		body, _ := base64.StdEncoding.DecodeString(c.Body)
		out = append(out, verifyWsguard(s, c.Header, body, time.Unix(c.Now, 0)))
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "main.go", writeCases(t, dir))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOFLAGS=")
	runSnippet(t, "Go", cmd)
}

// TestDocSnippetNode runs the Node verification snippet.
func TestDocSnippetNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed to check the Node snippet of docs/CLIENTS.md: install Node.js 20 (Debian: apt-get install nodejs)")
	}
	dir := t.TempDir()
	src := snippet(t, "js", "function verifyWsguard") + `
const cases = JSON.parse(require("node:fs").readFileSync(process.argv[2], "utf8"));
console.log(JSON.stringify(cases.map((c) =>
  verifyWsguard(Buffer.from(c.secret, "base64"), c.header, Buffer.from(c.body, "base64"), c.now))));
`
	p := filepath.Join(dir, "verify.cjs")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	runSnippet(t, "Node", exec.Command(node, p, writeCases(t, dir))) // #nosec G204 -- our own test script
}

// TestDocSnippetPython runs the Python verification snippet.
func TestDocSnippetPython(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Fatal("python3 is needed to check the Python snippet of docs/CLIENTS.md: install it (Debian: apt-get install python3)")
	}
	dir := t.TempDir()
	src := snippet(t, "python", "def verify_wsguard") + `

import base64, json, sys
cases = json.load(open(sys.argv[1]))
print(json.dumps([verify_wsguard(base64.b64decode(c["secret"]), c["header"], base64.b64decode(c["body"]), c["now"]) for c in cases]))
`
	p := filepath.Join(dir, "verify.py")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	runSnippet(t, "Python", exec.Command(py, p, writeCases(t, dir))) // #nosec G204 -- our own test script
}
