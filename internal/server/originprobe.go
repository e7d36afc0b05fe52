package server

import (
	"encoding/json"
	"net/http"

	"github.com/wsguard/wsguard/internal/guard"
)

// originProbe answers POST /ws/origin with whether the Origin the browser
// sent would pass the handshake's origin check: {"reason":""} when it
// would, {"reason":"origin_not_allowed"} (or origin_missing, origin_null)
// when not. A browser hides why a WebSocket handshake failed, so the chat
// page asks here after a failed one and can tell its user that the server
// refuses this page's origin, instead of reconnecting forever.
//
// It is POST because browsers send Origin on a same-origin POST and not on
// a GET. It reveals nothing a handshake attempt with the same Origin would
// not, and only the reason code: never the allowlist itself.
func (s *Server) originProbe(w http.ResponseWriter, r *http.Request) {
	reason := ""
	if err := s.origins.Check(r.Header.Get("Origin")); err != nil {
		reason = guard.OriginReason(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(struct {
		Reason string `json:"reason"`
	}{reason})
}
