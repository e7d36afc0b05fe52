package main

import (
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goCmd runs the go command in the repository root with extra environment.
func goCmd(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestToolsPinnedOfflineNotLinked: the linters scripts/test.sh runs are
// pinned tool dependencies in tools.mod, run with `go tool`, never
// installed into GOPATH; once the module cache holds them, nothing is
// fetched (GOPROXY=off still works); and the server binary links none of
// them.
func TestToolsPinnedOfflineNotLinked(t *testing.T) {
	tools, err := os.ReadFile(filepath.Join(repoRoot, "tools.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\thonnef.co/go/tools/cmd/staticcheck\n", "\tgithub.com/securego/gosec/v2/cmd/gosec\n", "\thonnef.co/go/tools v", "\tgithub.com/securego/gosec/v2 v"} {
		if !strings.Contains(string(tools), want) {
			t.Errorf("tools.mod lacks %q", strings.TrimSpace(want))
		}
	}
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(gomod), "\ntool") || strings.Contains(string(gomod), "honnef.co") || strings.Contains(string(gomod), "securego") {
		t.Error("go.mod carries the linters: their dependencies would change the server's build")
	}
	script, err := os.ReadFile(filepath.Join(repoRoot, "scripts", "test.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"go tool -modfile=tools.mod staticcheck ./...", "go tool -modfile=tools.mod gosec ", "go mod download -modfile=\"$modfile\" -x"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("scripts/test.sh does not run %q", want)
		}
	}
	if strings.Contains(string(script), "go install") {
		t.Error("scripts/test.sh installs into GOPATH")
	}

	// Cache what the script would, then go offline.
	goCmd(t, nil, "mod", "download")
	goCmd(t, nil, "mod", "download", "-modfile=tools.mod")
	offline := []string{"GOPROXY=off"}
	for _, args := range [][]string{{"mod", "download", "-x"}, {"mod", "download", "-modfile=tools.mod", "-x"}} {
		if out := goCmd(t, offline, args...); strings.Contains(out, "# get ") {
			t.Errorf("go %s fetched with everything cached:\n%s", strings.Join(args, " "), out)
		}
	}
	goCmd(t, offline, "mod", "verify")
	goCmd(t, offline, "mod", "verify", "-modfile=tools.mod")
	if out := goCmd(t, offline, "tool", "-modfile=tools.mod", "staticcheck", "-version"); !strings.Contains(out, "staticcheck") {
		t.Errorf("staticcheck -version: %s", out)
	}
	goCmd(t, offline, "tool", "-modfile=tools.mod", "gosec", "-version")

	bi, err := buildinfo.ReadFile(binary(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range bi.Deps {
		if strings.HasPrefix(d.Path, "honnef.co/") || strings.HasPrefix(d.Path, "github.com/securego/") {
			t.Errorf("the server binary links %s", d.Path)
		}
	}
}
