package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/clock"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func openTemp(t *testing.T) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "audit.log")
	l, err := Open(path, Options{Clock: clock.NewFake(t0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

func writeN(t *testing.T, n int) (string, [][]byte) {
	t.Helper()
	l, path := openTemp(t)
	for i := range n {
		l.Record(Event{Type: "login.failed", IP: "192.0.2.1", User: fmt.Sprintf("user%d", i), Fields: map[string]string{"path": "/login"}})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Errors() != 0 {
		t.Fatalf("%d write errors", l.Errors())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, bytes.SplitAfter(data, []byte("\n"))[:n]
}

func verifyBytes(b []byte) (int, error) { return Verify(bytes.NewReader(b)) }

func TestChainVerifies(t *testing.T) {
	path, lines := writeN(t, 100)
	if len(lines) != 100 {
		t.Fatalf("%d lines", len(lines))
	}
	f, _ := os.Open(path)
	defer f.Close()
	n, err := Verify(f)
	if err != nil || n != 100 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	var first, second record
	json.Unmarshal(lines[0], &first)
	json.Unmarshal(lines[1], &second)
	if first.Seq != 1 || first.Prev != chainStart || first.TS != "2026-11-22T10:00:00Z" || first.Type != "login.failed" {
		t.Fatalf("first record %+v", first)
	}
	if second.Prev != hashLine(bytes.TrimSuffix(lines[0], []byte("\n"))) {
		t.Fatal("second prev is not the hash of the first line")
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", info.Mode().Perm())
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	_, lines := writeN(t, 10)
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
		}, 6, "prev hash does not match line 5"},
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
		}, 5, "prev hash does not match line 4"},
		{"swap lines 5 and 6", func() []byte {
			ls := clone()
			ls[4], ls[5] = ls[5], ls[4]
			return join(ls)
		}, 5, "edited, removed or reordered"},
		{"delete the first line", func() []byte {
			return join(clone()[1:])
		}, 1, "chain start"},
		{"duplicate line 3", func() []byte {
			ls := clone()
			return join(append(ls[:3], ls[2:]...))
		}, 4, "prev hash"},
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
			n, err := verifyBytes(tt.mutate())
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *VerifyError", err)
			}
			if ve.Line != tt.wantLine || !strings.Contains(ve.Reason, tt.wantIn) {
				t.Fatalf("got %q, want line %d containing %q", err, tt.wantLine, tt.wantIn)
			}
			if n != tt.wantLine-1 {
				t.Fatalf("lines = %d, want %d", n, tt.wantLine-1)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("line %d: ", tt.wantLine)) {
				t.Fatalf("message %q does not name the line", err)
			}
		})
	}
	// The untouched log still verifies.
	if n, err := verifyBytes(join(lines)); err != nil || n != 10 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestLogInjection(t *testing.T) {
	l, path := openTemp(t)
	evil := "mallory\n{\"seq\":2,\"ts\":\"2026-11-22T10:00:00Z\",\"type\":\"login.ok\",\"user\":\"admin\",\"prev\":\"" + chainStart + "\"}\n"
	l.Record(Event{Type: "login.failed", User: evil, IP: "192.0.2.1\r\nX: y",
		Fields: map[string]string{"origin": "https://evil.example\n\"}", "channel": "room:\u2028x\x00"}})
	l.Record(Event{Type: "login.failed", User: "alice"})
	l.Close()
	data, _ := os.ReadFile(path)
	if got := bytes.Count(data, []byte("\n")); got != 2 {
		t.Fatalf("%d lines, want 2:\n%s", got, data)
	}
	if n, err := verifyBytes(data); err != nil || n != 2 {
		t.Fatalf("Verify = %d, %v", n, err)
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
	l, path := openTemp(t)
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
	data, _ := os.ReadFile(path)
	if _, err := verifyBytes(data); err != nil {
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
	l, path := openTemp(t)
	f := map[string]string{}
	for i := range 1000 {
		f[fmt.Sprintf("f%04d", i)] = "v"
	}
	l.Record(Event{Type: "test", Fields: f})
	l.Close()
	data, _ := os.ReadFile(path)
	var rec record
	json.Unmarshal(data, &rec)
	if len(rec.Fields) != MaxFields+1 || rec.Fields["_dropped_fields"] != "968" {
		t.Fatalf("%d fields, dropped %q", len(rec.Fields), rec.Fields["_dropped_fields"])
	}
}

func TestReopenContinuesChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for round := range 3 {
		l, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			l.Record(Event{Type: "round", Fields: map[string]string{"n": fmt.Sprint(round, i)}})
		}
		l.Close()
	}
	data, _ := os.ReadFile(path)
	if n, err := verifyBytes(data); err != nil || n != 15 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestReopenRepairsTornTail(t *testing.T) {
	for _, cut := range []int{1, 20} {
		t.Run(fmt.Sprint("cut ", cut), func(t *testing.T) {
			path, lines := writeN(t, 5)
			data, _ := os.ReadFile(path)
			os.WriteFile(path, data[:len(data)-cut], 0o600)
			if _, err := verifyBytes(data[:len(data)-cut]); err == nil || !strings.Contains(err.Error(), "torn") {
				t.Fatalf("torn tail not reported: %v", err)
			}
			l, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			l.Record(Event{Type: "after"})
			l.Close()
			data, _ = os.ReadFile(path)
			n, err := verifyBytes(data)
			if err != nil {
				t.Fatalf("after repair: %v\n%s", err, data)
			}
			if cut == 1 { // only the newline was lost: the record is kept
				if n != 6 || !bytes.HasPrefix(data, bytes.Join(lines, nil)) {
					t.Fatalf("lines %d, want 6 with the originals kept", n)
				}
			} else { // fragment dropped, and the drop is itself recorded
				if n != 6 || !bytes.Contains(data, []byte("audit.torn_tail")) {
					t.Fatalf("lines %d, want 4 + torn_tail + after:\n%s", n, data)
				}
			}
		})
	}
}

func TestOpenRefusesCorruptTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(path, []byte("not json\n"), 0o600)
	if _, err := Open(path, Options{}); err == nil {
		t.Fatal("opened a log whose last line is not a record")
	}
}

