package wsguardjs_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	wsguardjs "github.com/wsguard/wsguard/clients/js"
)

// ExampleHandler mounts the browser client where every wsguard node serves it.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle(wsguardjs.Path, wsguardjs.Handler())
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", wsguardjs.Path, nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Println(rec.Header().Get("Cache-Control"))
	fmt.Println(strings.HasPrefix(wsguardjs.Integrity(), "sha384-"))
	// Output:
	// 200 text/javascript; charset=utf-8
	// public, max-age=31536000, immutable
	// true
}
