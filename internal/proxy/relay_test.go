package proxy

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestRelayEchoAndClose: messages go through whole, with their type, and
// the client's close code reaches the upstream and comes back.
func TestRelayEchoAndClose(t *testing.T) {
	front := relayFront(t, wsURL(echoUpstream(t)), Options{})
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(front), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	bin := make([]byte, 70000)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	for _, m := range []struct {
		typ  int
		data []byte
	}{{websocket.TextMessage, []byte("héllo")}, {websocket.BinaryMessage, bin[:60000]}} {
		_ = ws.WriteMessage(m.typ, m.data)
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		typ, got, err := ws.ReadMessage()
		if err != nil || typ != m.typ || !bytes.Equal(got, m.data) {
			t.Fatalf("echo: type %d, %d bytes, %v", typ, len(got), err)
		}
	}
	// Over the default 64 KiB limit: 1009.
	_ = ws.WriteMessage(websocket.BinaryMessage, append(bin, 1))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseTooBig {
		t.Fatalf("oversize: %v, want 1009", err)
	}
}

// TestRelayJSONOnly: with JSONOnly, one JSON value per text frame passes;
// anything else ends the connection.
func TestRelayJSONOnly(t *testing.T) {
	front := relayFront(t, wsURL(echoUpstream(t)), Options{JSONOnly: true})
	for _, c := range []struct {
		typ  int
		data string
		want int
	}{
		{websocket.TextMessage, `{"a":1} {"b":2}`, ClosePolicy},
		{websocket.TextMessage, `not json`, ClosePolicy},
		{websocket.BinaryMessage, `{"a":1}`, CloseUnsupported},
	} {
		ws, _, err := websocket.DefaultDialer.Dial(wsURL(front), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"ok":[1,2]}`))
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, got, err := ws.ReadMessage(); err != nil || string(got) != `{"ok":[1,2]}` {
			t.Fatalf("valid JSON not relayed: %q %v", got, err)
		}
		_ = ws.WriteMessage(c.typ, []byte(c.data))
		_, _, err = ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != c.want {
			t.Errorf("%q: %v, want close %d", c.data, err, c.want)
		}
		ws.Close()
	}
}
