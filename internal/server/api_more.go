package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/conn"
	"github.com/wsguard/wsguard/internal/guard"
	"github.com/wsguard/wsguard/internal/hub"
	"github.com/wsguard/wsguard/internal/token"
)

// The rest of the service API: broadcast, presence, history, channels and
// info, beside publish and disconnect (api.go). Every route is listed once,
// in apiRoutes: the mux registers them from it, the 404 answer names them,
// and the OpenAPI test (docs/openapi.yaml) compares the file with it, so a
// route cannot exist without being described.

// apiRoute is one service-API endpoint.
type apiRoute struct {
	Method, Path string
	handler      func(*serviceAPI, http.ResponseWriter, *http.Request)
}

// apiRoutes lists every /api/v1 endpoint.
var apiRoutes = []apiRoute{
	{"POST", "/api/v1/tickets", (*serviceAPI).apiTickets},
	{"POST", "/api/v1/publish", (*serviceAPI).apiPublish},
	{"POST", "/api/v1/broadcast", (*serviceAPI).apiBroadcast},
	{"POST", "/api/v1/disconnect", (*serviceAPI).apiDisconnect},
	{"POST", "/api/v1/presence", (*serviceAPI).apiPresence},
	{"POST", "/api/v1/history", (*serviceAPI).apiHistory},
	{"POST", "/api/v1/channels", (*serviceAPI).apiChannels},
	{"POST", "/api/v1/info", (*serviceAPI).apiInfo},
	{"GET", "/api/v1/rooms", (*serviceAPI).apiRoomsGet}, // the chat's saved rooms; see rooms.go
	{"PUT", "/api/v1/rooms", (*serviceAPI).apiRoomsPut},
}

// registerAPIRoutes adds apiRoutes to mux and returns the list of them for
// the 404 answer.
func (s *serviceAPI) registerAPIRoutes(mux *http.ServeMux) string {
	names := make([]string, 0, len(apiRoutes))
	for _, rt := range apiRoutes {
		h := rt.handler
		mux.HandleFunc(rt.Method+" "+rt.Path, func(w http.ResponseWriter, r *http.Request) { h(s, w, r) })
		names = append(names, rt.Method+" "+rt.Path)
	}
	return strings.Join(names, ", ")
}

// maxBroadcastChannels bounds one broadcast: each channel is one stored
// message and one unit of the sender's message rate.
const maxBroadcastChannels = 100

// maxChannelList bounds the channels answer; past it the answer says
// "more" and the caller narrows the pattern.
const maxChannelList = 1000

// broadcastResult is one channel's outcome in a broadcast answer: an
// offset, or an error with the code a publish would have had.
type broadcastResult struct {
	Channel string  `json:"channel"`
	Offset  uint64  `json:"offset,omitempty"`
	Error   *apiErr `json:"error,omitempty"`
}

