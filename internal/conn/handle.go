package conn

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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

// askBackend runs ask when a Backend is set and answers the request itself
// when the backend refuses or gives no clear answer (fail closed).
func (c *Conn) askBackend(ctx context.Context, req Request, ask func(context.Context) error) bool {
	if c.opt.Backend == nil {
		return true
	}
	err := ask(ctx)
	switch {
	case err == nil:
		return true
	case errors.Is(err, authz.ErrForbidden):
		c.fail(req.ID, CodeForbidden, req.Op+" on "+req.Channel+" refused by the application")
	default:
		c.fail(req.ID, CodeUnavailable, "the application's backend did not answer about this "+req.Op+"; retry later")
	}
	return false
}

func storeError(err error) (string, string) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, store.ErrUnavailable) {
		return CodeUnavailable, "storage unavailable, retry later"
	}
	return CodeUnavailable, "storage error, retry later"
}

// replayPage is how many messages a replay or a history answer reads from
// the store at once: with messages of up to 64 KiB, a page is at most
// 1 MiB, and a user has at most ReplayGate.Max pages in memory.
const replayPage = 16

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
	if !c.askBackend(ctx, req, func(bctx context.Context) error {
		return c.opt.Backend.Subscribe(bctx, c.User(), req.Channel)
	}) {
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
	undo := func() {
		c.mu.Lock()
		delete(c.subs, req.Channel)
		c.mu.Unlock()
		c.hub.Unsubscribe(req.Channel, c, c.User())
	}
	if req.Since != nil {
		if !c.opt.Replays.acquire(c.User()) {
			undo()
			c.failReplayCap(req.ID)
			return
		}
		defer c.opt.Replays.release(c.User())
	}

	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// In a cluster the hub knows where a channel it delivers stands, which
	// spares the shared store a query per subscribe; otherwise (one node:
	// the store answers from memory) the store says.
	latest, known := c.hub.Latest(req.Channel)
	var err error
	if !known {
		latest, err = c.store.Latest(sctx, req.Channel)
	}
	var page []store.Message
	recovered := true
	if err == nil && req.Since != nil {
		since := *req.Since
		switch {
		case since >= latest:
		case latest-since > maxReplay:
			recovered = false
		default:
			page, recovered, err = c.store.Since(sctx, req.Channel, since, replayPage)
		}
	}
	if err != nil {
		undo()
		code, msg := storeError(err)
		c.fail(req.ID, code, msg)
		return
	}
	c.send(subscribeAnswer(req.ID, latest, recovered))

	last := latest
	if req.Since != nil && recovered {
		var alive bool
		if last, alive = c.replay(ctx, req.Channel, *req.Since, latest, page); !alive {
			return
		}
	}
	c.goLive(req.Channel, s, last)
}

