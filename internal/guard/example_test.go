package guard_test

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/wsguard/wsguard/internal/guard"
	"github.com/wsguard/wsguard/internal/store"
)

// A refusal keeps what the client is told apart from what the server logs.
func ExampleRefuse() {
	cause := fmt.Errorf("store: session by hash: %w: database is closed", store.ErrUnavailable)
	rf := guard.Refuse(http.StatusServiceUnavailable, "store_unavailable", "service unavailable, try again later", cause)
	fmt.Println(rf.Status, rf.Message)
	fmt.Println(rf.Reason, errors.Is(rf, store.ErrUnavailable))
	// Output:
	// 503 service unavailable, try again later
	// store_unavailable true
}

// Bearer tells an API key from a JWT by its prefix.
func ExampleBearer() {
	fmt.Println(guard.Bearer("wsg_0123").Kind, guard.Bearer("eyJhbGciOi").Kind)
	// Output: apikey jwt
}
