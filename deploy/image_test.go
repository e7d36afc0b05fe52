package deploy

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/wsguard/wsguard/internal/config"
)

// repoRoot is the module root: the Dockerfile's build context.
const repoRoot = ".."

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd   string // upper case: FROM, RUN, USER, ...
	args  string
	stage int // 0 before the first FROM, then 1, 2, ...
}

// parseDockerfile reads the instructions of path. It knows what this
// repository's Dockerfile uses: comments, backslash continuations and the
// parser directive; heredocs are not used and not supported.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path) // #nosec G304 -- a file of this repository
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	stage := 0
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		text := cur.String()
		cur.Reset()
		cmd, args, _ := strings.Cut(text, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, instruction{cmd: cmd, args: strings.TrimSpace(args), stage: stage})
	}
	if cur.Len() > 0 {
		t.Fatalf("%s ends inside a continued line", path)
	}
	return out
}

// argDefaults returns the ARG defaults of the Dockerfile (NAME=VALUE).
func argDefaults(ins []instruction) map[string]string {
	m := map[string]string{}
	for _, in := range ins {
		if in.cmd == "ARG" {
			if k, v, ok := strings.Cut(in.args, "="); ok {
				m[k] = v
			}
		}
	}
	return m
}

// shellWords splits a simple shell command: blanks separate words, double
// and single quotes group. Enough for the build line; anything fancier
// (pipes, $(...), &&) is refused so the test never runs a half-read line.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	if strings.ContainsAny(s, "|;&`<>") || strings.Contains(s, "$(") {
		t.Fatalf("build command %q: keep it one plain command (no pipes, lists or substitutions) so this test can run it as the image does", s)
	}
	var words []string
	var w strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("build command %q: unbalanced quote", s)
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  string
)

