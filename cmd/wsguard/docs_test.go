package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the module root, two levels above this package.
const repoRoot = "../.."

// outsideRefs are references to documents that are not in the repository.
// Built from parts so that this file does not name them itself.
var outsideRefs = []string{
	"DESIGN" + ".md",
	"ATTACKS" + ".md",
	"DESIGN" + " §",
	"ATTACKS" + " ",
	"../" + "shared",
}

// textFiles are the files a reader or a reviewer reads: docs, code and its
// comments, scripts, templates and the browser client.
var textFiles = map[string]bool{
	".md": true, ".go": true, ".js": true, ".html": true, ".tmpl": true, ".css": true,
	".sh": true, ".yaml": true, ".yml": true, ".sql": true, ".mod": true, ".txt": true,
}

// repoFiles returns every text file of the repository (not .git, not
// fuzz corpora and fixtures under testdata), relative to repoRoot.
func repoFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "wsguard-data", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if textFiles[filepath.Ext(p)] {
			rel, _ := filepath.Rel(repoRoot, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("found only %d files under %s: wrong root?", len(files), repoRoot)
	}
	return files
}

// TestDocsStandAlone: nothing a newcomer reads (README, docs/, BENCHMARKS,
// code comments, the usage text) sends them to a document the repository
// does not carry.
func TestDocsStandAlone(t *testing.T) {
	for _, f := range repoFiles(t) {
		b, err := os.ReadFile(filepath.Join(repoRoot, f)) // #nosec G304 -- files of this repository
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, ref := range outsideRefs {
				if strings.Contains(line, ref) {
					t.Errorf("%s:%d cites %q, which is not in the repository: say it here or point to docs/ (SECURITY.md, ARCHITECTURE.md, PROTOCOL.md)\n\t%s", f, i+1, ref, strings.TrimSpace(line))
				}
			}
		}
	}

	// The usage text as a user sees it, the whole and each command's.
	n := &node{bin: binary(t), env: os.Environ()}
	for _, args := range [][]string{{"help"}, {"--help"}, {"serve", "--help"}, {"config", "--help"},
		{"user", "--help"}, {"session", "--help"}, {"apikey", "--help"}, {"audit", "--help"}, {"bench", "--help"}} {
		usage := n.run(t, args...)
		if !strings.Contains(usage, "wsguard ") {
			t.Errorf("wsguard %s printed no usage:\n%s", strings.Join(args, " "), usage)
		}
		for _, ref := range append(outsideRefs, "§") {
			if strings.Contains(usage, ref) {
				t.Errorf("wsguard %s cites %q:\n%s", strings.Join(args, " "), ref, usage)
			}
		}
	}
}

var (
	threatRow = regexp.MustCompile(`(?m)^\| ([TCIKAMF][0-9]{1,2}) \|`)
	threatID  = regexp.MustCompile(`\b[TCIKAMF][0-9]{1,2}\b`)
)

// TestThreatIDsDefined: every short threat id (T1, C8, I9, ...) used in a
// Markdown file or a code comment is defined, once, in the threat
// catalogue of docs/SECURITY.md, so a reader can always look it up.
func TestThreatIDsDefined(t *testing.T) {
	sec, err := os.ReadFile(filepath.Join(repoRoot, "docs", "SECURITY.md"))
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]int{}
	for _, m := range threatRow.FindAllStringSubmatch(string(sec), -1) {
		defined[m[1]]++
	}
	if len(defined) < 40 {
		t.Fatalf("SECURITY.md's catalogue defines only %d ids", len(defined))
	}
	for id, n := range defined {
		if n > 1 {
			t.Errorf("SECURITY.md defines %s %d times", id, n)
		}
	}
	for _, f := range repoFiles(t) {
		ext := filepath.Ext(f)
		if ext != ".md" && ext != ".go" && ext != ".js" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, f)) // #nosec G304 -- files of this repository
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			text := line
			if ext != ".md" { // code: its comments only
				var ok bool
				if text, ok = comment(line); !ok {
					continue
				}
			}
			for _, id := range threatID.FindAllString(text, -1) {
				if defined[id] == 0 {
					t.Errorf("%s:%d uses threat id %s, which docs/SECURITY.md's catalogue does not define\n\t%s", f, i+1, id, strings.TrimSpace(line))
				}
			}
		}
	}
}

// comment returns the // comment of a line of Go or JavaScript, skipping
// the // of a URL ("https://").
func comment(line string) (string, bool) {
	for i := 0; i+1 < len(line); i++ {
		if line[i] == '/' && line[i+1] == '/' && (i == 0 || line[i-1] != ':') {
			return line[i+2:], true
		}
	}
	return "", false
}
