package server

import (
	"net/http"
	"strconv"

	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/csrf"
	"github.com/wsguard/wsguard/internal/guard"
	"github.com/wsguard/wsguard/internal/store"
)

// The chat's joined rooms, kept per user on the server so a reload or
// another device opens the same ones:
//
//	GET /api/v1/rooms             → {"rooms":[...],"saved":bool}
//	PUT /api/v1/rooms {"rooms":[...]} → {"rooms":[...]}
//
// Both take the session cookie (second factor done) and the session's
// CSRF token in X-CSRF-Token, like the chat's ticket request; a PUT also
// needs an allowed Origin. Saving a room grants nothing: the socket still
// checks every subscribe against the channel rules.

// maxSavedRooms bounds the saved list: the rooms column of one user.
const maxSavedRooms = 50

// defaultRooms are what a user who never saved any opens.
var defaultRooms = []string{"room:lobby", "room:random"}

// chatRooms returns the rooms the chat page opens for u.
func (s *Server) chatRooms(r *http.Request, u store.User) []string {
	rooms, saved, err := s.store.Rooms(r.Context(), u.ID)
	if err != nil {
		// The chat still works: the user rejoins by hand.
		s.log.Warn("saved rooms unreadable", "user", u.Name, "err", err)
		return defaultRooms
	}
	if !saved {
		return defaultRooms
	}
	return rooms
}

// roomsAuth checks Origin (PUT), the session and its CSRF token.
func (s *serviceAPI) roomsAuth(w http.ResponseWriter, r *http.Request, needOrigin bool) (store.User, bool) {
	if rf := s.apiOrigin(r, needOrigin); rf != nil {
		s.apiRefusal(w, r, rf, "")
		return store.User{}, false
	}
	sess, u, rf := s.creds.SignedIn(r.Context(), guard.SessionCookie(r))
	if rf != nil {
		s.apiRefusal(w, r, rf, "")
		return store.User{}, false
	}
	if !sess.TwoFADone {
		s.apiRefuse(w, r, http.StatusUnauthorized, "second_factor_pending", "finish signing in first (two-factor code)", u.Name)
		return store.User{}, false
	}
	if !csrf.Equal(r.Header.Get("X-CSRF-Token"), sess.CSRFSecret) {
		s.apiRefuse(w, r, http.StatusForbidden, "csrf_invalid", "X-CSRF-Token missing or wrong", u.Name)
		return store.User{}, false
	}
	return u, true
}

func (s *serviceAPI) apiRoomsGet(w http.ResponseWriter, r *http.Request) {
	u, ok := s.roomsAuth(w, r, false)
	if !ok {
		return
	}
	rooms, saved, err := s.store.Rooms(r.Context(), u.ID)
	if err != nil {
		s.log.Warn("saved rooms unreadable", "user", u.Name, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, apiErrorBody(apiUnavailable, "storage unavailable, retry later"))
		return
	}
	if rooms == nil {
		rooms = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": rooms, "saved": saved})
}

func (s *serviceAPI) apiRoomsPut(w http.ResponseWriter, r *http.Request) {
	u, ok := s.roomsAuth(w, r, true)
	if !ok {
		return
	}
	var body struct {
		Rooms []string `json:"rooms"`
	}
	if status, msg := decodeBody(r, &body, false); status != 0 {
		s.apiRefuse(w, r, status, "bad_body", msg, u.Name)
		return
	}
	rooms, msg := cleanRooms(body.Rooms)
	if msg != "" {
		s.apiRefuse(w, r, http.StatusBadRequest, "bad_rooms", msg, u.Name)
		return
	}
	if err := s.store.SetRooms(r.Context(), u.ID, rooms); err != nil {
		s.log.Warn("saving rooms failed", "user", u.Name, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, apiErrorBody(apiUnavailable, "storage unavailable, retry later"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": rooms})
}

// cleanRooms validates a list to save: at most maxSavedRooms channel names
// by the channel rules, kept in order, duplicates dropped. A refusal names
// the first bad entry and what is allowed.
func cleanRooms(in []string) ([]string, string) {
	if len(in) > maxSavedRooms {
		return nil, "at most " + strconv.Itoa(maxSavedRooms) + " rooms can be saved, got " + strconv.Itoa(len(in))
	}
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for i, name := range in {
		ch, err := authz.ParseChannel(name)
		if err != nil {
			return nil, "rooms[" + strconv.Itoa(i) + "]: " + err.Error()
		}
		if c := ch.String(); !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out, ""
}
