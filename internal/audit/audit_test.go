package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/clock"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// memHeads keeps heads in memory, standing in for the store.
type memHeads struct {
	mu   sync.Mutex
	m    map[string]Head
	fail error // when set, every call fails (the store is down)
}

func newHeads() *memHeads { return &memHeads{m: map[string]Head{}} }

func (h *memHeads) AuditHead(_ context.Context, chain string) (uint64, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail != nil {
		return 0, "", h.fail
	}
	return h.m[chain].Seq, h.m[chain].Sig, nil
}

func (h *memHeads) SetAuditHead(_ context.Context, chain string, seq uint64, sig string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail != nil {
		return h.fail
	}
	h.m[chain] = Head{seq, sig}
	return nil
}

// node is what a wsguard node keeps: a log file, its key file beside it,
// and a store holding the head.
type node struct {
	t     *testing.T
	path  string
	heads *memHeads
}

func newNode(t *testing.T) *node {
	return &node{t: t, path: filepath.Join(t.TempDir(), "sub", "audit.log"), heads: newHeads()}
}

func (n *node) open(opts Options) *Log {
	n.t.Helper()
	if opts.Clock == nil {
		opts.Clock = clock.NewFake(t0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	opts.Heads = n.heads
	l, err := Open(n.path, opts)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { l.Close() })
	return l
}

func (n *node) key() []byte {
	n.t.Helper()
	key, err := ReadKey(filepath.Join(filepath.Dir(n.path), "audit.key"))
	if err != nil {
		n.t.Fatal(err)
	}
	return key
}

func (n *node) head() *Head {
	h, err := LoadHead(context.Background(), n.heads, n.key())
	if err != nil {
		n.t.Fatal(err)
	}
	return &h
}

func (n *node) read() []byte {
	n.t.Helper()
	data, err := os.ReadFile(n.path)
	if err != nil {
		n.t.Fatal(err)
	}
	return data
}

// verify checks the bytes as the node's log, with its key and head.
func (n *node) verify(data []byte) (int, error) {
	return Verify(bytes.NewReader(data), n.key(), n.head())
}

// writeN records n login failures and returns the log's lines.
func (n *node) writeN(count int) [][]byte {
	n.t.Helper()
	l := n.open(Options{})
	for i := range count {
		l.Record(Event{Type: "login.failed", IP: "192.0.2.1", User: fmt.Sprintf("user%d", i), Fields: map[string]string{"path": "/login"}})
	}
	if err := l.Close(); err != nil {
		n.t.Fatal(err)
	}
	if l.Errors() != 0 {
		n.t.Fatalf("%d write errors", l.Errors())
	}
	return bytes.SplitAfter(n.read(), []byte("\n"))[:count]
}

func TestChainVerifies(t *testing.T) {
	n := newNode(t)
	lines := n.writeN(100)
	if len(lines) != 100 {
		t.Fatalf("%d lines", len(lines))
	}
	f, _ := os.Open(n.path)
	defer f.Close()
	got, err := Verify(f, n.key(), n.head())
	if err != nil || got != 100 {
		t.Fatalf("Verify = %d, %v", got, err)
	}
	if h := n.head(); h.Seq != 100 {
		t.Fatalf("head at seq %d, want 100", h.Seq)
	}
	var first record
	json.Unmarshal(lines[0], &first)
	if first.Seq != 1 || first.TS != "2026-11-22T10:00:00Z" || first.Type != "login.failed" || len(first.MAC) != 64 {
		t.Fatalf("first record %+v", first)
	}
	dir := filepath.Dir(n.path)
	for _, name := range []string{"audit.log", "audit.key", "audit.log.lock"} {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, want mode 0600", name, err)
		}
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v, want 0700", info.Mode().Perm())
	}
}

