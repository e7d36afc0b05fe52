package conn

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestAppendTextFrameReadByGorilla checks our batched framing against an
// independent parser: gorilla's client must read back every payload, at
// each length-encoding boundary, from one batched write.
func TestAppendTextFrameReadByGorilla(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 70000}
	payload := func(n int) []byte { return bytes.Repeat([]byte{'a' + byte(n%26)}, n) }
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		var buf []byte
		for _, n := range sizes {
			buf = appendTextFrame(buf, payload(n))
		}
		_, _ = ws.NetConn().Write(buf)
		_, _, _ = ws.ReadMessage() // wait for the client to finish
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, n := range sizes {
		typ, got, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if typ != websocket.TextMessage || !bytes.Equal(got, payload(n)) {
			t.Fatalf("size %d: got type %d, %d bytes", n, typ, len(got))
		}
	}
}