func TestOpenLongLines(t *testing.T) {
	// Lines longer than the tail chunk read on Open.
	path := filepath.Join(t.TempDir(), "audit.log")
	l, _ := Open(path, Options{})
	big := map[string]string{}
	for i := range MaxFields {
		big[fmt.Sprint("f", i)] = strings.Repeat("\x01", MaxValueBytes) // escapes to 6 bytes each
	}
	for range 3 {
		l.Record(Event{Type: "big", Fields: big})
	}
	l.Close()
	if l, err := Open(path, Options{}); err != nil {
		t.Fatal(err)
	} else {
		l.Record(Event{Type: "after"})
		l.Close()
	}
	data, _ := os.ReadFile(path)
	if n, err := verifyBytes(data); err != nil || n != 4 {
		t.Fatalf("Verify = %d, %v (line length %d)", n, err, bytes.IndexByte(data, '\n'))
	}
}

func TestConcurrentRecord(t *testing.T) {
	l, path := openTemp(t)
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
	data, _ := os.ReadFile(path)
	if n, err := verifyBytes(data); err != nil || n != 200 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestWriteErrorsCounted(t *testing.T) {
	var hooked int
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{OnError: func() { hooked++ }})
	if err != nil {
		t.Fatal(err)
	}
	l.Record(Event{Type: "ok"})
	l.Close()
	l.Record(Event{Type: "after close"}) // must not panic
	if l.Errors() != 1 || hooked != 1 {
		t.Fatalf("Errors = %d, hook %d, want 1", l.Errors(), hooked)
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
	_, err := verifyBytes(in)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Line != 1 {
		t.Fatalf("err = %v", err)
	}
	if n, err := verifyBytes(nil); n != 0 || err != nil {
		t.Fatalf("empty log: %d, %v", n, err)
	}
}

func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	l, _ := Open(filepath.Join(dir, "a.log"), Options{Clock: clock.NewFake(t0)})
	l.Record(Event{Type: "login.failed", User: "a\nb", Fields: map[string]string{"origin": "x"}})
	l.Record(Event{Type: "login.ok", User: "bob"})
	l.Close()
	good, _ := os.ReadFile(filepath.Join(dir, "a.log"))
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte("\n"))
	f.Add([]byte(`{"seq":1,"ts":"x","type":"t","prev":"` + chainStart + `"}` + "\n"))
	f.Add([]byte(`{"seq":1}{"seq":2}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Verify(bytes.NewReader(data))
		if err == nil {
			if want := bytes.Count(data, []byte("\n")); n != want {
				t.Fatalf("verified %d lines of %d", n, want)
			}
			return
		}
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Line != n+1 {
			t.Fatalf("err %v after %d lines", err, n)
		}
	})
}

// TestTwoWritersOneChain: a running server and a CLI command append to the
// same file through separate Logs; the chain must stay whole.
func TestTwoWritersOneChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	server, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	server.Record(Event{Type: "server.start"})
	cli, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if i%3 == 0 {
			cli.Record(Event{Type: "cli.disable", User: fmt.Sprint("u", i)})
		} else {
			server.Record(Event{Type: "handshake.refused", Reason: fmt.Sprint(i)})
		}
	}
	cli.Close()
	server.Record(Event{Type: "server.after"})
	data, _ := os.ReadFile(path)
	if n, err := verifyBytes(data); err != nil || n != 22 {
		t.Fatalf("Verify = %d, %v\n%s", n, err, data)
	}
}