// reseal rewrites lines as an attacker without the key would have to: a
// chain that verifies under some other key.
func reseal(t *testing.T, lines [][]byte, key []byte) [][]byte {
	out := make([][]byte, len(lines))
	prev := chainStart
	for i, l := range lines {
		var rec record
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatal(err)
		}
		if i == len(lines)-1 {
			rec.User = "nobody" // the point of the rewrite
		}
		line, mac, err := seal(key, prev, rec)
		if err != nil {
			t.Fatal(err)
		}
		out[i], prev = append(line, '\n'), mac
	}
	return out
}

// TestVerifyDetectsTampering: an attacker who can write the log file but
// not read the key edits it; audit verify names the first bad line.
func TestVerifyDetectsTampering(t *testing.T) {
	n := newNode(t)
	lines := n.writeN(10)
	join := func(ls [][]byte) []byte { return bytes.Join(ls, nil) }
	clone := func() [][]byte {
		out := make([][]byte, len(lines))
		for i, l := range lines {
			out[i] = bytes.Clone(l)
		}
		return out
	}
	tests := []struct {
		name     string
		mutate   func() []byte
		wantLine int
		wantIn   string
	}{
		{"edit one byte of line 5, still parses", func() []byte {
			ls := clone()
			ls[4] = bytes.Replace(ls[4], []byte("user4"), []byte("userX"), 1)
			return join(ls)
		}, 5, "MAC does not verify"},
		{"edit one byte of line 5, no longer parses", func() []byte {
			ls := clone()
			ls[4][0] = '['
			return join(ls)
		}, 5, "not a valid audit record"},
		{"whitespace added to line 5", func() []byte {
			ls := clone()
			ls[4] = append(bytes.TrimSuffix(ls[4], []byte("\n")), []byte(" \n")...)
			return join(ls)
		}, 5, "canonical"},
		{"delete line 5", func() []byte {
			ls := clone()
			return join(append(ls[:4], ls[5:]...))
		}, 5, "seq 6, want 5"},
		{"delete line 5 and renumber the rest", func() []byte {
			ls := clone()
			ls = append(ls[:4], ls[5:]...)
			for i := 4; i < len(ls); i++ {
				ls[i] = bytes.Replace(ls[i], []byte(fmt.Sprintf(`{"seq":%d,`, i+2)), []byte(fmt.Sprintf(`{"seq":%d,`, i+1)), 1)
			}
			return join(ls)
		}, 5, "MAC does not verify"},
		{"swap lines 5 and 6", func() []byte {
			ls := clone()
			ls[4], ls[5] = ls[5], ls[4]
			return join(ls)
		}, 5, "seq 6, want 5"},
		{"delete the first line", func() []byte {
			return join(clone()[1:])
		}, 1, "seq 2, want 1"},
		{"duplicate line 3", func() []byte {
			ls := clone()
			return join(append(ls[:3], ls[2:]...))
		}, 4, "seq 3, want 4"},
		{"truncate the tail: the last 3 lines cut off", func() []byte {
			return join(clone()[:7])
		}, 8, "tail was cut off"},
		{"truncate everything", func() []byte {
			return nil
		}, 1, "tail was cut off"},
		{"edit the last line", func() []byte {
			ls := clone()
			ls[9] = bytes.Replace(ls[9], []byte("user9"), []byte("userX"), 1)
			return join(ls)
		}, 10, "MAC does not verify"},
		{"rewrite the whole chain with another key", func() []byte {
			return join(reseal(t, clone(), []byte("attacker's guess")))
		}, 1, "MAC does not verify"},
		{"rewrite the whole chain with an empty key", func() []byte {
			return join(reseal(t, clone(), nil))
		}, 1, "MAC does not verify"},
		{"torn final write", func() []byte {
			b := join(clone())
			return b[:len(b)-20]
		}, 10, "torn write"},
		{"final newline lost", func() []byte {
			b := join(clone())
			return b[:len(b)-1]
		}, 10, "torn write"},
		{"blank line inserted", func() []byte {
			ls := clone()
			return join(append(ls[:3], append([][]byte{[]byte("\n")}, ls[3:]...)...))
		}, 4, "not a valid audit record"},
		{"unknown key added", func() []byte {
			ls := clone()
			ls[2] = bytes.Replace(ls[2], []byte(`{"seq"`), []byte(`{"admin":true,"seq"`), 1)
			return join(ls)
		}, 3, "not a valid audit record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := n.verify(tt.mutate())
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *VerifyError", err)
			}
			if ve.Line != tt.wantLine || !strings.Contains(ve.Reason, tt.wantIn) {
				t.Fatalf("got %q, want line %d containing %q", err, tt.wantLine, tt.wantIn)
			}
			if got != tt.wantLine-1 {
				t.Fatalf("lines = %d, want %d", got, tt.wantLine-1)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("line %d: ", tt.wantLine)) {
				t.Fatalf("message %q does not name the line", err)
			}
		})
	}
	// The untouched log still verifies, with and without its head.
	if got, err := n.verify(join(lines)); err != nil || got != 10 {
		t.Fatalf("Verify = %d, %v", got, err)
	}
	if got, err := Verify(bytes.NewReader(join(lines)), n.key(), nil); err != nil || got != 10 {
		t.Fatalf("Verify without head = %d, %v", got, err)
	}
	// What the head is for: without it, a cut tail cannot be told apart
	// from a shorter log.
	if got, err := Verify(bytes.NewReader(join(lines[:7])), n.key(), nil); err != nil || got != 7 {
		t.Fatalf("Verify of a cut log without head = %d, %v (documented as undetectable)", got, err)
	}
}

