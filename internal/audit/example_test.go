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

	log, err := audit.Open(path, audit.Options{})
	if err != nil {
		panic(err)
	}
	log.Record(audit.Event{Type: "handshake.refused", Reason: "origin_not_allowed", IP: "192.0.2.1",
		Fields: map[string]string{"origin": "https://evil.example", "csrf_token": "never logged"}})
	log.Close()

	f, _ := os.Open(path)
	defer f.Close()
	n, err := audit.Verify(f)
	fmt.Println(n, err)
	// Output: 1 <nil>
}
