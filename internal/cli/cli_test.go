package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/wsguard/wsguard/internal/config"
)

func run(env []string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, strings.NewReader(""), &out, &errb, env)
	return code, out.String(), errb.String()
}

// config check must refuse exactly what serve refuses, from the file and
// from the environment alike, in the same words.
func TestConfigCheckAgreesWithServe(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("data_dir: "+filepath.Join(dir, "data")+"\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "listen: localhost:0\nadmin_listen: \"\"\n")
	for _, tc := range []struct {
		name string
		file string
		env  []string
		want string
	}{
		{"postgres store without the shared key", write("pg.yaml", "store: postgres://wsguard:secret@db/wsguard\n"), nil, "secrets_key_file"},
		{"redis broker bad prefix", write("redis.yaml", "broker: redis://:secret@cache:6379/0?prefix=a%20b\n"), nil, "prefix"},
		{"override from the environment", good, []string{"WSGUARD_LIMITS_SEND_QUEUE=0"}, "limits.send_queue"},
		{"store from the environment", good, []string{"WSGUARD_STORE=postgres://db/wsguard"}, "secrets_key_file"},
		{"unknown variable", good, []string{"WSGUARD_LISTN=localhost:1"}, "WSGUARD_LISTN"},
		{"missing certificate", write("cert.yaml", "tls:\n  cert_file: "+filepath.Join(dir, "none.pem")+"\n  key_file: "+filepath.Join(dir, "none.key")+"\n"), nil, "tls.cert_file"},
		{"missing metrics token", write("token.yaml", "admin:\n  metrics_token_file: "+filepath.Join(dir, "none.token")+"\n"), nil, "none.token"},
		{"file named by WSGUARD_CONFIG", "", []string{"WSGUARD_CONFIG=" + write("pg2.yaml", "store: postgres://db/x\n")}, "secrets_key_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var checkArgs, serveArgs []string
			if tc.file != "" {
				checkArgs, serveArgs = []string{"config", "check", tc.file}, []string{"serve", "--config", tc.file}
			} else {
				checkArgs, serveArgs = []string{"config", "check"}, []string{"serve"}
			}
			cCode, cOut, cErr := run(tc.env, checkArgs...)
			sCode, _, sErr := run(tc.env, serveArgs...)
			if cCode != 1 || sCode != 1 {
				t.Fatalf("exit codes: config check %d, serve %d; want 1 and 1\ncheck: %s%s\nserve: %s", cCode, sCode, cOut, cErr, sErr)
			}
			if !strings.Contains(cErr, tc.want) || cErr != sErr {
				t.Errorf("config check and serve disagree, or miss %q:\ncheck: %s\nserve: %s", tc.want, cErr, sErr)
			}
			if strings.Contains(cErr, ":secret@") {
				t.Errorf("a password in the store URL was printed: %s", cErr)
			}
		})
	}
	// The user's side: a good file is ok, and the environment is applied.
	code, out, errOut := run([]string{"WSGUARD_LISTEN=localhost:8446"}, "config", "check", good)
	if code != 0 || !strings.Contains(out, "ok") || !strings.Contains(out, "https://localhost:8446") {
		t.Errorf("config check good.yaml with WSGUARD_LISTEN: exit %d\n%s%s", code, out, errOut)
	}
	// A file named by WSGUARD_CONFIG (the container image's way) is named
	// as what was checked, not reported as the defaults.
	code, out, errOut = run([]string{"WSGUARD_CONFIG=" + good, "WSGUARD_LISTEN=localhost:8446"}, "config", "check")
	if code != 0 || !strings.HasPrefix(out, good+" (WSGUARD_CONFIG): ok") {
		t.Errorf("WSGUARD_CONFIG=good.yaml config check: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ = run(nil, "config", "check"); code != 0 || !strings.HasPrefix(out, "defaults: ok") {
		t.Errorf("config check with no file: exit %d\n%s", code, out)
	}
}