// TestVerifyDetectsOtherChain: the log replaced by another one written
// with the same key and as long (an older segment, a copy from before) is
// caught by the head.
func TestVerifyDetectsOtherChain(t *testing.T) {
	n := newNode(t)
	n.writeN(5)
	older := n.read()
	if err := os.Remove(n.path); err != nil {
		t.Fatal(err)
	}
	n.heads.m = map[string]Head{} // as if started over, then 5 more events
	l := n.open(Options{Clock: clock.NewFake(t0.Add(time.Hour))})
	for i := range 5 {
		l.Record(Event{Type: "login.failed", User: fmt.Sprintf("user%d", i)})
	}
	l.Close()
	if got, err := n.verify(n.read()); err != nil || got != 5 {
		t.Fatalf("current log: %d, %v", got, err)
	}
	got, err := n.verify(older)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Line != 5 || !strings.Contains(ve.Reason, "signed head") || got != 4 {
		t.Fatalf("older log in its place: %d, %v; want line 5 not named by the head", got, err)
	}
}

func TestLogInjection(t *testing.T) {
	n := newNode(t)
	l := n.open(Options{})
	evil := "mallory\n{\"seq\":2,\"ts\":\"2026-11-22T10:00:00Z\",\"type\":\"login.ok\",\"user\":\"admin\",\"prev\":\"" + chainStart + "\"}\n"
	l.Record(Event{Type: "login.failed", User: evil, IP: "192.0.2.1\r\nX: y",
		Fields: map[string]string{"origin": "https://evil.example\n\"}", "channel": "room:\u2028x\x00"}})
	l.Record(Event{Type: "login.failed", User: "alice"})
	l.Close()
	data := n.read()
	if got := bytes.Count(data, []byte("\n")); got != 2 {
		t.Fatalf("%d lines, want 2:\n%s", got, data)
	}
	if got, err := n.verify(data); err != nil || got != 2 {
		t.Fatalf("Verify = %d, %v", got, err)
	}
	var rec record
	if err := json.Unmarshal(bytes.SplitN(data, []byte("\n"), 2)[0], &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Type != "login.failed" || rec.User != evil {
		t.Fatalf("record altered: %+v", rec)
	}
	if bytes.Contains(data, []byte(`"type":"login.ok"`)) {
		t.Fatal("forged record appears verbatim")
	}
}

func TestRedaction(t *testing.T) {
	n := newNode(t)
	l := n.open(Options{})
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
	long := strings.Repeat("é", 300) // 600 bytes
	fields := map[string]string{
		"password": "hunter2hunter2", "csrf_token": "tok", "Cookie": "__Host-wsguard=abc",
		"ticket": "t", "secret": "s", "Authorization": "Bearer xyz", "code": "123456",
		"totpCode": "654321", "api_key": "k", "key": "k", "data": `{"text":"hi"}`, "body": "b",
		"header": "Bearer abc.def", "subprotocol": jwt,
		"origin": "https://example.com", "keyboard": "qwerty", "channel": "room:lobby", "long": long,
	}
	l.Record(Event{Type: "test", User: long, Fields: fields})
	l.Close()
	data := n.read()
	if _, err := n.verify(data); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "__Host-wsguard", "xyz", "123456", "654321", "hi", "abc.def", jwt} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("secret %q logged", secret)
		}
	}
	var rec record
	json.Unmarshal(data, &rec)
	for _, k := range []string{"password", "csrf_token", "Cookie", "ticket", "secret", "Authorization", "code", "totpCode", "api_key", "key", "data", "body", "header", "subprotocol"} {
		if rec.Fields[k] != Redacted {
			t.Errorf("field %q = %q, want redacted", k, rec.Fields[k])
		}
	}
	for _, k := range []string{"origin", "keyboard", "channel"} {
		if rec.Fields[k] != fields[k] {
			t.Errorf("field %q = %q, want kept", k, rec.Fields[k])
		}
	}
	for _, v := range []string{rec.Fields["long"], rec.User} {
		if len(v) > MaxValueBytes+40 || !strings.Contains(v, "[truncated 344 bytes]") || !strings.HasPrefix(v, "éé") {
			t.Errorf("long value not truncated: %d bytes %q", len(v), v[len(v)-30:])
		}
	}
}