// staticBinary builds ./cmd/wsguard with the Dockerfile's own go build
// command (ARG defaults expanded, its -o pointed at a temporary file) and
// returns the binary's path. It is built once for all the tests of the
// package.
func staticBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		ins := parseDockerfile(t, "Dockerfile")
		var line string
		for _, in := range ins {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				if line != "" {
					buildErr = "the Dockerfile has more than one go build command"
					return
				}
				line = in.args
			}
		}
		if line == "" {
			buildErr = "the Dockerfile has no RUN ... go build command"
			return
		}
		args := argDefaults(ins)
		line = os.Expand(line, func(k string) string { return args[k] })
		words := shellWords(t, line)
		var env []string
		for len(words) > 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(words[0]) {
			env = append(env, words[0])
			words = words[1:]
		}
		if len(words) < 2 || words[0] != "go" || words[1] != "build" {
			buildErr = "the build command does not start with go build: " + line
			return
		}
		dir, err := os.MkdirTemp("", "wsguard-deploy-test-")
		if err != nil {
			buildErr = err.Error()
			return
		}
		bin := filepath.Join(dir, "wsguard")
		for i := 2; i < len(words)-1; i++ {
			if words[i] == "-o" {
				words[i+1] = bin
			}
		}
		cmd := exec.Command(words[0], words[1:]...) // #nosec G204 -- the Dockerfile's own build command
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = "go build as the Dockerfile does (" + strings.Join(env, " ") + " " + strings.Join(words, " ") + "): " + err.Error() + "\n" + string(out)
			return
		}
		builtBin = bin
	})
	if buildErr != "" {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		_ = os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// TestDockerfileFinalStage: the image runs as a numeric non-root user on a
// base with no libc or shell, with the data directory as a volume.
func TestDockerfileFinalStage(t *testing.T) {
	ins := parseDockerfile(t, "Dockerfile")
	last := 0
	for _, in := range ins {
		last = max(last, in.stage)
	}
	if last < 2 {
		t.Fatalf("the Dockerfile has %d stage(s); want a builder stage and a final stage", last)
	}
	var from, user string
	var volumes, exposed []string
	for _, in := range ins {
		if in.stage != last {
			continue
		}
		switch in.cmd {
		case "FROM":
			from = in.args
		case "USER":
			user = in.args
		case "VOLUME":
			volumes = append(volumes, in.args)
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "RUN":
			t.Errorf("the final stage runs %q: it has no shell; do the work in the builder stage", in.args)
		}
	}
	if !strings.HasPrefix(from, "gcr.io/distroless/static") && from != "scratch" {
		t.Errorf("final stage FROM %q: want distroless static or scratch (the binary is static)", from)
	}
	uid, gid, _ := strings.Cut(user, ":")
	if !regexp.MustCompile(`^[0-9]+$`).MatchString(uid) || uid == "0" {
		t.Errorf("final stage USER %q: want a numeric non-root uid, so runAsNonRoot can verify it", user)
	}
	if gid != "" && (!regexp.MustCompile(`^[0-9]+$`).MatchString(gid) || gid == "0") {
		t.Errorf("final stage USER %q: want a numeric non-root gid", user)
	}
	if !strings.Contains(strings.Join(volumes, " "), "/var/lib/wsguard") {
		t.Errorf("final stage VOLUME %q: want /var/lib/wsguard, where data_dir lives", volumes)
	}
	if strings.Join(exposed, " ") != "8443 9443" {
		t.Errorf("final stage EXPOSE %q: want 8443 9443", exposed)
	}

	// The config baked into the image is valid, its data_dir is inside
	// the volume, and it listens where EXPOSE says.
	var cfgSrc string
	for _, in := range ins {
		if in.stage == last && in.cmd == "COPY" && strings.HasSuffix(in.args, " /etc/wsguard/wsguard.yaml") {
			cfgSrc = strings.Fields(in.args)[0]
		}
	}
	if cfgSrc == "" {
		t.Fatal("the final stage copies no config to /etc/wsguard/wsguard.yaml")
	}
	cfg, err := config.LoadValid(filepath.Join(repoRoot, cfgSrc), nil)
	if err != nil {
		t.Fatalf("%s: %v", cfgSrc, err)
	}
	if !strings.HasPrefix(cfg.DataDir, "/var/lib/wsguard/") {
		t.Errorf("%s: data_dir %q is outside the volume /var/lib/wsguard", cfgSrc, cfg.DataDir)
	}
	if cfg.Listen != ":8443" {
		t.Errorf("%s: listen %q; the image exposes :8443 on every interface", cfgSrc, cfg.Listen)
	}
}

// TestDockerfileBuildsStatic: the Dockerfile's go build command, run here,
// makes a binary with no ELF interpreter and no dynamic section (so it
// runs on distroless static or scratch), that still carries its build
// information, and that runs.
func TestDockerfileBuildsStatic(t *testing.T) {
	ins := parseDockerfile(t, "Dockerfile")
	for _, in := range ins {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			for _, want := range []string{"CGO_ENABLED=0 ", "-trimpath", "./cmd/wsguard"} {
				if !strings.Contains(in.args, want) {
					t.Errorf("build command %q lacks %q", in.args, want)
				}
			}
		}
	}
	bin := staticBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: it is dynamically linked and will not start on a base without libc", p.Type)
		}
	}
	if s := f.Section(".dynamic"); s != nil {
		t.Error("binary has a .dynamic section: it is dynamically linked")
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary imports shared libraries %v", libs)
	}

	// Stripping (-s -w) keeps the module list that `wsguard version` and
	// vulnerability scanners read.
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput() // #nosec G204 -- our own temporary binary
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	for _, want := range []string{"github.com/wsguard/wsguard", "modernc.org/sqlite", "CGO_ENABLED=0", "-trimpath=true"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("build information lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(bin, "version").CombinedOutput() // #nosec G204 -- our own temporary binary
	if err != nil || !strings.HasPrefix(string(out), "wsguard ") {
		t.Errorf("wsguard version: %v\n%s", err, out)
	}
	// The image's ENV WSGUARD_CONFIG and its config, as the static binary
	// reads them: `wsguard config check` says what serve would use.
	check := exec.Command(bin, "config", "check") // #nosec G204 -- our own temporary binary
	check.Env = []string{"WSGUARD_CONFIG=container.yaml"}
	out, err = check.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "container.yaml (WSGUARD_CONFIG): ok (listen :8443,") {
		t.Errorf("WSGUARD_CONFIG=container.yaml wsguard config check: %v\n%s", err, out)
	}
}