// apiBroadcast stores one message in many channels: POST /api/v1/broadcast
// {"channels":[...],"data"[,"cid"]} → {"results":[{"channel","offset"} |
// {"channel","error"}]}, in the order asked. Each channel is checked and
// stored as a publish would be, so one refused channel does not stop the
// others; the answer is 200 whenever the request itself was valid. With a
// cid, a retried broadcast stores nothing twice: each channel gets its own
// cid derived from it (the store dedupes per sender and cid).
func (s *serviceAPI) apiBroadcast(w http.ResponseWriter, r *http.Request) {
	id, ok := s.apiAuth(w, r)
	if !ok {
		return
	}
	who := id.Principal.Name
	var body struct {
		Channels []string        `json:"channels"`
		Data     json.RawMessage `json:"data"`
		CID      string          `json:"cid,omitempty"`
	}
	if status, msg := decodeBody(r, &body, false); status != 0 {
		s.apiRefuse(w, r, status, "bad_body", msg, who)
		return
	}
	if len(body.Channels) == 0 || len(body.Channels) > maxBroadcastChannels {
		s.apiRefuse(w, r, http.StatusBadRequest, "bad_body", "channels must list 1 to 100 channels", who)
		return
	}
	seen := make(map[string]bool, len(body.Channels))
	for _, c := range body.Channels {
		if _, err := authz.ParseChannel(c); err != nil {
			s.apiRefuse(w, r, http.StatusBadRequest, "bad_channel", err.Error(), who)
			return
		}
		if seen[c] {
			s.apiRefuse(w, r, http.StatusBadRequest, "bad_body", "channel "+c+" is listed twice", who)
			return
		}
		seen[c] = true
	}
	// The message itself is checked once, as a socket's publish frame.
	frame, _ := json.Marshal(conn.Request{ID: 1, Op: "publish", Channel: body.Channels[0], Data: body.Data, CID: body.CID})
	if _, err := conn.ParseRequest(frame); err != nil {
		s.apiRefuse(w, r, http.StatusBadRequest, "bad_body", err.Error(), who)
		return
	}
	if len(body.Data) == 0 || string(body.Data) == "null" {
		s.apiRefuse(w, r, http.StatusBadRequest, "bad_body", "broadcast needs data", who)
		return
	}
	results := make([]broadcastResult, len(body.Channels))
	stored := 0
	for i, c := range body.Channels {
		ch, _ := authz.ParseChannel(c)
		results[i].Channel = ch.String()
		fail := func(code, msg string) { results[i].Error = &apiErr{Code: code, Message: msg} }
		if err := s.rules.Allow(id.Principal, authz.Publish, ch); err != nil {
			s.audit.Record(audit.Event{Type: "authz.denied", Reason: "publish", IP: s.clientIP(r), User: who, Fields: map[string]string{"channel": ch.String(), "via": "broadcast"}})
			fail(apiForbidden, "publish not allowed on "+ch.String())
			continue
		}
		if ok, _ := s.userMsgs.Allow(who, s.clock.Now()); !ok {
			fail(apiRateLimited, "too many messages, slow down")
			continue
		}
		pctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		res, err := s.hub.Publish(pctx, who, ch.String(), broadcastCID(body.CID, ch.String()), body.Data)
		cancel()
		if err != nil {
			s.log.Warn("api broadcast failed", "channel", ch.String(), "err", err)
			fail(apiUnavailable, "storage unavailable, retry later")
			continue
		}
		s.metrics.MessagesIn.Inc()
		results[i].Offset = res.Offset
		stored++
	}
	s.audit.Record(audit.Event{Type: "api.broadcast", Reason: who, IP: s.clientIP(r), User: who,
		Fields: map[string]string{"channels": itoa(len(body.Channels)), "stored": itoa(stored)}})
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// broadcastCID derives a channel's cid from a broadcast's: stable across
// retries, distinct per channel, within the 64 printable bytes a cid may have.
func broadcastCID(cid, channel string) string {
	if cid == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(cid + "\x00" + channel))
	return "b." + base64.RawURLEncoding.EncodeToString(sum[:])
}