func TestManyFieldsCapped(t *testing.T) {
	n := newNode(t)
	l := n.open(Options{})
	f := map[string]string{}
	for i := range 1000 {
		f[fmt.Sprintf("f%04d", i)] = "v"
	}
	l.Record(Event{Type: "test", Fields: f})
	l.Close()
	data := n.read()
	var rec record
	json.Unmarshal(data, &rec)
	if len(rec.Fields) != MaxFields+1 || rec.Fields["_dropped_fields"] != "968" {
		t.Fatalf("%d fields, dropped %q", len(rec.Fields), rec.Fields["_dropped_fields"])
	}
}

func TestReopenContinuesChain(t *testing.T) {
	n := newNode(t)
	for round := range 3 {
		l := n.open(Options{})
		for i := range 5 {
			l.Record(Event{Type: "round", Fields: map[string]string{"n": fmt.Sprint(round, i)}})
		}
		l.Close()
	}
	if got, err := n.verify(n.read()); err != nil || got != 15 {
		t.Fatalf("Verify = %d, %v", got, err)
	}
}

func TestReopenRepairsTornTail(t *testing.T) {
	for _, cut := range []int{1, 20} {
		t.Run(fmt.Sprint("cut ", cut), func(t *testing.T) {
			n := newNode(t)
			lines := n.writeN(5)
			data := n.read()
			// The crash came before the last line's head was saved.
			n.heads.m[chainID(n.key())] = signHead(n.key(), 4, macOf(t, lines[3]))
			os.WriteFile(n.path, data[:len(data)-cut], 0o600)
			if _, err := n.verify(data[:len(data)-cut]); err == nil || !strings.Contains(err.Error(), "torn") {
				t.Fatalf("torn tail not reported: %v", err)
			}
			var broke int
			l := n.open(Options{OnBreak: func() { broke++ }})
			l.Record(Event{Type: "after"})
			l.Close()
			data = n.read()
			got, err := n.verify(data)
			if err != nil || broke != 0 {
				t.Fatalf("after repair: %v, %d breaks\n%s", err, broke, data)
			}
			if cut == 1 { // only the newline was lost: the record is kept
				if got != 6 || !bytes.HasPrefix(data, bytes.Join(lines, nil)) {
					t.Fatalf("lines %d, want 6 with the originals kept", got)
				}
			} else { // fragment dropped, and the drop is itself recorded
				if got != 6 || !bytes.Contains(data, []byte("audit.torn_tail")) {
					t.Fatalf("lines %d, want 4 + torn_tail + after:\n%s", got, data)
				}
			}
		})
	}
}

