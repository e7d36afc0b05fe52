package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// installServer says how to get the binaries a private server needs.
const installServer = "install PostgreSQL's server binaries (Debian: apt-get install postgresql; " +
	"they live in /usr/lib/postgresql/VERSION/bin)"

// Server is a private PostgreSQL cluster in a temporary directory, on a
// loopback port of its own, that a test may stop and start again to see
// what an outage does. The shared test server (NewDatabase) must never be
// restarted: other packages' tests run against it at the same time.
type Server struct {
	t    testing.TB
	bin  string // the directory holding initdb, pg_ctl and postgres
	dir  string // the temporary directory: data/, the socket and the log
	Port int
	// asPostgres is set when we are root: PostgreSQL refuses to run as
	// root, so its commands run as the postgres OS user, who owns dir.
	asPostgres bool
}

// NewServer initialises a cluster (user postgres, trust authentication,
// fsync off: a test's data need not survive a power cut) and starts it on a
// free loopback port. It is stopped and removed when the test ends. It
// fails the test, saying what to install, when the binaries are missing.
func NewServer(t testing.TB) *Server {
	t.Helper()
	bin := serverBin()
	if bin == "" {
		t.Fatalf("no PostgreSQL server binaries (initdb, pg_ctl): %s", installServer)
	}
	s := &Server{t: t, bin: bin, asPostgres: os.Geteuid() == 0}
	if s.asPostgres {
		if _, err := exec.LookPath("runuser"); err != nil {
			t.Fatalf("running as root, a private PostgreSQL must run as user postgres, and runuser is missing: apt-get install util-linux")
		}
	}
	// Not t.TempDir: its parent is private to us, and the postgres user
	// must reach the directory when we are root. os.MkdirTemp in the
	// system's temporary directory is reachable and short enough for a
	// Unix socket path.
	dir, err := os.MkdirTemp("", "wsguard-pg-")
	if err != nil {
		t.Fatal(err)
	}
	s.dir = dir
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if s.asPostgres {
		if err := chownPostgres(dir); err != nil {
			t.Fatalf("give %s to user postgres: %v (%s)", dir, err, installServer)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	_ = l.Close()

	s.run("initdb", "-D", s.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions")
	conf := fmt.Sprintf("\n# a private test cluster (internal/store/pgtest)\n"+
		"port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"+
		"shared_buffers = 16MB\nmax_connections = 100\n", s.Port, dir)
	f, err := os.OpenFile(filepath.Join(s.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		// Immediate: nothing here needs a clean shutdown, and it never
		// waits on connections a failed test left open.
		_ = s.pgCtl("stop", "-m", "immediate")
	})
	return s
}

// serverBin finds the newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl.
func serverBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest first; versions are numbers (9.6, 15, 16), so compare them as such.
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if fileExists(filepath.Join(d, "initdb")) && fileExists(filepath.Join(d, "pg_ctl")) {
			return d
		}
	}
	return ""
}

func version(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// command builds one of the server's programs, as user postgres when we are root.
func (s *Server) command(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, prog)
	if s.asPostgres {
		// #nosec G204 -- a test running PostgreSQL's own programs with arguments it built
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	// #nosec G204 -- as above
	return exec.Command(path, args...)
}

// run runs prog and fails the test with its output if it fails.
func (s *Server) run(prog string, args ...string) {
	s.t.Helper()
	out, err := s.command(prog, args...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("%s %v: %v\n%s", prog, args, err, out)
	}
}

// pgCtl runs pg_ctl on this cluster, waiting (-w, at most 60 s) for the
// change to take effect.
func (s *Server) pgCtl(args ...string) error {
	args = append([]string{"-D", s.data(), "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60"}, args...)
	var out bytes.Buffer
	cmd := s.command("pg_ctl", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pg_ctl %v: %v\n%s\nserver log:\n%s", args, err, out.Bytes(), log)
	}
	return nil
}

// AdminURL is the URL of this server's maintenance database.
func (s *Server) AdminURL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
}

// NewDatabase creates an empty database on this server and returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, s.AdminURL())
}

// Start starts the server (again, on the same port) and waits until it
// takes connections.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.pgCtl("start"); err != nil {
		s.t.Fatal(err)
	}
	s.waitUp()
}

// Stop shuts the server down fast: every session is ended, as on an
// administrator's restart, and new connections are refused until Start.
func (s *Server) Stop() {
	s.t.Helper()
	if err := s.pgCtl("stop", "-m", "fast"); err != nil {
		s.t.Fatal(err)
	}
}

// Restart is Stop then Start on the same port (pg_ctl restart -m fast).
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.pgCtl("restart", "-m", "fast"); err != nil {
		s.t.Fatal(err)
	}
	s.waitUp()
}

// waitUp waits, at most 30 s, until a client connects over TCP.
func (s *Server) waitUp() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.AdminURL())
		if err == nil {
			_ = c.Close(ctx)
			cancel()
			return
		}
		cancel()
		if time.Now().After(deadline) {
			s.t.Fatalf("private PostgreSQL on port %d not taking connections after 30 s: %v", s.Port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chownPostgres gives dir to the postgres OS user.
func chownPostgres(dir string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return err
	}
	return os.Chown(dir, uid, gid)
}