// apiRate charges one request to the caller's message rate
// (limits.user_messages_per_second), as every socket request is charged:
// reads through the API are not a way around the limits. It answers 429
// itself when the budget is spent.
func (s *serviceAPI) apiRate(w http.ResponseWriter, r *http.Request, who string) bool {
	if ok, wait := s.userMsgs.Allow(who, s.clock.Now()); !ok {
		retryAfter(w, wait)
		s.apiRefuse(w, r, http.StatusTooManyRequests, "api_rate", "too many requests, slow down", who)
		return false
	}
	return true
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// apiChannelBody reads {"channel"} bodies (presence) and checks the right.
func (s *serviceAPI) apiChannelRight(w http.ResponseWriter, r *http.Request, id guard.Identity, channel string, a authz.Action) (authz.Channel, bool) {
	who := id.Principal.Name
	ch, err := authz.ParseChannel(channel)
	if err != nil {
		s.apiRefuse(w, r, http.StatusBadRequest, "bad_channel", err.Error(), who)
		return ch, false
	}
	if err := s.rules.Allow(id.Principal, a, ch); err != nil {
		s.audit.Record(audit.Event{Type: "authz.denied", Reason: string(a), IP: s.clientIP(r), User: who, Fields: map[string]string{"channel": ch.String()}})
		writeJSON(w, http.StatusForbidden, apiErrorBody(apiForbidden, string(a)+" not allowed on "+ch.String()))
		return ch, false
	}
	return ch, true
}

// apiPresence lists the users present in a channel: POST /api/v1/presence
// {"channel"} → {"users":[...]}, as a socket's presence request answers.
// It needs the presence right (for an API key: a presence:<ns>:<pattern>
// scope where the namespace's presence rule lists scope).
func (s *serviceAPI) apiPresence(w http.ResponseWriter, r *http.Request) {
	id, ok := s.apiAuth(w, r)
	if !ok {
		return
	}
	var body struct {
		Channel string `json:"channel"`
	}
	if status, msg := decodeBody(r, &body, false); status != 0 {
		s.apiRefuse(w, r, status, "bad_body", msg, id.Principal.Name)
		return
	}
	ch, ok := s.apiChannelRight(w, r, id, body.Channel, authz.Presence)
	if !ok || !s.apiRate(w, r, id.Principal.Name) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": s.hub.Members(ch.String())})
}

// apiHistory answers a channel's stored messages: POST /api/v1/history
// {"channel"[,"limit"][,"before"]} → {"messages":[...][,"more":true]},
// oldest first, exactly as a socket's history request: limit defaults to
// 50 and is clamped to 1000, before is exclusive, and an answer cut short
// by the byte budget (half of limits.send_queue_bytes) says "more": ask
// again with before set to the first offset received.
func (s *serviceAPI) apiHistory(w http.ResponseWriter, r *http.Request) {
	id, ok := s.apiAuth(w, r)
	if !ok {
		return
	}
	who := id.Principal.Name
	var body struct {
		Channel string `json:"channel"`
		Limit   int    `json:"limit,omitempty"`
		Before  uint64 `json:"before,omitempty"`
	}
	if status, msg := decodeBody(r, &body, false); status != 0 {
		s.apiRefuse(w, r, status, "bad_body", msg, who)
		return
	}
	if body.Limit < 0 {
		s.apiRefuse(w, r, http.StatusBadRequest, "bad_body", "limit must be 0 (the default, 50) to 1000", who)
		return
	}
	ch, ok := s.apiChannelRight(w, r, id, body.Channel, authz.History)
	if !ok || !s.apiRate(w, r, who) {
		return
	}
	limit := body.Limit
	switch {
	case limit == 0:
		limit = 50
	case limit > 1000:
		limit = 1000
	}
	budget := s.cfg.Limits.SendQueueBytes / 2
	if budget <= 0 {
		budget = 512 << 10
	}
	var newestFirst []hub.WireMessage
	size, more, before := 0, false, body.Before
	const page = 16
	for len(newestFirst) < limit && !more {
		n := min(page, limit-len(newestFirst))
		hctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		msgs, err := s.store.History(hctx, ch.String(), before, n)
		cancel()
		if err != nil {
			s.log.Warn("api history failed", "channel", ch.String(), "err", err)
			writeJSON(w, http.StatusServiceUnavailable, apiErrorBody(apiUnavailable, "storage unavailable, retry later"))
			return
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			m := msgs[i]
			sz := len(m.Data) + len(m.From) + len(m.Channel) + 96
			if size+sz > budget && len(newestFirst) > 0 {
				more = true
				break
			}
			size += sz
			newestFirst = append(newestFirst, hub.Wire(m))
			before = m.Offset
		}
		if len(msgs) < n {
			break
		}
	}
	slices.Reverse(newestFirst)
	if newestFirst == nil {
		newestFirst = []hub.WireMessage{}
	}
	result := map[string]any{"messages": newestFirst}
	if more {
		result["more"] = true
	}
	writeJSON(w, http.StatusOK, result)
}

// apiChannels lists this node's active channels with their subscriber
// counts: POST /api/v1/channels [{"pattern"}] → {"channels":[{"channel",
// "subscribers","users"}][,"more":true]}. Only API keys may list, and only
// channels their channels:<ns>:<pattern> scopes cover; pattern ("room:*",
// "room:lobby") narrows further. At most 1000 channels are listed.
func (s *serviceAPI) apiChannels(w http.ResponseWriter, r *http.Request) {
	id, ok := s.apiAuth(w, r)
	if !ok {
		return
	}
	who := id.Principal.Name
	var body struct {
		Pattern string `json:"pattern,omitempty"`
	}
	if status, msg := decodeBody(r, &body, true); status != 0 {
		s.apiRefuse(w, r, status, "bad_body", msg, who)
		return
	}
	if body.Pattern != "" && !validChannelPattern(body.Pattern) {
		s.apiRefuse(w, r, http.StatusBadRequest, "bad_body", "pattern must be a channel (room:lobby) or a namespace and a name prefix ending in * (room:*, room:team-*)", who)
		return
	}
	if id.Kind != guard.KindAPIKey || !slices.ContainsFunc(id.Principal.Scopes, func(sc string) bool { return strings.HasPrefix(sc, authz.Channels+":") }) {
		s.audit.Record(audit.Event{Type: "authz.denied", Reason: "channels", IP: s.clientIP(r), User: who})
		writeJSON(w, http.StatusForbidden, apiErrorBody(apiForbidden, "listing channels needs an API key with a channels:<namespace>:<pattern> scope"))
		return
	}
	if !s.apiRate(w, r, who) {
		return
	}
	scopes := id.Principal.Scopes
	list := s.hub.Channels(func(ch string) bool {
		if body.Pattern != "" && !matchChannelPattern(body.Pattern, ch) {
			return false
		}
		for _, sc := range scopes {
			if token.ScopeAllows(sc, authz.Channels, ch) {
				return true
			}
		}
		return false
	})
	result := map[string]any{}
	if len(list) > maxChannelList {
		list = list[:maxChannelList]
		result["more"] = true
	}
	if list == nil {
		list = []hub.ChannelCount{}
	}
	result["channels"] = list
	writeJSON(w, http.StatusOK, result)
}

// validChannelPattern: "ns:name", or "ns:" plus a name prefix and "*".
func validChannelPattern(p string) bool {
	if prefix, star := strings.CutSuffix(p, "*"); star {
		ns, name, ok := strings.Cut(prefix, ":")
		if !ok {
			return false
		}
		if name == "" {
			_, err := authz.ParseChannel(ns + ":x")
			return err == nil
		}
		_, err := authz.ParseChannel(ns + ":" + name)
		return err == nil
	}
	_, err := authz.ParseChannel(p)
	return err == nil
}

func matchChannelPattern(p, ch string) bool {
	if prefix, star := strings.CutSuffix(p, "*"); star {
		return strings.HasPrefix(ch, prefix)
	}
	return p == ch
}

// nodeInfo is one node in the info answer. The answer is a list so that
// it keeps its shape when nodes report one another; today a node reports
// itself, and "node" names the one that answered.
type nodeInfo struct {
	ID            string `json:"id"`
	Started       string `json:"started"`
	Connections   int    `json:"connections"`
	Subscriptions int    `json:"subscriptions"`
	Channels      int    `json:"channels"`
	Draining      bool   `json:"draining"`
}

// apiInfo describes the nodes: POST /api/v1/info → {"node":<id>,
// "nodes":[{"id","started","connections","subscriptions","channels",
// "draining"}]}. It needs an API key with the info:node:* scope.
func (s *serviceAPI) apiInfo(w http.ResponseWriter, r *http.Request) {
	id, ok := s.apiAuth(w, r)
	if !ok {
		return
	}
	who := id.Principal.Name
	var empty struct{}
	if status, msg := decodeBody(r, &empty, true); status != 0 {
		s.apiRefuse(w, r, status, "bad_body", msg, who)
		return
	}
	self := s.nodeID()
	allowed := false
	if id.Kind == guard.KindAPIKey {
		for _, sc := range id.Principal.Scopes {
			if token.ScopeAllows(sc, authz.Info, authz.InfoNodes+":"+self) {
				allowed = true
			}
		}
	}
	if !allowed {
		s.audit.Record(audit.Event{Type: "authz.denied", Reason: "info", IP: s.clientIP(r), User: who})
		writeJSON(w, http.StatusForbidden, apiErrorBody(apiForbidden, "info needs an API key with the info:node:* scope"))
		return
	}
	if !s.apiRate(w, r, who) {
		return
	}
	subs, chans := s.hub.Subscriptions()
	n := nodeInfo{ID: self, Started: s.started.UTC().Format(time.RFC3339), Connections: s.hub.Count(),
		Subscriptions: subs, Channels: chans, Draining: s.sock.draining.Load()}
	writeJSON(w, http.StatusOK, map[string]any{"node": self, "nodes": []nodeInfo{n}})
}

// nodeID names this node: the host name and the listen port, which tell
// nodes apart in one deployment and mean something to an operator. Only
// characters of a channel name are kept, so info:node:<id> scopes work.
func (s *serviceAPI) nodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	port := s.cfg.Listen
	if i := strings.LastIndexByte(port, ':'); i >= 0 {
		port = port[i+1:]
	}
	raw := host + "-" + port
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw) && len(b) < 128; i++ {
		c := raw[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' {
			b = append(b, c)
		}
	}
	return strings.ReplaceAll(string(b), "..", ".")
}
