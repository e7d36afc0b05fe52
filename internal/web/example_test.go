package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/wsguard/wsguard/internal/web"
)

// ExampleNew renders a page; every value in PageData is escaped.
func ExampleNew() {
	pages, err := web.New()
	if err != nil {
		panic(err) // a broken template: stop at start
	}
	rec := httptest.NewRecorder()
	pages.Render(rec, http.StatusUnauthorized, "login", web.PageData{Title: "Sign in", CSRFToken: "token", Error: "Wrong username or password."})
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"))
	// Output: 401 text/html; charset=utf-8 no-store
}

// ExampleStatic mounts the embedded assets under /static/.
func ExampleStatic() {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", web.Static()))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/static/app.js", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	// Output: 200 text/javascript; charset=utf-8
}