// goLive sends the live frames held while the subscription was catching up
// (replaying, or filling a gap), in offset order with no duplicate and no
// gap, and turns the subscription live once none is left, under c.mu, so
// Deliver never overtakes them. last is the last offset sent. A frame that
// is not the next offset is a gap (commits from several nodes may reach
// this node out of order): what is missing is read from the store first.
func (c *Conn) goLive(channel string, s *subscription, last uint64) {
	for {
		c.mu.Lock()
		if c.subs[channel] != s { // unsubscribed or closed meanwhile
			c.mu.Unlock()
			return
		}
		pending := s.pending
		s.pending, s.pendingBytes = nil, 0
		if len(pending) == 0 {
			s.last, s.recovering = last, false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		for _, f := range pending {
			if f.Offset != 0 && f.Offset > last+1 {
				var alive bool
				if last, alive = c.fillGap(channel, last, f.Offset-1); !alive {
					return
				}
			}
			if f.Offset != 0 && f.Offset <= last {
				continue // already sent: a duplicate, or read from the store
			}
			if !c.sendPaced(f.Data) {
				return
			}
			if f.Offset != 0 {
				last = f.Offset
			}
		}
	}
}

// fillGap sends from the store the messages after last, up to upTo at
// least, and returns the last offset sent; false when the connection ended
// (a store failure ends it too: the client resumes with since).
func (c *Conn) fillGap(channel string, last, upTo uint64) (uint64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	page, complete, err := c.store.Since(ctx, channel, last, replayPage)
	cancel()
	if err != nil {
		c.Close(CloseInternalError, "storage unavailable while filling a gap: reconnect with since")
		return last, false
	}
	if !complete {
		if c.opt.Hooks.Cut != nil {
			c.opt.Hooks.Cut("replay_overtaken")
		}
		c.Close(CloseRateLimited, "gap overtaken by retention: reconnect with since")
		return last, false
	}
	return c.replay(context.Background(), channel, last, upTo, page)
}

// replay sends the messages after offset last, up to latest at least,
// page by page and paced to the socket (sendPaced): memory stays bounded
// whatever the channel holds and however slowly the client reads. It
// returns the last offset sent; false when the connection ended.
func (c *Conn) replay(ctx context.Context, channel string, last, latest uint64, page []store.Message) (uint64, bool) {
	for {
		for _, m := range page {
			if m.Offset <= last {
				continue
			}
			if !c.sendPaced(hub.EncodePush(m)) {
				return last, false
			}
			last = m.Offset
		}
		if len(page) < replayPage || last >= latest {
			return last, true
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		var complete bool
		page, complete, err = c.store.Since(pctx, channel, last, replayPage)
		cancel()
		if err != nil {
			// "recovered" was already answered: end the socket so the
			// client resumes from the last offset it received.
			c.Close(CloseInternalError, "storage unavailable during replay: reconnect with since")
			return last, false
		}
		if !complete {
			// Retention pruned what this slow replay had not sent yet. The
			// answer said recovered, so a gap must not pass silently: cut,
			// and the resume with since answers recovered:false.
			if c.opt.Hooks.Cut != nil {
				c.opt.Hooks.Cut("replay_overtaken")
			}
			c.Close(CloseRateLimited, "replay overtaken by retention: reconnect with since")
			return last, false
		}
	}
}

func (c *Conn) failReplayCap(id int64) {
	c.fail(id, CodeRateLimited, fmt.Sprintf("too many replays and history requests in progress for this user (at most %d): retry when one has finished", c.opt.Replays.Max()))
}

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
	data := req.Data
	if !c.askBackend(ctx, req, func(bctx context.Context) (err error) {
		data, err = c.opt.Backend.Publish(bctx, c.User(), req.Channel, req.Data)
		return err
	}) {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := c.hub.Publish(pctx, c.User(), req.Channel, req.CID, data)
	if err != nil {
		code, msg := storeError(err)
		c.fail(req.ID, code, msg)
		return
	}
	c.ok(req.ID, map[string]any{"offset": res.Offset})
}

// history answers at most limit messages before req.Before, oldest first,
// read page by page from the newest. The answer is one frame, so it is
// kept within half the socket's byte budget: when messages are left out
// for that reason it says "more": true, and the client asks again with
// before set to the first offset it got.
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
	if !c.opt.Replays.acquire(c.User()) {
		c.failReplayCap(req.ID)
		return
	}
	defer c.opt.Replays.release(c.User())
	budget := c.opt.SendQueueBytes / 2
	var newestFirst []hub.WireMessage
	size, more, before := 0, false, req.Before
	for len(newestFirst) < limit && !more {
		n := min(replayPage, limit-len(newestFirst))
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		page, err := c.store.History(hctx, req.Channel, before, n)
		cancel()
		if err != nil {
			code, msg := storeError(err)
			c.fail(req.ID, code, msg)
			return
		}
		for i := len(page) - 1; i >= 0; i-- {
			m := page[i]
			// The encoded size, near enough: the fields, their names and quotes.
			sz := len(m.Data) + len(m.From) + len(m.Channel) + 96
			if size+sz > budget && len(newestFirst) > 0 {
				more = true
				break
			}
			size += sz
			newestFirst = append(newestFirst, hub.Wire(m))
			before = m.Offset
		}
		if len(page) < n {
			break
		}
	}
	out := make([]hub.WireMessage, len(newestFirst))
	for i, m := range newestFirst {
		out[len(out)-1-i] = m
	}
	result := map[string]any{"messages": out}
	if more {
		result["more"] = true
	}
	c.sendPaced(encodeReply(reply{ID: req.ID, OK: true, Result: result}))
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

// subscribeAnswer encodes the answer to a subscribe, byte for byte what
// encodeReply makes of {"offset": latest, "recovered": recovered}, without
// reflection: every connection's first request is a subscribe, so a crowd
// joining pays it once per user.
func subscribeAnswer(id int64, latest uint64, recovered bool) []byte {
	b := make([]byte, 0, 80)
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"ok":true,"result":{"offset":`...)
	b = strconv.AppendUint(b, latest, 10)
	b = append(b, `,"recovered":`...)
	b = strconv.AppendBool(b, recovered)
	return append(b, "}}"...)
}
