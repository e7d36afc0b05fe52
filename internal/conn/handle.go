package conn

import (
	"context"
	"errors"
	"time"

	"github.com/wsguard/wsguard/internal/authz"
	"github.com/wsguard/wsguard/internal/hub"
	"github.com/wsguard/wsguard/internal/store"
)

// handle runs one request on the read goroutine, so a client's requests are
// answered in the order it sent them.
func (c *Conn) handle(ctx context.Context, req Request) {
	switch req.Op {
	case "ping":
		c.ok(req.ID, nil)
	case "subscribe":
		c.subscribe(ctx, req)
	case "unsubscribe":
		c.unsubscribe(req)
	case "publish":
		c.publish(ctx, req)
	case "history":
		c.history(ctx, req)
	case "presence":
		c.presence(req)
	case "refresh":
		c.refresh(ctx, req)
	}
}

func (c *Conn) ok(id int64, result any) {
	c.send(encodeReply(reply{ID: id, OK: true, Result: result}))
}

func (c *Conn) fail(id int64, code, msg string) {
	c.send(encodeReply(reply{ID: id, Error: &ErrorBody{Code: code, Message: msg}}))
}

// authorize parses the channel and checks the action; it answers the
// request itself on failure.
func (c *Conn) authorize(req Request, a authz.Action) (authz.Channel, bool) {
	ch, err := authz.ParseChannel(req.Channel)
	if err != nil {
		c.fail(req.ID, CodeBadRequest, err.Error())
		if c.opt.Hooks.BadFrame != nil {
			c.opt.Hooks.BadFrame(c.opt.IP)
		}
		return ch, false
	}
	if err := c.rules.Allow(c.opt.Principal, a, ch); err != nil {
		c.fail(req.ID, CodeForbidden, string(a)+" not allowed on "+req.Channel)
		return ch, false
	}
	return ch, true
}

func storeError(err error) (string, string) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, store.ErrUnavailable) {
		return CodeUnavailable, "storage unavailable, retry later"
	}
	return CodeUnavailable, "storage error, retry later"
}