func macOf(t *testing.T, line []byte) string {
	var rec record
	if err := json.Unmarshal(line, &rec); err != nil {
		t.Fatal(err)
	}
	return rec.MAC
}

func TestOpenLongLines(t *testing.T) {
	// Lines longer than the first read of the tail.
	n := newNode(t)
	l := n.open(Options{})
	big := map[string]string{}
	for i := range MaxFields {
		big[fmt.Sprint("f", i)] = strings.Repeat("\x01", MaxValueBytes) // escapes to 6 bytes each
	}
	for range 3 {
		l.Record(Event{Type: "big", Fields: big})
	}
	l.Close()
	var broke int
	l = n.open(Options{OnBreak: func() { broke++ }})
	l.Record(Event{Type: "after"})
	l.Close()
	data := n.read()
	if got, err := n.verify(data); err != nil || got != 4 || broke != 0 {
		t.Fatalf("Verify = %d, %v, %d breaks (line length %d)", got, err, broke, bytes.IndexByte(data, '\n'))
	}
}

func TestConcurrentRecord(t *testing.T) {
	n := newNode(t)
	l := n.open(Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				l.Record(Event{Type: "concurrent", User: fmt.Sprint(g), Fields: map[string]string{"i": fmt.Sprint(i)}})
			}
		}()
	}
	wg.Wait()
	l.Close()
	if got, err := n.verify(n.read()); err != nil || got != 200 {
		t.Fatalf("Verify = %d, %v", got, err)
	}
}

func TestWriteErrorsCounted(t *testing.T) {
	var hooked int
	n := newNode(t)
	l := n.open(Options{OnError: func() { hooked++ }})
	l.Record(Event{Type: "ok"})
	l.Close()
	l.Record(Event{Type: "after close"}) // must not panic
	if l.Errors() != 1 || hooked != 1 {
		t.Fatalf("Errors = %d, hook %d, want 1", l.Errors(), hooked)
	}
}

// TestStoreDownHeadLags: while the store cannot save the head, events are
// still written (and the failed saves counted); the log runs ahead of its
// head, which is not a break, and the head catches up afterwards.
func TestStoreDownHeadLags(t *testing.T) {
	n := newNode(t)
	var hooked, broke int
	l := n.open(Options{OnError: func() { hooked++ }, OnBreak: func() { broke++ }})
	l.Record(Event{Type: "before"})
	n.heads.mu.Lock()
	n.heads.fail = errors.New("database is locked")
	n.heads.mu.Unlock()
	for range 3 {
		l.Record(Event{Type: "during"})
	}
	l.Close()
	if hooked != 3 {
		t.Fatalf("%d failed head saves reported, want 3", hooked)
	}
	n.heads.fail = nil
	if h := n.head(); h.Seq != 1 {
		t.Fatalf("head at %d, want 1 (saves failed)", h.Seq)
	}
	l = n.open(Options{OnBreak: func() { broke++ }})
	l.Record(Event{Type: "after"})
	l.Close()
	if got, err := n.verify(n.read()); err != nil || got != 5 || broke != 0 || n.head().Seq != 5 {
		t.Fatalf("Verify = %d, %v; %d breaks; head %d", got, err, broke, n.head().Seq)
	}
}

func TestNop(t *testing.T) {
	for _, l := range []*Log{Nop(), nil} {
		l.Record(Event{Type: "x"})
		if l.Errors() != 0 || l.Close() != nil {
			t.Fatal("nop log misbehaved")
		}
	}
}

func TestVerifyRefusesHugeLine(t *testing.T) {
	in := bytes.Repeat([]byte("a"), maxLine+10)
	_, err := Verify(bytes.NewReader(in), nil, nil)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Line != 1 {
		t.Fatalf("err = %v", err)
	}
	if got, err := Verify(bytes.NewReader(nil), nil, nil); got != 0 || err != nil {
		t.Fatalf("empty log: %d, %v", got, err)
	}
}

