package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wsguard/wsguard/internal/store"
)

func ExampleOpenSQLite() {
	dir, _ := os.MkdirTemp("", "wsguard-example")
	defer os.RemoveAll(dir)
	s, err := store.OpenSQLite(filepath.Join(dir, "wsguard.db"), store.SQLiteOptions{
		OnCommit: func(ms []store.Message) {
			// Hand the stored messages to the broker, in order.
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	ctx := context.Background()
	r, _ := s.Publish(ctx, store.Message{Channel: "room:lobby", From: "alice", CID: "c-1", Data: json.RawMessage(`{"text":"hi"}`)})
	again, _ := s.Publish(ctx, store.Message{Channel: "room:lobby", From: "alice", CID: "c-1", Data: json.RawMessage(`{"text":"hi"}`)})
	fmt.Println(r.Offset, again.Offset, again.Duplicate)
	// Output: 1 1 true
}