func (c *Conn) subscribe(ctx context.Context, req Request) {
	ch, ok := c.authorize(req, authz.Subscribe)
	if !ok {
		return
	}
	// since replays the channel's past, so it needs the history right as
	// well: a subscribe-only credential must not read what history refuses.
	if req.Since != nil && c.rules.Allow(c.opt.Principal, authz.History, ch) != nil {
		c.fail(req.ID, CodeForbidden, "history not allowed on "+req.Channel+": subscribe with since replays history, so it needs the history right (subscribe without since instead)")
		return
	}
	// Presence pushes say who joins and leaves: only for those who may ask.
	seesPresence := c.rules.Allow(c.opt.Principal, authz.Presence, ch) == nil
	c.mu.Lock()
	if _, dup := c.subs[req.Channel]; dup {
		c.mu.Unlock()
		c.fail(req.ID, CodeBadRequest, "already subscribed to "+req.Channel)
		return
	}
	if len(c.subs) >= 256 {
		c.mu.Unlock()
		c.fail(req.ID, CodeBadRequest, "at most 256 subscriptions per connection")
		return
	}
	// Subscribe first, buffering live frames, then read the store: nothing
	// committed in between can be missed, and duplicates are dropped by offset.
	s := &subscription{recovering: true}
	c.subs[req.Channel] = s
	c.mu.Unlock()
	c.hub.Subscribe(req.Channel, c, c.User(), seesPresence)

	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	latest, err := c.store.Latest(sctx, req.Channel)
	var replay []store.Message
	recovered := true
	if err == nil && req.Since != nil {
		since := *req.Since
		switch {
		case since >= latest:
		case latest-since > maxReplay:
			recovered = false
		default:
			var complete bool
			replay, complete, err = c.store.Since(sctx, req.Channel, since, maxReplay)
			recovered = complete
			if !complete {
				replay = nil
			}
		}
	}
	if err != nil {
		c.mu.Lock()
		delete(c.subs, req.Channel)
		c.mu.Unlock()
		c.hub.Unsubscribe(req.Channel, c, c.User())
		code, msg := storeError(err)
		c.fail(req.ID, code, msg)
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs[req.Channel] != s { // unsubscribed or closed meanwhile
		return
	}
	c.sendLocked(encodeReply(reply{ID: req.ID, OK: true, Result: map[string]any{"offset": latest, "recovered": recovered}}))
	s.last = latest
	if req.Since != nil && recovered {
		s.last = *req.Since
		for _, m := range replay {
			if m.Offset > s.last {
				c.sendReplay(hub.EncodePush(m))
				s.last = m.Offset
			}
		}
	}
	for _, f := range s.pending {
		if f.Offset == 0 || f.Offset > s.last {
			c.sendReplay(f.Data)
			if f.Offset != 0 {
				s.last = f.Offset
			}
		}
	}
	s.pending, s.recovering = nil, false
}

// sendLocked is send for callers holding c.mu; send never takes c.mu.
func (c *Conn) sendLocked(b []byte) { c.send(b) }

func (c *Conn) unsubscribe(req Request) {
	if _, err := authz.ParseChannel(req.Channel); err != nil {
		c.fail(req.ID, CodeBadRequest, err.Error())
		return
	}
	c.mu.Lock()
	_, ok := c.subs[req.Channel]
	delete(c.subs, req.Channel)
	c.mu.Unlock()
	if !ok {
		c.fail(req.ID, CodeNotFound, "not subscribed to "+req.Channel)
		return
	}
	c.hub.Unsubscribe(req.Channel, c, c.User())
	c.ok(req.ID, nil)
}

func (c *Conn) publish(ctx context.Context, req Request) {
	if _, ok := c.authorize(req, authz.Action("publish")); !ok {
		return
	}
	if len(req.Data) == 0 || string(req.Data) == "null" {
		c.fail(req.ID, CodeBadRequest, "publish needs data")
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := c.hub.Publish(pctx, c.User(), req.Channel, req.CID, req.Data)
	if err != nil {
		code, msg := storeError(err)
		c.fail(req.ID, code, msg)
		return
	}
	c.ok(req.ID, map[string]any{"offset": res.Offset})
}

func (c *Conn) history(ctx context.Context, req Request) {
	if _, ok := c.authorize(req, authz.Action("history")); !ok {
		return
	}
	limit := req.Limit
	switch {
	case limit <= 0:
		limit = defaultHistoryPage
	case limit > maxHistoryLimit:
		limit = maxHistoryLimit
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msgs, err := c.store.History(hctx, req.Channel, req.Before, limit)
	if err != nil {
		code, msg := storeError(err)
		c.fail(req.ID, code, msg)
		return
	}
	out := make([]hub.WireMessage, len(msgs))
	for i, m := range msgs {
		out[i] = hub.Wire(m)
	}
	c.ok(req.ID, map[string]any{"messages": out})
}

func (c *Conn) presence(req Request) {
	if _, ok := c.authorize(req, authz.Action("presence")); !ok {
		return
	}
	c.ok(req.ID, map[string]any{"users": c.hub.Members(req.Channel)})
}

func (c *Conn) refresh(ctx context.Context, req Request) {
	if c.opt.Refresh == nil {
		c.fail(req.ID, CodeBadRequest, "this connection's credential cannot be refreshed")
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	exp, err := c.opt.Refresh(rctx, req.Token)
	if err != nil {
		c.fail(req.ID, CodeForbidden, "token refused")
		return
	}
	c.mu.Lock()
	c.expires = exp
	c.expiryGen++
	gen := c.expiryGen
	c.mu.Unlock()
	c.armExpiry(exp, gen)
	c.ok(req.ID, map[string]any{"expires": exp.UTC().Format(time.RFC3339)})
}
