package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// echoUpstream is a backend that echoes every message with its type.
func echoUpstream(t testing.TB) *httptest.Server {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			typ, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := ws.WriteMessage(typ, b); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// relayFront is the relay alone in front of upstream: no TLS and no guard
// (the server's tests cover those), every connection as user "u".
func relayFront(t testing.TB, upstream string, opt Options) *httptest.Server {
	u, _ := url.Parse(upstream)
	target := &Upstream{URL: u, Secret: testSecret}
	up := websocket.Upgrader{WriteBufferPool: writePool, ReadBufferSize: 1024}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uws, chosen, err := target.Dial(r.Context(), r, Identity{User: "u", Credential: "jwt"}, "127.0.0.1", false)
		if err != nil {
			http.Error(w, "upstream unavailable", http.StatusBadGateway)
			return
		}
		var h http.Header
		if p := Answer(r, chosen); p != "" {
			h = http.Header{"Sec-Websocket-Protocol": {p}}
		}
		cws, err := up.Upgrade(w, r, h)
		if err != nil {
			_ = uws.Close()
			return
		}
		go New(cws, uws, opt).Serve(context.Background())
	}))
	t.Cleanup(srv.Close)
	return srv
}

func wsURL(s *httptest.Server) string { return "ws" + strings.TrimPrefix(s.URL, "http") }
