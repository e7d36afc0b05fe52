package authz

import (
	"errors"
	"strings"
	"testing"
)

func TestParseChannelAccepts(t *testing.T) {
	for _, tc := range []struct{ in, ns, name string }{
		{"room:lobby", "room", "lobby"},
		{"user:alice", "user", "alice"},
		{"a:b", "a", "b"},
		{"news_2-x:A.b=c@d-e_f", "news_2-x", "A.b=c@d-e_f"},
		{"room:.", "room", "."},
		{"room:a.b.c", "room", "a.b.c"},
		{strings.Repeat("n", 32) + ":" + strings.Repeat("x", 128), strings.Repeat("n", 32), strings.Repeat("x", 128)},
	} {
		ch, err := ParseChannel(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if ch.Namespace != tc.ns || ch.Name != tc.name || ch.String() != tc.in {
			t.Errorf("%q: got %+v", tc.in, ch)
		}
	}
}

// TestParseChannelRefuses is A4: every hostile or malformed name is a parse
// error (bad_request), never a channel.
func TestParseChannelRefuses(t *testing.T) {
	for _, tc := range []struct{ name, in, msg string }{
		{"traversal", "room:../x", `".."`},
		{"traversal with slash only", "room:./x", "outside"},
		{"double dot", "room:a..b", `".."`},
		{"dots only", "room:..", `".."`},
		{"wildcard", "room:*", "outside"},
		{"glob", "room:a*", "outside"},
		{"newline", "room:a\nb", "outside"},
		{"tab", "room:\tx", "outside"},
		{"DEL", "room:a\x7f", "outside"},
		{"NUL", "room:a\x00b", "outside"},
		{"NUL in namespace", "ro\x00om:a", "namespace"},
		{"unicode", "room:café", "outside"},
		{"space", "room:a b", "outside"},
		{"slash", "room:a/b", "outside"},
		{"10 KB", "room:" + strings.Repeat("a", 10<<10), "longer than"},
		{"129 name", "room:" + strings.Repeat("a", 129), "1 to 128"},
		{"33 namespace", strings.Repeat("n", 33) + ":a", "namespace"},
		{"missing colon", "roomlobby", "no ':'"},
		{"two colons", "room:a:b", "more than one"},
		{"uppercase namespace", "Room:a", "namespace"},
		{"namespace starts with digit", "1room:a", "namespace"},
		{"namespace starts with dash", "-room:a", "namespace"},
		{"empty namespace", ":a", "namespace"},
		{"empty name", "room:", "1 to 128"},
		{"empty", "", "no ':'"},
		{"colon only", ":", "namespace"},
	} {
		ch, err := ParseChannel(tc.in)
		if err == nil {
			t.Errorf("%s: accepted as %+v", tc.name, ch)
			continue
		}
		if !errors.Is(err, ErrBadChannel) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %q, want ErrBadChannel mentioning %q", tc.name, err, tc.msg)
		}
		if len(err.Error()) > 300 {
			t.Errorf("%s: error is %d bytes; hostile input must be truncated", tc.name, len(err.Error()))
		}
		if ch != (Channel{}) {
			t.Errorf("%s: non-zero channel %+v with an error", tc.name, ch)
		}
	}
}

func TestParseChannelNoAlloc(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseChannel("room:lobby-42"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per parse, want 0", allocs)
	}
}

func BenchmarkParseChannel(b *testing.B) {
	for b.Loop() {
		_, _ = ParseChannel("room:lobby-42.general")
	}
}

// FuzzParseChannel: nothing panics; anything accepted round-trips and
// satisfies the grammar, checked here independently of the parser.
func FuzzParseChannel(f *testing.F) {
	for _, s := range []string{
		"room:lobby", "user:alice", "room:../x", "room:a..b", "room:*", "a:b:c", "Room:x",
		"room:", ":x", "", "room:a\x00", strings.Repeat("z", 32) + ":" + strings.Repeat("A", 128), "room:é",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ch, err := ParseChannel(s)
		if err != nil {
			if !errors.Is(err, ErrBadChannel) {
				t.Fatalf("error %v does not wrap ErrBadChannel", err)
			}
			return
		}
		if ch.String() != s {
			t.Fatalf("%q round-trips as %q", s, ch.String())
		}
		ns, name := ch.Namespace, ch.Name
		if len(ns) < 1 || len(ns) > 32 || ns[0] < 'a' || ns[0] > 'z' {
			t.Fatalf("accepted namespace %q", ns)
		}
		if strings.Trim(ns, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
			t.Fatalf("accepted namespace %q", ns)
		}
		if len(name) < 1 || len(name) > 128 || strings.Contains(name, "..") ||
			strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@.=-") != "" {
			t.Fatalf("accepted name %q", name)
		}
		if again, err := ParseChannel(ch.String()); err != nil || again != ch {
			t.Fatalf("re-parse of %q: %+v %v", s, again, err)
		}
	})
}
