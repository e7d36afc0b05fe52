package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// How the publisher reaches the server. Both servers are driven the same
// way in each mode, so a ratio between them compares servers, not
// publishers.
const (
	// PublishHTTP calls each server's HTTP service API, one call at a
	// time: the call returns once the server has taken the message
	// (wsguard: stored durably; Centrifugo: in its memory history).
	PublishHTTP = "http"
	// PublishSocket sends publish commands on a client socket of its own,
	// without waiting for each answer; a reader checks the answers. It is
	// how a chat client publishes, and the cheapest way in for a single
	// publisher on both servers (no HTTP request per message).
	PublishSocket = "socket"
)

// socketPublisher publishes over ws: frame renders message i, and onFrame
// sees every frame the server sends back (Centrifugo's driver answers its
// pings there). A refused publish is returned by the next call.
func socketPublisher(ctx context.Context, ws wsConn, frame func(i int, data []byte) []byte, onFrame func([]byte)) func(context.Context, int, []byte) error {
	var (
		mu      sync.Mutex
		refused error
	)
	go func() {
		for {
			b, err := ws.read(ctx)
			if err != nil {
				return
			}
			onFrame(b)
			for _, line := range bytes.Split(b, []byte("\n")) {
				if !bytes.HasPrefix(line, []byte(`{"push"`)) && bytes.Contains(line, []byte(`"error"`)) {
					mu.Lock()
					if refused == nil {
						refused = fmt.Errorf("publish refused: %s", line)
					}
					mu.Unlock()
				}
			}
		}
	}()
	context.AfterFunc(ctx, ws.close)
	return func(ctx context.Context, i int, data []byte) error {
		mu.Lock()
		err := refused
		mu.Unlock()
		if err != nil {
			return err
		}
		return ws.write(ctx, frame(i, data))
	}
}

// apiCall makes one service API call and checks its answer.
func apiCall(ctx context.Context, c *http.Client, url, body string, h http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK || bytes.Contains(b, []byte(`"error"`)) {
		return fmt.Errorf("publish answered %d: %s", resp.StatusCode, b)
	}
	return nil
}

// minter signs the connection JWTs of the bench's users (HS256), as an
// app's backend signs its users' tokens. Signing one costs the load client
// a few microseconds, so every subscriber can be a user of its own.
type minter struct {
	secret           []byte
	kid              string // "" for none
	issuer, audience string // "" to leave the claim out
}

func (m *minter) mint(user string) (string, error) {
	now := time.Now()
	// Valid for longer than any run (--timeout), so no socket is closed
	// or asked to refresh its token mid-measurement.
	claims := jwt.MapClaims{"sub": user, "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix()}
	if m.issuer != "" {
		claims["iss"] = m.issuer
	}
	if m.audience != "" {
		claims["aud"] = m.audience
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	if m.kid != "" {
		tok.Header["kid"] = m.kid
	}
	return tok.SignedString(m.secret)
}
