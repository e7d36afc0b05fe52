package conn

import (
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	good := []string{
		`{"id":1,"op":"ping"}`,
		`{"id":2,"op":"publish","channel":"room:a","cid":"c-1","data":{"text":"hi\nthere"}}`,
		`{"id":3,"op":"subscribe","channel":"room:a","since":0}`,
		` {"id":4,"op":"history","channel":"room:a","limit":5,"before":9} `,
	}
	for _, g := range good {
		if _, err := ParseRequest([]byte(g)); err != nil {
			t.Errorf("%s refused: %v", g, err)
		}
	}
	bad := []string{
		``,
		`null`,
		`[]`,
		`{"id":1}`,
		`{"op":"ping"}`,
		`{"id":0,"op":"ping"}`,
		`{"id":1.5,"op":"ping"}`,
		`{"id":1e400,"op":"ping"}`,
		`{"id":1,"op":"ping","x":1}`,
		`{"id":1,"op":"ping"}{"id":2,"op":"ping"}`,
		`{"id":1,"op":"ping"} x`,
		`{"id":1,"op":"PING"}`,
		`{"id":1,"op":"publish","cid":"has space","data":1}`,
		`{"id":1,"op":"publish","cid":"` + strings.Repeat("a", 65) + `","data":1}`,
		`{"id":1,"op":"publish","data":{"t":"\u0007"}}`,
		`{"id":1,"op":"publish","data":{"\u001b[31m":"x"}}`,
		`{"id":1,"op":"publish","data":` + strings.Repeat("[", 33) + strings.Repeat("]", 33) + `}`,
		"{\"id\":1,\"op\":\"ping\",\"channel\":\"\xff\"}",
		`{"id":1,"op":"refresh","token":"` + strings.Repeat("a", 9000) + `"}`,
	}
	for _, b := range bad {
		if _, err := ParseRequest([]byte(b)); err == nil {
			t.Errorf("%.80q accepted", b)
		}
	}
}

func TestNestingIgnoresStrings(t *testing.T) {
	s := `{"id":1,"op":"publish","channel":"room:a","data":{"text":"` + strings.Repeat("[{", 100) + `\"]"}}`
	if _, err := ParseRequest([]byte(s)); err != nil {
		t.Fatalf("brackets inside a string counted as nesting: %v", err)
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"op":"ping"}`,
		`{"id":2,"op":"publish","channel":"room:a","cid":"c","data":{"text":"hi"}}`,
		`{"id":3,"op":"subscribe","channel":"room:a","since":41}`,
		`{"id":1,"op":"publish","data":[[[[[]]]]]}`,
		`{"id":"1"}`,
		"\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		if r.ID <= 0 || r.Op == "" || len(r.CID) > maxCIDLength {
			t.Fatalf("accepted an invalid request: %+v", r)
		}
	})
}

// The subscribe answer, encoded by hand, is what encodeReply makes of it.
func TestSubscribeAnswerMatchesEncodeReply(t *testing.T) {
	for _, c := range []struct {
		id        int64
		latest    uint64
		recovered bool
	}{{1, 0, true}, {9007199254740993, 18446744073709551615, false}, {42, 7, true}} {
		want := encodeReply(reply{ID: c.id, OK: true, Result: map[string]any{"offset": c.latest, "recovered": c.recovered}})
		if got := subscribeAnswer(c.id, c.latest, c.recovered); string(got) != string(want) {
			t.Fatalf("subscribeAnswer = %s, want %s", got, want)
		}
	}
}
