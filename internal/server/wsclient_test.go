package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// frame is any server frame, decoded loosely for assertions.
type frame struct {
	ID     int64           `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Push    string          `json:"push"`
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	From    string          `json:"from"`
	Data    json.RawMessage `json:"data"`
	Join    []string        `json:"join"`
	Leave   []string        `json:"leave"`
}

func send(t *testing.T, ws *websocket.Conn, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func readFrame(t *testing.T, ws *websocket.Conn) frame {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("bad frame %s: %v", b, err)
	}
	return f
}

// call sends a request and returns its reply, collecting any pushes read meanwhile.
func call(t *testing.T, ws *websocket.Conn, req map[string]any) (frame, []frame) {
	t.Helper()
	send(t, ws, req)
	id := int64(req["id"].(int))
	var pushes []frame
	for {
		f := readFrame(t, ws)
		if f.Push != "" {
			pushes = append(pushes, f)
			continue
		}
		if f.ID == id {
			return f, pushes
		}
	}
}

// nextMessage returns the next message push, skipping presence pushes.
func nextMessage(t *testing.T, ws *websocket.Conn) frame {
	t.Helper()
	for {
		f := readFrame(t, ws)
		if f.Push == "message" {
			return f
		}
	}
}

// closeCode reads until the connection closes and returns the close code;
// a connection that ends without a close frame fails the test.
func closeCode(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	code := endCode(t, ws)
	if code == -1 {
		t.Fatal("connection ended without a close frame")
	}
	return code
}

func resultField(t *testing.T, f frame, into any) {
	t.Helper()
	if f.Error != nil {
		t.Fatalf("error reply: %s %s", f.Error.Code, f.Error.Message)
	}
	if err := json.Unmarshal(f.Result, into); err != nil {
		t.Fatalf("result %s: %v", f.Result, err)
	}
}