func FuzzVerify(f *testing.F) {
	n := &node{path: filepath.Join(f.TempDir(), "a.log"), heads: newHeads()}
	l, _ := Open(n.path, Options{Clock: clock.NewFake(t0), Heads: n.heads})
	l.Record(Event{Type: "login.failed", User: "a\nb", Fields: map[string]string{"origin": "x"}})
	l.Record(Event{Type: "login.ok", User: "bob"})
	l.Close()
	key, _ := ReadKey(filepath.Join(filepath.Dir(n.path), "audit.key"))
	good, _ := os.ReadFile(n.path)
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte("\n"))
	f.Add([]byte(`{"seq":1,"ts":"x","type":"t","mac":"` + chainStart + `"}` + "\n"))
	f.Add([]byte(`{"seq":1}{"seq":2}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Verify(bytes.NewReader(data), key, nil)
		if err == nil {
			if want := bytes.Count(data, []byte("\n")); got != want {
				t.Fatalf("verified %d lines of %d", got, want)
			}
			if !bytes.HasPrefix(good, data) {
				t.Fatalf("a log not written with the key verified:\n%q", data)
			}
			return
		}
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Line != got+1 {
			t.Fatalf("err %v after %d lines", err, got)
		}
	})
}

// TestTwoWritersOneChain: a running server and a CLI command append to the
// same file through separate Logs; the chain stays whole and both move the
// head.
func TestTwoWritersOneChain(t *testing.T) {
	n := newNode(t)
	var broke int
	server := n.open(Options{OnBreak: func() { broke++ }})
	server.Record(Event{Type: "server.start"})
	cli := n.open(Options{OnBreak: func() { broke++ }})
	for i := range 20 {
		if i%3 == 0 {
			cli.Record(Event{Type: "cli.disable", User: fmt.Sprint("u", i)})
		} else {
			server.Record(Event{Type: "handshake.refused", Reason: fmt.Sprint(i)})
		}
	}
	cli.Record(Event{Type: "cli.last"})
	if h := n.head(); h.Seq != 22 {
		t.Fatalf("head at %d after the CLI's last write, want 22", h.Seq)
	}
	cli.Close()
	server.Record(Event{Type: "server.after"})
	data := n.read()
	if got, err := n.verify(data); err != nil || got != 23 || broke != 0 {
		t.Fatalf("Verify = %d, %v, %d breaks\n%s", got, err, broke, data)
	}
}

// breakLog captures what a Log reports at error level.
type breakLog struct {
	buf   bytes.Buffer
	mu    sync.Mutex
	count int
}

func (b *breakLog) opts() Options {
	return Options{
		Logger:  slog.New(slog.NewTextHandler(&lockedWriter{b}, &slog.HandlerOptions{Level: slog.LevelError})),
		OnBreak: func() { b.mu.Lock(); b.count++; b.mu.Unlock() },
	}
}

type lockedWriter struct{ b *breakLog }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	return w.b.buf.Write(p)
}

// checkNewSegment asserts that the log at n.path is a new chain whose
// first line records a break for reason, followed by want events, and
// that the lines found were set aside unchanged.
func checkNewSegment(t *testing.T, n *node, reason string, found []byte, want ...string) {
	t.Helper()
	data := n.read()
	if got, err := n.verify(data); err != nil || got != 1+len(want) {
		t.Fatalf("new segment: Verify = %d, %v\n%s", got, err, data)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	var first record
	json.Unmarshal(lines[0], &first)
	if first.Seq != 1 || first.Type != "audit.chain_broken" || first.Reason != reason || first.Fields["detail"] == "" {
		t.Fatalf("first line %s, want audit.chain_broken with reason %q", lines[0], reason)
	}
	for i, typ := range want {
		var rec record
		json.Unmarshal(lines[i+1], &rec)
		if rec.Type != typ {
			t.Fatalf("line %d is %q, want %q", i+2, rec.Type, typ)
		}
	}
	aside, _ := filepath.Glob(n.path + ".broken-*")
	if len(found) == 0 {
		if len(aside) != 0 || first.Fields["moved_to"] != "" {
			t.Fatalf("an empty log was set aside: %v %q", aside, first.Fields["moved_to"])
		}
		return
	}
	if len(aside) != 1 || first.Fields["moved_to"] != filepath.Base(aside[0]) {
		t.Fatalf("set aside %v, event names %q", aside, first.Fields["moved_to"])
	}
	if kept, _ := os.ReadFile(aside[0]); !bytes.Equal(kept, found) {
		t.Fatalf("the lines found were not kept as found:\n%s\nwant\n%s", kept, found)
	}
}

// TestWriterRefusesTamperedTail: between two runs an attacker who can
// write the log (and, in one row, the database) but not read the key
// tampers with it. The next writer does not continue the chain: it sets
// the log aside, starts a new chain whose first line records the break,
// logs at error level and reports it.
func TestWriterRefusesTamperedTail(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, n *node, lines [][]byte)
		reason string
	}{
		{"truncated tail", func(t *testing.T, n *node, lines [][]byte) {
			os.WriteFile(n.path, bytes.Join(lines[:3], nil), 0o600)
		}, "truncated"},
		{"emptied", func(t *testing.T, n *node, lines [][]byte) {
			os.WriteFile(n.path, nil, 0o600)
		}, "truncated"},
		{"deleted", func(t *testing.T, n *node, lines [][]byte) {
			os.Remove(n.path)
		}, "truncated"},
		{"last line edited", func(t *testing.T, n *node, lines [][]byte) {
			lines[4] = bytes.Replace(lines[4], []byte("user4"), []byte("userX"), 1)
			os.WriteFile(n.path, bytes.Join(lines, nil), 0o600)
		}, "edited"},
		{"last two lines swapped", func(t *testing.T, n *node, lines [][]byte) {
			lines[3], lines[4] = lines[4], lines[3]
			os.WriteFile(n.path, bytes.Join(lines, nil), 0o600)
		}, "truncated"},
		{"chain rewritten without the key", func(t *testing.T, n *node, lines [][]byte) {
			os.WriteFile(n.path, bytes.Join(reseal(t, lines, []byte("guess")), nil), 0o600)
		}, "edited"},
		{"last line not a record", func(t *testing.T, n *node, lines [][]byte) {
			os.WriteFile(n.path, append(bytes.Join(lines, nil), "not json\n"...), 0o600)
		}, "unreadable"},
		{"head deleted from the database", func(t *testing.T, n *node, lines [][]byte) {
			n.heads.m = map[string]Head{}
		}, "no_head"},
		{"key file replaced", func(t *testing.T, n *node, lines [][]byte) {
			os.WriteFile(filepath.Join(filepath.Dir(n.path), "audit.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
		}, "no_head"}, // the head is kept per key
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNode(t)
			tt.tamper(t, n, n.writeN(5))
			found, _ := os.ReadFile(n.path)
			var bl breakLog
			l := n.open(bl.opts())
			l.Record(Event{Type: "after"})
			l.Close()
			if bl.count != 1 || !strings.Contains(bl.buf.String(), "does not match its key or signed head") ||
				!strings.Contains(bl.buf.String(), "reason="+tt.reason) {
				t.Fatalf("%d breaks reported; error log:\n%s", bl.count, bl.buf.String())
			}
			checkNewSegment(t, n, tt.reason, found, "after")
		})
	}
	t.Run("untouched", func(t *testing.T) {
		n := newNode(t)
		n.writeN(5)
		var bl breakLog
		l := n.open(bl.opts())
		l.Record(Event{Type: "after"})
		l.Close()
		if got, err := n.verify(n.read()); err != nil || got != 6 || bl.count != 0 || bl.buf.Len() != 0 {
			t.Fatalf("Verify = %d, %v; %d breaks\n%s", got, err, bl.count, bl.buf.String())
		}
	})
}

// TestRunningWriterRefusesTruncatedLog: while a server runs, its log is cut
// short under it. Its next event does not continue the chain over the cut:
// it starts a new segment recording the break. The CLI, another process
// writing the same log, then follows the new segment without a second
// break.
func TestRunningWriterRefusesTruncatedLog(t *testing.T) {
	n := newNode(t)
	var bl breakLog
	server := n.open(bl.opts())
	for i := range 5 {
		server.Record(Event{Type: "login.failed", User: fmt.Sprint("user", i)})
	}
	lines := bytes.SplitAfter(n.read(), []byte("\n"))
	found := bytes.Join(lines[:3], nil)
	if err := os.WriteFile(n.path, found, 0o600); err != nil { // truncate in place
		t.Fatal(err)
	}
	server.Record(Event{Type: "login.failed", User: "next"})
	if bl.count != 1 {
		t.Fatalf("%d breaks reported, want 1:\n%s", bl.count, bl.buf.String())
	}
	cli := n.open(bl.opts())
	cli.Record(Event{Type: "user.disabled"})
	cli.Close()
	server.Record(Event{Type: "login.ok"})
	server.Close()
	if bl.count != 1 {
		t.Fatalf("%d breaks reported, want 1:\n%s", bl.count, bl.buf.String())
	}
	checkNewSegment(t, n, "truncated", found, "login.failed", "user.disabled", "login.ok")
}

// TestRotate: the operator rotates the log while a server writes it. The
// new log starts with an audit.rotated event linking the old one, both
// verify, the server follows to the new file, and no break is reported.
func TestRotate(t *testing.T) {
	n := newNode(t)
	var bl breakLog
	server := n.open(bl.opts())
	for range 3 {
		server.Record(Event{Type: "login.failed"})
	}
	old := n.read()
	oldHead := *n.head()
	cli := n.open(bl.opts())
	aside, err := cli.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()
	server.Record(Event{Type: "login.ok"})
	server.Close()
	if bl.count != 0 {
		t.Fatalf("rotation reported as a break:\n%s", bl.buf.String())
	}
	if kept, _ := os.ReadFile(aside); !bytes.Equal(kept, old) {
		t.Fatalf("old log not kept as it was")
	}
	if got, err := Verify(bytes.NewReader(old), n.key(), &oldHead); err != nil || got != 3 {
		t.Fatalf("old log: %d, %v", got, err)
	}
	data := n.read()
	if got, err := n.verify(data); err != nil || got != 2 {
		t.Fatalf("new log: %d, %v\n%s", got, err, data)
	}
	var first record
	json.Unmarshal(data[:bytes.IndexByte(data, '\n')], &first)
	if first.Type != "audit.rotated" || first.Fields["moved_to"] != filepath.Base(aside) ||
		first.Fields["prev_seq"] != "3" || first.Fields["prev_mac"] != macOf(t, bytes.SplitAfter(old, []byte("\n"))[2]) {
		t.Fatalf("first line %+v", first)
	}
}

// TestRunningWriterRefusesEditedLastLine: the last line is edited in
// place under a running writer, keeping the file's size. The next event
// does not continue over it.
func TestRunningWriterRefusesEditedLastLine(t *testing.T) {
	n := newNode(t)
	var bl breakLog
	l := n.open(bl.opts())
	for i := range 3 {
		l.Record(Event{Type: "login.failed", User: fmt.Sprint("user", i)})
	}
	found := bytes.Replace(n.read(), []byte("user2"), []byte("userX"), 1)
	if err := os.WriteFile(n.path, found, 0o600); err != nil {
		t.Fatal(err)
	}
	l.Record(Event{Type: "login.ok"})
	l.Close()
	if bl.count != 1 {
		t.Fatalf("%d breaks reported, want 1", bl.count)
	}
	checkNewSegment(t, n, "edited", found, "login.ok")
}
