package audit_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/wsguard/wsguard/internal/audit"
)

func Example() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.log")

	// A node passes its store as Options.Heads, so that a log cut short
	// shows; without one, only edits, removals and reordering do.
	log, err := audit.Open(path, audit.Options{KeyFile: filepath.Join(dir, "audit.key")})
	if err != nil {
		panic(err)
	}
	log.Record(audit.Event{Type: "handshake.refused", Reason: "origin_not_allowed", IP: "192.0.2.1",
		Fields: map[string]string{"origin": "https://evil.example", "csrf_token": "never logged"}})
	log.Close()

	key, err := audit.ReadKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		panic(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	n, err := audit.Verify(f, key, nil)
	fmt.Println(n, err)
	// Output: 1 <nil>
}
