package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Subprotocol is the protocol wsguard speaks.
const Subprotocol = "wsguard.v1"

// Config configures a Client. Exactly one of Token, Ticket and Session
// must be set.
type Config struct {
	// URL is the WebSocket endpoint, e.g. wss://chat.example.com/ws.
	URL string
	// Token returns the bearer credential (a JWT or an API key) for each
	// dial and for each refresh; return a fresh JWT when the old one nears
	// its exp.
	Token func(ctx context.Context) (string, error)
	// Ticket returns a fresh one-time ticket for each dial (see TicketFetcher).
	Ticket func(ctx context.Context) (string, error)
	// Session returns a signed-in browser session for each dial: the Cookie
	// header value and the page's CSRF token (its csrf-token meta tag),
	// sent as the wsguard.csrf.<token> subprotocol. Origin must be set
	// to an allowed origin, as a browser would send it.
	Session func(ctx context.Context) (cookie, csrfToken string, err error)
	// OnState, when set, is told of every change of the connection's
	// state. It runs on the client's goroutine: return quickly.
	OnState func(State)
	// OnError, when set, is told of every connection-level error: each
	// close by the server (a *CloseError) and each failed reconnect (a
	// *HandshakeError or a network error). Request errors go to the caller.
	OnError func(error)
	// Origin is sent as the Origin header when set: needed for tickets
	// minted by a browser session, which are bound to their Origin. Zero
	// means none (a non-browser client).
	Origin string
	// RootCAs verifies the server certificate. Zero means the system roots.
	RootCAs *x509.CertPool
	// PinSPKI, when set, also requires the server's leaf public key to be
	// one of these: base64 SHA-256 of the SubjectPublicKeyInfo, optionally
	// prefixed "sha256/". Zero means no pinning.
	PinSPKI []string
	// InsecurePlaintext allows ws:// (development on loopback only).
	// Default false: ws:// is refused.
	InsecurePlaintext bool
	// MinBackoff and MaxBackoff bound the wait between reconnect attempts,
	// doubled after each failure, with jitter. Zero means 250 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// HandshakeTimeout bounds TLS and the upgrade. Zero means 10 s.
	HandshakeTimeout time.Duration
	// RequestTimeout bounds each request without its own deadline. Zero means 10 s.
	RequestTimeout time.Duration
	// Buffer is how many received messages may wait in Messages(). Zero means 256.
	Buffer int
}

// Message is a channel message, or a gap marker.
type Message struct {
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	From    string          `json:"from"`
	TS      time.Time       `json:"ts"`
	Data    json.RawMessage `json:"data"`
	// Gap is true on a marker (no data) saying messages were missed beyond
	// the server's retention on reconnect: read History to catch up.
	Gap bool `json:"-"`
}

// State is the connection's state, as OnState reports it.
type State string

// States.
const (
	StateConnecting   State = "connecting"
	StateConnected    State = "connected"
	StateDisconnected State = "disconnected"
)

// CloseError is a close of the connection by the server, with its close
// code: 1001 going away, 1008 policy, 1009 too big, 4001 session ended or
// credential expired, 4003 forbidden, 4008 rate limited or slow consumer.
// After 4003 the client stops (Err returns the CloseError); after any
// other it reconnects (1008 covers an idle timeout or a failed ping too).
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("wsguard: connection closed: %d %s", e.Code, e.Reason)
}

func (e *CloseError) permanent() bool {
	return e.Code == 4003
}

// Error is an error reply from the server; Code is one of bad_request,
// forbidden, not_found, rate_limited, too_large, unavailable.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return "wsguard: " + e.Code + ": " + e.Message }

// HandshakeError is a refused handshake. 400, 401, 403 and 426 are
// permanent (the client stops); 429 and 503 are retried.
type HandshakeError struct {
	Status int
	Body   string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("wsguard: handshake refused: %d %s", e.Status, e.Body)
}

func (e *HandshakeError) permanent() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return false
	}
	return true
}

// Errors a request can fail with besides *Error.
var (
	// ErrClosed: the client was closed, or stopped after a permanent failure (see Err).
	ErrClosed = errors.New("wsguard: client closed")
	// ErrDisconnected: the connection dropped before the reply came. The
	// request may or may not have been applied; retry a publish with the
	// same cid to make it exactly-once.
	ErrDisconnected = errors.New("wsguard: disconnected before the reply")
)

