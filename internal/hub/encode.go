package hub

import (
	"encoding/json"
	"time"

	"github.com/wsguard/wsguard/internal/store"
)

// WireMessage is a message as clients see it, in pushes and history.
type WireMessage struct {
	Push    string          `json:"push,omitempty"`
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	From    string          `json:"from"`
	TS      string          `json:"ts"`
	Data    json.RawMessage `json:"data"`
}

// Wire converts a stored message to its client form (without "push").
func Wire(m store.Message) WireMessage {
	return WireMessage{Channel: m.Channel, Offset: m.Offset, From: m.From, TS: m.TS.UTC().Format(time.RFC3339Nano), Data: m.Data}
}

// EncodePush encodes the push every subscriber receives for m. It is called
// once per message per node, never once per subscriber.
func EncodePush(m store.Message) []byte {
	w := Wire(m)
	w.Push = "message"
	b, err := json.Marshal(w)
	if err != nil {
		// Data was validated as JSON before it was stored; this cannot happen.
		panic("encode push: " + err.Error())
	}
	return b
}