// --help prints usage on stdout and exits 0; a wrong command line exits 2
// and says where the usage is; a failed command exits 1.
func TestHelpAndUsageExitCodes(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"}, {"help", "serve"},
		{"serve", "--help"}, {"serve", "-h"}, {"config", "--help"}, {"config", "check", "--help"},
		{"user", "--help"}, {"apikey", "--help"}, {"session", "--help"}, {"audit", "--help"},
		{"bench", "--help"}, {"version", "--help"}, {"check", "--help"}, {"help", "check"},
		{"proxy", "--help"}, {"help", "proxy"},
	} {
		code, out, errOut := run(nil, args...)
		if code != 0 || !strings.Contains(out, "Usage:") || errOut != "" {
			t.Errorf("wsguard %s: exit %d, stdout %q, stderr %q; want usage on stdout, exit 0", strings.Join(args, " "), code, out, errOut)
		}
	}
	if _, out, _ := run(nil, "serve", "--help"); !strings.Contains(out, "-config") {
		t.Errorf("serve --help does not list --config:\n%s", out)
	}
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"serve", "--nope"}, {"config"}, {"config", "frobnicate"},
		{"session", "revoke"}, {"version", "extra"}, {"bench", "--conns", "many"},
		{"proxy"}, {"proxy", "extra"}, {"proxy", "--upstream"},
	} {
		code, out, errOut := run(nil, args...)
		if code != 2 || errOut == "" || out != "" {
			t.Errorf("wsguard %s: exit %d, stdout %q, stderr %q; want a usage error on stderr, exit 2", strings.Join(args, " "), code, out, errOut)
		}
	}
}

// wsguard proxy refuses a backend URL that is not ws:// or wss://, naming
// the key.
func TestProxyBadUpstream(t *testing.T) {
	code, _, errOut := run(nil, "proxy", "--upstream", "http://127.0.0.1:9000/")
	if code != 1 || !strings.Contains(errOut, "proxy.upstream") {
		t.Errorf("proxy --upstream http://...: exit %d, stderr %q; want exit 1 naming proxy.upstream", code, errOut)
	}
}

func TestVersionNamesRevision(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, _ := run(nil, args...)
		if code != 0 || !strings.HasPrefix(out, "wsguard ") || !strings.Contains(out, "(rev ") {
			t.Errorf("wsguard %s: exit %d, %q", args[0], code, out)
		}
	}
}

func TestFormatVersion(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := formatVersion(bi), "wsguard v1.2.3 (rev 0123456789ab, modified, 2026-12-01T10:00:00Z; go1.26.0)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// config init writes a file that loads back to the defaults and that
// config check accepts; a second init keeps the edited file.
func TestConfigInit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wsguard.yaml")
	if code, out, errOut := run(nil, "config", "init", path); code != 0 {
		t.Fatalf("config init: exit %d\n%s%s", code, out, errOut)
	}
	got, err := config.LoadValid(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := config.Load("", nil)
	if got.Listen != want.Listen || got.PublicURL != want.PublicURL || got.Limits != want.Limits || got.Identity != want.Identity {
		t.Errorf("config init did not write the defaults: %+v", got)
	}
	if code, _, errOut := run(nil, "config", "check", path); code != 0 {
		t.Errorf("config check of the init file: %s", errOut)
	}
	os.WriteFile(path, []byte("listen: localhost:8446\n"), 0o600)
	if code, _, errOut := run(nil, "config", "init", path); code != 1 || !strings.Contains(errOut, "--force") {
		t.Errorf("second init: exit %d, %q; want a refusal naming --force", code, errOut)
	}
	if b, _ := os.ReadFile(path); string(b) != "listen: localhost:8446\n" {
		t.Errorf("edited file overwritten: %q", b)
	}
	if code, _, errOut := run(nil, "config", "init", "--force", path); code != 0 {
		t.Errorf("init --force: %s", errOut)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, config.Sample()) {
		t.Error("init --force did not write the sample")
	}
}