type reply struct {
	ID     int64           `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
}

type pending struct {
	ch        chan reply
	subscribe string  // channel, for subscribe requests
	since     *uint64 // since sent with it
	// resumedLive marks a resume sent without since (the credential may
	// subscribe but not read history): a gap marker when the channel moved
	// on past the last offset delivered.
	resumedLive bool
}

// Client is a self-healing connection to a wsguard server.
type Client struct {
	cfg    Config
	dialer websocket.Dialer
	msgs   chan Message
	done   chan struct{}

	mu        sync.Mutex
	ws        *websocket.Conn
	up        chan struct{} // closed while connected; replaced on disconnect
	nextID    int64
	pending   map[int64]pending
	subs      map[string]uint64 // channel -> last offset seen
	err       error
	connects  int
	writeMu   sync.Mutex
	closeOnce sync.Once
}

// Dial connects and returns a Client that reconnects on its own until
// Close or a permanent failure. The first dial's error is returned as is
// (a *HandshakeError for a refused credential).
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	n := 0
	for _, set := range []bool{cfg.Token != nil, cfg.Ticket != nil, cfg.Session != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("wsguard client: set exactly one of Config.Token, Config.Ticket and Config.Session")
	}
	if cfg.Session != nil && cfg.Origin == "" {
		return nil, errors.New("wsguard client: Config.Session needs Config.Origin, an origin the server allows")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("wsguard client: URL: %w", err)
	}
	switch {
	case u.Scheme == "wss":
	case u.Scheme == "ws" && cfg.InsecurePlaintext:
	default:
		return nil, fmt.Errorf("wsguard client: URL scheme %q refused (allowed: wss; ws only with InsecurePlaintext)", u.Scheme)
	}
	pins, err := parsePins(cfg.PinSPKI)
	if err != nil {
		return nil, err
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	tc := &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	if len(pins) > 0 {
		// Runs after the normal chain and host name verification.
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("wsguard client: no server certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			for _, p := range pins {
				if subtle.ConstantTimeCompare(sum[:], p) == 1 {
					return nil
				}
			}
			return errors.New("wsguard client: server public key matches no pinned SPKI")
		}
	}
	c := &Client{
		cfg: cfg,
		dialer: websocket.Dialer{
			TLSClientConfig:  tc,
			HandshakeTimeout: cfg.HandshakeTimeout,
			Subprotocols:     []string{Subprotocol},
			Proxy:            http.ProxyFromEnvironment,
		},
		msgs:    make(chan Message, cfg.Buffer),
		done:    make(chan struct{}),
		up:      make(chan struct{}),
		pending: map[int64]pending{},
		subs:    map[string]uint64{},
	}
	c.state(StateConnecting)
	ws, err := c.dial(ctx)
	if err != nil {
		c.state(StateDisconnected)
		return nil, err
	}
	c.attach(ws)
	go c.run(ws)
	return c, nil
}

func parsePins(in []string) ([][]byte, error) {
	var out [][]byte
	for _, p := range in {
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(p, "sha256/"))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("wsguard client: PinSPKI %q is not a base64 SHA-256", p)
		}
		out = append(out, b)
	}
	return out, nil
}

// dial performs one handshake with a fresh credential.
func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	h := http.Header{}
	if c.cfg.Origin != "" {
		h.Set("Origin", c.cfg.Origin)
	}
	d := c.dialer
	if c.cfg.Token != nil {
		tok, err := c.cfg.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("wsguard client: token: %w", err)
		}
		h.Set("Authorization", "Bearer "+tok)
	} else if c.cfg.Session != nil {
		cookie, csrf, err := c.cfg.Session(ctx)
		if err != nil {
			return nil, fmt.Errorf("wsguard client: session: %w", err)
		}
		h.Set("Cookie", cookie)
		d.Subprotocols = []string{Subprotocol, "wsguard.csrf." + csrf}
	} else {
		t, err := c.cfg.Ticket(ctx)
		if err != nil {
			return nil, fmt.Errorf("wsguard client: ticket: %w", err)
		}
		d.Subprotocols = []string{Subprotocol, "wsguard.ticket." + t}
	}
	ws, resp, err := d.DialContext(ctx, c.cfg.URL, h)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			_ = resp.Body.Close()
			return nil, &HandshakeError{Status: resp.StatusCode, Body: strings.TrimSpace(string(body))}
		}
		return nil, err
	}
	if ws.Subprotocol() != Subprotocol {
		_ = ws.Close()
		return nil, fmt.Errorf("wsguard client: server chose subprotocol %q", ws.Subprotocol())
	}
	return ws, nil
}

func (c *Client) attach(ws *websocket.Conn) {
	c.mu.Lock()
	c.ws = ws
	c.connects++
	close(c.up)
	c.mu.Unlock()
	c.state(StateConnected)
}

func (c *Client) state(s State) {
	if c.cfg.OnState != nil {
		c.cfg.OnState(s)
	}
}

func (c *Client) report(err error) {
	if c.cfg.OnError != nil && err != nil {
		c.cfg.OnError(err)
	}
}

// run reads from ws until it drops, then reconnects and resubscribes, until
// Close or a permanent failure.
func (c *Client) run(ws *websocket.Conn) {
	// This goroutine (through read) is the only sender on msgs.
	defer close(c.msgs)
	for {
		cerr := c.read(ws)
		c.detach()
		c.state(StateDisconnected)
		if c.isDone() {
			return
		}
		if cerr != nil {
			c.report(cerr)
			if cerr.permanent() {
				c.fail(cerr)
				return
			}
		}
		c.state(StateConnecting)
		var err error
		ws, err = c.reconnect()
		if err != nil {
			if !errors.Is(err, ErrClosed) {
				c.fail(err)
			}
			return
		}
		c.attach(ws)
		go c.resubscribe()
	}
}

func (c *Client) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// detach fails every pending request and marks the client down.
func (c *Client) detach() {
	c.mu.Lock()
	c.ws = nil
	c.up = make(chan struct{})
	for id, p := range c.pending {
		close(p.ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

func (c *Client) reconnect() (*websocket.Conn, error) {
	wait := c.cfg.MinBackoff
	for attempt := 0; ; attempt++ {
		// Full jitter over [wait/2, wait): clients cut at once do not return at once.
		d := wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1)) // #nosec G404 -- reconnect jitter, not a secret
		select {
		case <-c.done:
			return nil, ErrClosed
		case <-time.After(d):
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.HandshakeTimeout)
		go func() {
			select {
			case <-c.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		ws, err := c.dial(ctx)
		cancel()
		if err == nil {
			return ws, nil
		}
		var he *HandshakeError
		if errors.As(err, &he) && he.permanent() {
			return nil, err
		}
		c.report(err)
		if c.isDone() {
			return nil, ErrClosed
		}
		wait = min(wait*2, c.cfg.MaxBackoff)
	}
}

// resubscribe restores every subscription, asking for what was missed.
func (c *Client) resubscribe() {
	c.mu.Lock()
	subs := make(map[string]uint64, len(c.subs))
	for ch, last := range c.subs {
		subs[ch] = last
	}
	c.mu.Unlock()
	for ch, last := range subs {
		since := last
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
		_, err := c.request(ctx, map[string]any{"op": "subscribe", "channel": ch, "since": since}, ch, &since)
		var e *Error
		if errors.As(err, &e) && e.Code == "forbidden" {
			// since needs the history right as well: a subscribe-only
			// credential resumes live, with a gap marker if it missed any.
			_, err = c.roundTrip(ctx, map[string]any{"op": "subscribe", "channel": ch}, pending{subscribe: ch, resumedLive: true})
		}
		cancel()
		if errors.As(err, &e) {
			// No longer allowed (a role or scope was removed): drop it.
			c.mu.Lock()
			delete(c.subs, ch)
			c.mu.Unlock()
		}
	}
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	c.shutdown()
}

func (c *Client) shutdown() {
	c.closeOnce.Do(func() { close(c.done) })
}

type frame struct {
	ID      int64           `json:"id"`
	OK      bool            `json:"ok"`
	Result  json.RawMessage `json:"result"`
	Error   *Error          `json:"error"`
	Push    string          `json:"push"`
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	From    string          `json:"from"`
	TS      time.Time       `json:"ts"`
	Data    json.RawMessage `json:"data"`
	In      int             `json:"in"`
}

// read delivers frames until the connection ends; it returns the server's
// close, if it sent one.
func (c *Client) read(ws *websocket.Conn) *CloseError {
	defer ws.Close()
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseNormalClosure {
				return &CloseError{Code: ce.Code, Reason: ce.Text}
			}
			return nil
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			continue
		}
		switch f.Push {
		case "":
			c.reply(f)
		case "message":
			c.deliver(Message{Channel: f.Channel, Offset: f.Offset, From: f.From, TS: f.TS, Data: f.Data})
		case "expiring":
			if c.cfg.Token != nil {
				go c.refresh()
			}
		}
		if c.isDone() {
			return nil
		}
	}
}

func (c *Client) reply(f frame) {
	c.mu.Lock()
	p, ok := c.pending[f.ID]
	delete(c.pending, f.ID)
	var gap bool
	if ok && p.subscribe != "" && f.Error == nil {
		var r struct {
			Offset    uint64 `json:"offset"`
			Recovered bool   `json:"recovered"`
		}
		_ = json.Unmarshal(f.Result, &r)
		switch {
		case p.since == nil:
			prev := c.subs[p.subscribe]
			c.subs[p.subscribe] = max(prev, r.Offset)
			gap = p.resumedLive && r.Offset > prev
		case !r.Recovered:
			c.subs[p.subscribe] = r.Offset
			gap = true
		}
		// Recovered: the missed messages follow as pushes and move the offset.
	}
	c.mu.Unlock()
	if gap {
		c.push(Message{Channel: p.subscribe, Gap: true})
	}
	if ok {
		p.ch <- reply{ID: f.ID, OK: f.OK, Result: f.Result, Error: f.Error}
	}
}

// deliver passes a message on once: offsets at or below the last one seen
// on its channel (a replay overlapping live delivery) are dropped.
func (c *Client) deliver(m Message) {
	c.mu.Lock()
	last, subscribed := c.subs[m.Channel]
	if !subscribed || m.Offset <= last {
		c.mu.Unlock()
		return
	}
	c.subs[m.Channel] = m.Offset
	c.mu.Unlock()
	c.push(m)
}

func (c *Client) push(m Message) {
	select {
	case c.msgs <- m:
	case <-c.done:
	}
}

func (c *Client) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
	defer cancel()
	tok, err := c.cfg.Token(ctx)
	if err != nil {
		return // the server closes at exp; the reconnect asks again
	}
	_, _ = c.request(ctx, map[string]any{"op": "refresh", "token": tok}, "", nil)
}

// request sends one request and waits for its reply.
func (c *Client) request(ctx context.Context, req map[string]any, subscribe string, since *uint64) (json.RawMessage, error) {
	return c.roundTrip(ctx, req, pending{subscribe: subscribe, since: since})
}

// roundTrip is request with the reply's bookkeeping given in p.
func (c *Client) roundTrip(ctx context.Context, req map[string]any, p pending) (json.RawMessage, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	c.mu.Lock()
	if c.isDone() {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	up := c.up
	c.mu.Unlock()
	// Wait for a connection (requests made while reconnecting go out after it).
	select {
	case <-up:
	case <-c.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	ws := c.ws
	if ws == nil {
		c.mu.Unlock()
		return nil, ErrDisconnected
	}
	c.nextID++
	id := c.nextID
	req["id"] = id
	p.ch = make(chan reply, 1)
	c.pending[id] = p
	c.mu.Unlock()
	b, err := json.Marshal(req)
	if err != nil {
		c.forget(id)
		return nil, err
	}
	c.writeMu.Lock()
	_ = ws.SetWriteDeadline(time.Now().Add(c.cfg.RequestTimeout))
	err = ws.WriteMessage(websocket.TextMessage, b)
	c.writeMu.Unlock()
	if err != nil {
		c.forget(id)
		return nil, ErrDisconnected
	}
	select {
	case r, ok := <-p.ch:
		if !ok {
			return nil, ErrDisconnected
		}
		if r.Error != nil {
			return nil, r.Error
		}
		return r.Result, nil
	case <-ctx.Done():
		c.forget(id)
		return nil, ctx.Err()
	case <-c.done:
		return nil, ErrClosed
	}
}

func (c *Client) forget(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// Subscribe joins a channel; after a reconnect the client resubscribes with
// since set to the last offset it delivered, so nothing is missed or repeated.
func (c *Client) Subscribe(ctx context.Context, channel string) error {
	c.mu.Lock()
	_, dup := c.subs[channel]
	c.mu.Unlock()
	if dup {
		return nil
	}
	_, err := c.request(ctx, map[string]any{"op": "subscribe", "channel": channel}, channel, nil)
	return err
}

// Unsubscribe leaves a channel.
func (c *Client) Unsubscribe(ctx context.Context, channel string) error {
	c.mu.Lock()
	delete(c.subs, channel)
	c.mu.Unlock()
	_, err := c.request(ctx, map[string]any{"op": "unsubscribe", "channel": channel}, "", nil)
	return err
}

// Publish sends data (any JSON value) to channel and returns its offset
// once stored. Every publish carries a cid (cid, or a random one when
// empty): when the connection drops before the answer, Publish sends it
// again with the same cid after the reconnect, until ctx (or
// RequestTimeout) ends, and the server stores it exactly once, answering
// a repeat with the first offset.
func (c *Client) Publish(ctx context.Context, channel string, data any, cid string) (uint64, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return 0, err
	}
	if cid == "" {
		cid = newCID()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	var res json.RawMessage
	for {
		req := map[string]any{"op": "publish", "channel": channel, "data": json.RawMessage(raw), "cid": cid}
		res, err = c.request(ctx, req, "", nil)
		if !errors.Is(err, ErrDisconnected) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return 0, err
	}
	var r struct {
		Offset uint64 `json:"offset"`
	}
	err = json.Unmarshal(res, &r)
	return r.Offset, err
}

// History returns up to limit messages before offset before (0: the
// latest), oldest first.
func (c *Client) History(ctx context.Context, channel string, limit int, before uint64) ([]Message, error) {
	req := map[string]any{"op": "history", "channel": channel, "limit": limit}
	if before > 0 {
		req["before"] = before
	}
	res, err := c.request(ctx, req, "", nil)
	if err != nil {
		return nil, err
	}
	var r struct {
		Messages []Message `json:"messages"`
	}
	err = json.Unmarshal(res, &r)
	return r.Messages, err
}

// Presence lists the users subscribed to channel.
func (c *Client) Presence(ctx context.Context, channel string) ([]string, error) {
	res, err := c.request(ctx, map[string]any{"op": "presence", "channel": channel}, "", nil)
	if err != nil {
		return nil, err
	}
	var r struct {
		Users []string `json:"users"`
	}
	err = json.Unmarshal(res, &r)
	return r.Users, err
}

// newCID returns a random cid: 16 bytes, base64url.
func newCID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return "go-" + base64.RawURLEncoding.EncodeToString(b[:])
}

// Messages delivers channel messages in order; it is closed when the
// client stops.
func (c *Client) Messages() <-chan Message { return c.msgs }

// Done is closed when the client has stopped (Close or permanent failure).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the client stopped: nil while running or after Close, else
// the permanent failure (a *HandshakeError for a refused credential).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Connects counts successful handshakes, the first one included.
func (c *Client) Connects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connects
}

// Close ends the connection with 1000 and stops reconnecting.
func (c *Client) Close() error {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	c.shutdown()
	if ws != nil {
		c.writeMu.Lock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.writeMu.Unlock()
		return ws.Close()
	}
	return nil
}

// TicketFetcher returns a Config.Ticket func that asks POST url (the
// server's /api/v1/tickets) for a ticket with the given headers: either
// Authorization: Bearer <JWT>, or a session Cookie with X-CSRF-Token and
// Origin. hc must verify the server like the client does.
func TicketFetcher(hc *http.Client, url string, header http.Header) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(nil))
		if err != nil {
			return "", err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var r struct {
			Ticket string `json:"ticket"`
			Error  *Error `json:"error"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&r); err != nil {
			return "", fmt.Errorf("ticket: %d: %w", resp.StatusCode, err)
		}
		if resp.StatusCode != http.StatusOK || r.Ticket == "" {
			if r.Error != nil {
				return "", fmt.Errorf("ticket: %d: %w", resp.StatusCode, r.Error)
			}
			return "", fmt.Errorf("ticket: status %d", resp.StatusCode)
		}
		return r.Ticket, nil
	}
}
