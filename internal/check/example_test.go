package check_test

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/wsguard/wsguard/internal/check"
)

// Scan an endpoint with a bearer token and fail a CI job on anything high
// or worse.
func ExampleRun() {
	rep, err := check.Run(context.Background(), check.Options{
		Target:       "wss://staging.example.com/ws",
		Origin:       "https://staging.example.com",
		Header:       http.Header{"Authorization": {"Bearer " + os.Getenv("SCAN_TOKEN")}},
		Subprotocols: []string{"app.v1"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // a bad URL, or check.ErrUnreachable
		os.Exit(2)
	}
	_ = rep.WriteText(os.Stdout, false)
	if rep.Worst() >= check.High {
		os.Exit(1)
	}
}
