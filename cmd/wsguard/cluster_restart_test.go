package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard/internal/broker/brokertest"
	"github.com/wsguard/wsguard/internal/store/pgtest"
)

// The restart test runs three nodes on a Redis and a PostgreSQL of its
// own (never the machine's shared ones, which other packages' tests use at
// the same time), restarts each under traffic, and checks that the cluster
// recovers by itself with nothing acknowledged lost.

const restartChannel = "room:restarts"

// phases of TestClusterSurvivesRestarts, in order; a publish's answer is
// counted in the phase during which it arrived.
const (
	phaseBefore = iota
	phaseRedisDown
	phaseRedisBack
	phasePostgresDown
	phasePostgresBack
	phaseCount
)

var phaseNames = [phaseCount]string{"before", "Redis down", "Redis back", "PostgreSQL down", "PostgreSQL back"}

// restartPublisher publishes one message at a time on one socket and
// keeps every answer.
type restartPublisher struct {
	node string
	ws   *websocket.Conn

	mu      sync.Mutex
	acks    [phaseCount][]uint64 // offsets acknowledged, by phase
	refused [phaseCount][]string // error codes of refused publishes, by phase
	err     error                // why it stopped early (socket closed, an answer that never came)
}

func (p *restartPublisher) counts(phase int) (acked, refused int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acks[phase]), len(p.refused[phase])
}

// run publishes until stop is closed, max publishes were sent or the
// socket fails. Each answer is awaited at most 10 s: a publish that hangs
// is a failure, not a wait.
func (p *restartPublisher) run(stop <-chan struct{}, phase *atomic.Int32, max int) {
	for k := 1; k <= max; k++ {
		select {
		case <-stop:
			return
		case <-time.After(40 * time.Millisecond):
		}
		msg, _ := json.Marshal(map[string]any{"id": k, "op": "publish", "channel": restartChannel,
			"cid": fmt.Sprintf("%s-%d", strings.ReplaceAll(p.node, " ", ""), k), "data": map[string]any{"text": fmt.Sprintf("%s #%d", p.node, k)}})
		_ = p.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := p.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
			p.stop(fmt.Errorf("publish %d: %w", k, err))
			return
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_ = p.ws.SetReadDeadline(deadline)
			_, raw, err := p.ws.ReadMessage()
			if err != nil {
				p.stop(fmt.Errorf("waiting for the answer to publish %d (%s): %w", k, phaseNames[phase.Load()], err))
				return
			}
			var f frame
			if err := json.Unmarshal(raw, &f); err != nil {
				p.stop(fmt.Errorf("frame %s: %w", raw, err))
				return
			}
			if f.Push != "" || f.ID != k {
				continue
			}
			ph := phase.Load()
			var a struct {
				Offset uint64 `json:"offset"`
			}
			p.mu.Lock()
			switch {
			case f.OK && json.Unmarshal(f.Result, &a) == nil && a.Offset > 0:
				p.acks[ph] = append(p.acks[ph], a.Offset)
			case !f.OK && f.Error != nil:
				p.refused[ph] = append(p.refused[ph], f.Error.Code)
			default:
				p.mu.Unlock()
				p.stop(fmt.Errorf("publish %d: answer %s", k, raw))
				return
			}
			p.mu.Unlock()
			break
		}
	}
}

func (p *restartPublisher) stop(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

// restartSubscriber reads a subscribed socket's pushes of the channel.
type restartSubscriber struct {
	node  string
	ws    *websocket.Conn
	after uint64 // the channel's offset when it subscribed

	mu      sync.Mutex
	offsets []uint64
	err     error
}

func (s *restartSubscriber) run(deadline time.Time) {
	for {
		_ = s.ws.SetReadDeadline(deadline)
		_, raw, err := s.ws.ReadMessage()
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		var f frame
		if err := json.Unmarshal(raw, &f); err != nil {
			s.mu.Lock()
			s.err = fmt.Errorf("frame %s: %w", raw, err)
			s.mu.Unlock()
			return
		}
		if f.Push == "message" && f.Channel == restartChannel {
			s.mu.Lock()
			s.offsets = append(s.offsets, f.Offset)
			s.mu.Unlock()
		}
	}
}

func (s *restartSubscriber) received() ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.offsets...), s.err
}

// TestClusterSurvivesRestarts: while sockets on two nodes publish into one
// channel and a subscriber on each of the three nodes reads it, Redis is
// killed and started again, then PostgreSQL is stopped and started again,
// and no node is restarted. During the Redis outage publishes are still
// acknowledged and new sockets still open (the cluster-wide limits fall
// back to each node's own); during the PostgreSQL outage publishes are
// refused with `unavailable` on sockets that stay open and new handshakes
// get 503. Afterwards every node is ready again by itself, history on
// every node holds each acknowledged offset with no gap, and every
// subscriber has received the whole channel in offset order, once each.
func TestClusterSurvivesRestarts(t *testing.T) {
	rs := brokertest.StartRedis(t)
	pg := pgtest.NewServer(t)
	c := newClusterOn(t, 3, pg.NewDatabase(t), rs.URL())
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	for _, u := range []string{"pub", "sub", "late", "reader"} {
		c.cli(t, n1, clusterPassword+"\n", "user", "add", u, "--password-stdin")
	}
	for _, nd := range c.nodes {
		c.start(t, nd)
	}
	testStart := time.Now()
	hc := &http.Client{Timeout: 3 * time.Second}
	// status is the HTTP status of path on nd's admin listener, 0 when it
	// does not answer.
	status := func(nd *clusterNode, path string) int {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d%s", nd.admin, path))
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	// allReady waits until every node's /readyz answers want.
	allReady := func(want int, why string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for _, nd := range c.nodes {
			for status(nd, "/readyz") != want {
				if time.Now().After(deadline) {
					t.Fatalf("%s: /readyz not %d within 30 s %s", nd.name, want, why)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}

	// A subscriber on every node, all of one user.
	sb := c.newBrowser(t)
	sb.signIn(n1, "sub")
	subDeadline := time.Now().Add(3 * time.Minute)
	var subs []*restartSubscriber
	for _, nd := range c.nodes {
		ws := sb.session(nd)
		f := request(t, ws, map[string]any{"id": 1, "op": "subscribe", "channel": restartChannel})
		var r struct {
			Offset uint64 `json:"offset"`
		}
		if err := json.Unmarshal(f.Result, &r); err != nil || r.Offset != 0 {
			t.Fatalf("%s: subscribe answer %s", nd.name, f.Result)
		}
		s := &restartSubscriber{node: nd.name + " subscriber", ws: ws}
		subs = append(subs, s)
		go s.run(subDeadline)
	}

	// Publishers on nodes 1 and 2, one message every 40 ms each, at most
	// 400 each: the channel keeps 1000 in history, so history holds all.
	pb := c.newBrowser(t)
	pb.signIn(n2, "pub")
	var phase atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var pubs []*restartPublisher
	for _, nd := range []*clusterNode{n1, n2} {
		p := &restartPublisher{node: nd.name, ws: pb.session(nd)}
		pubs = append(pubs, p)
		wg.Add(1)
		go func() { defer wg.Done(); p.run(stop, &phase, 400) }()
	}
	stopped := false
	stopPublishing := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopPublishing()
	// await waits until every publisher has had at least acked
	// acknowledgements and refused refusals in the current phase, and
	// says how long that took.
	await := func(acked, refused int) time.Duration {
		t.Helper()
		ph := int(phase.Load())
		start := time.Now()
		deadline := start.Add(30 * time.Second)
		for {
			done := true
			for _, p := range pubs {
				a, r := p.counts(ph)
				p.mu.Lock()
				err := p.err
				p.mu.Unlock()
				if err != nil {
					t.Fatalf("%s publisher (%s): %v", p.node, phaseNames[ph], err)
				}
				done = done && a >= acked && r >= refused
			}
			if done {
				return time.Since(start)
			}
			if time.Now().After(deadline) {
				for _, p := range pubs {
					a, r := p.counts(ph)
					t.Logf("%s publisher: %d acknowledged, %d refused", p.node, a, r)
				}
				t.Fatalf("%s: publishers did not reach %d acknowledged and %d refused within 30 s", phaseNames[ph], acked, refused)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	mark := func(ph int) time.Time {
		phase.Store(int32(ph))
		t.Logf("%6s %s", time.Since(testStart).Round(time.Millisecond), phaseNames[ph])
		return time.Now()
	}
	await(10, 0)

	// Redis killed: nodes report not ready, publishes are still stored and
	// acknowledged, and a new socket still signs in, opens, publishes and
	// subscribes, promptly (the limits decide on each node alone).
	mark(phaseRedisDown)
	rs.Stop()
	allReady(http.StatusServiceUnavailable, "with Redis down")
	// Not a speed test: the bounds below are far above what a loaded CI
	// machine takes and below what the defect they guard costs (every
	// limit waiting out the 500 ms Redis timeout on each call: 25
	// publishes then take at least 12.5 s; a handshake, a publish and a
	// subscribe at least 3 s).
	if d := await(25, 0); d > 10*time.Second {
		t.Errorf("with Redis down, 25 publishes per socket took %v: the limits wait on the missing Redis", d)
	}
	lb := c.newBrowser(t)
	lb.signIn(n3, "late")
	opened := time.Now()
	late := lb.session(n3)
	f := request(t, late, map[string]any{"id": 1, "op": "publish", "channel": restartChannel, "data": map[string]any{"text": "late"}})
	var lateAck struct {
		Offset uint64 `json:"offset"`
	}
	if err := json.Unmarshal(f.Result, &lateAck); err != nil || lateAck.Offset == 0 {
		t.Fatalf("publish on a socket opened with Redis down: answer %s", f.Result)
	}
	// A channel no node listened to before: node 3 asks Redis for it while
	// Redis is gone, and must have it once Redis is back.
	request(t, late, map[string]any{"id": 2, "op": "subscribe", "channel": "room:late"})
	if d := time.Since(opened); d > 2500*time.Millisecond {
		t.Errorf("with Redis down, handshake, publish and subscribe took %v: the limits wait on the missing Redis", d)
	}
	t.Logf("with Redis down, handshake, publish and subscribe took %v", time.Since(opened).Round(time.Millisecond))

	var missed uint64 // the last offset acknowledged while Redis was down
	for _, p := range pubs {
		p.mu.Lock()
		for _, off := range p.acks[phaseRedisDown] {
			missed = max(missed, off)
		}
		p.mu.Unlock()
	}
	missed = max(missed, lateAck.Offset)
	rs.Start()
	back := mark(phaseRedisBack)
	allReady(http.StatusOK, "after Redis came back")
	// Every subscriber, on the node that did not publish at all too, soon
	// has what was published while Redis was down (by the node's resync,
	// or by the gap the next message reveals, whichever comes first).
	for _, s := range subs {
		for {
			offs, err := s.received()
			if err != nil {
				t.Fatalf("%s after Redis came back: %v", s.node, err)
			}
			if len(offs) > 0 && offs[len(offs)-1] >= missed {
				break
			}
			if time.Since(back) > 15*time.Second {
				t.Fatalf("%s: 15 s after Redis came back, has %d pushes, not offset %d published while it was down", s.node, len(offs), missed)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("every subscriber had what was published with Redis down %v after it came back", time.Since(back).Round(time.Millisecond))
	await(10, 0)
	// A publish on node 1 reaches the socket that subscribed on node 3
	// during the outage.
	rb := c.newBrowser(t)
	rb.signIn(n1, "reader")
	rws := rb.session(n1)
	request(t, rws, map[string]any{"id": 1, "op": "publish", "channel": "room:late", "data": map[string]any{"text": "after Redis"}})
	_ = rws.Close()
	_ = late.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, raw, err := late.ReadMessage()
		if err != nil {
			t.Fatalf("node 3, a channel subscribed during the Redis outage: no push of a publish on node 1 after it: %v", err)
		}
		var f frame
		if json.Unmarshal(raw, &f) == nil && f.Push == "message" && f.Channel == "room:late" {
			break
		}
	}

	// PostgreSQL stopped: nodes report not ready, publishes are refused
	// with unavailable on sockets that stay open, a new handshake gets 503.
	mark(phasePostgresDown)
	pg.Stop()
	allReady(http.StatusServiceUnavailable, "with PostgreSQL down")
	await(0, 3)
	// On an open socket, subscribe and history answer unavailable, and the
	// socket stays open.
	for i, op := range []string{"subscribe", "history"} {
		f := ask(t, late, map[string]any{"id": 10 + i, "op": op, "channel": "room:late2"})
		if f.OK || f.Error == nil || f.Error.Code != "unavailable" {
			t.Fatalf("%s with PostgreSQL down: ok %v, error %+v; want unavailable", op, f.OK, f.Error)
		}
	}
	if _, st, err := pb.dial(n3, n3.base, true, "wsguard.csrf."+pb.csrf); err == nil || st != http.StatusServiceUnavailable {
		t.Fatalf("a handshake with PostgreSQL down: HTTP %d (%v), want 503", st, err)
	}

	pg.Start()
	back = mark(phasePostgresBack)
	allReady(http.StatusOK, "after PostgreSQL came back")
	t.Logf("all nodes ready %v after PostgreSQL took connections again", time.Since(back).Round(time.Millisecond))
	await(10, 0)
	stopPublishing()

	// No node exited, nor logged a panic.
	for _, nd := range c.nodes {
		select {
		case <-nd.done:
			t.Fatalf("%s exited during the outages:\n%s", nd.name, nd.log.String())
		default:
		}
		if l := nd.log.String(); strings.Contains(l, "panic") {
			t.Fatalf("%s logged a panic:\n%s", nd.name, l)
		}
		// The outage is told once, not once per retry or per publish.
		if n := strings.Count(nd.log.String(), "redis broker link lost"); n != 1 {
			t.Errorf("%s logged the Redis link lost %d times, want once", nd.name, n)
		}
		for _, line := range strings.Split(nd.log.String(), "\n") {
			if strings.HasPrefix(line, "redis: ") || strings.Contains(line, "broker publish failed") {
				t.Errorf("%s logged, during the Redis outage: %s", nd.name, line)
				break
			}
		}
		if st := status(nd, "/healthz"); st != http.StatusOK {
			t.Fatalf("%s: /healthz %d after the outages", nd.name, st)
		}
	}

	// Every acknowledgement is one offset; refusals are all unavailable,
	// and only while PostgreSQL was down or coming back.
	acked := map[uint64]string{lateAck.Offset: "the late socket"}
	for _, p := range pubs {
		if p.err != nil {
			t.Fatalf("%s publisher: %v", p.node, p.err)
		}
		for ph := range phaseCount {
			for _, off := range p.acks[ph] {
				if other, dup := acked[off]; dup {
					t.Fatalf("offset %d acknowledged to %s and to %s", off, other, p.node)
				}
				acked[off] = p.node
			}
			for _, code := range p.refused[ph] {
				if code != "unavailable" || (ph != phasePostgresDown && ph != phasePostgresBack) {
					t.Fatalf("%s publisher: a publish refused with %q while %s", p.node, code, phaseNames[ph])
				}
			}
			t.Logf("%s publisher, %s: %d acknowledged, %d refused", p.node, phaseNames[ph], len(p.acks[ph]), len(p.refused[ph]))
		}
	}

	// History on every node: gap-free from 1, every acknowledged offset in it.
	var latest uint64
	for _, nd := range c.nodes {
		ws := rb.session(nd)
		f := request(t, ws, map[string]any{"id": 1, "op": "history", "channel": restartChannel, "limit": 1000})
		_ = ws.Close()
		var h struct {
			Messages []struct {
				Offset uint64 `json:"offset"`
			} `json:"messages"`
			More bool `json:"more"`
		}
		if err := json.Unmarshal(f.Result, &h); err != nil || h.More {
			t.Fatalf("%s: history answer (more: %v): %v", nd.name, h.More, err)
		}
		have := map[uint64]bool{}
		for i, m := range h.Messages {
			if m.Offset != uint64(i+1) {
				t.Fatalf("%s: history not gap-free from 1: position %d has offset %d", nd.name, i, m.Offset)
			}
			have[m.Offset] = true
		}
		for off, who := range acked {
			if !have[off] {
				t.Fatalf("%s: offset %d acknowledged to %s is not in history (%d messages)", nd.name, off, who, len(have))
			}
		}
		if latest != 0 && uint64(len(h.Messages)) != latest {
			t.Fatalf("%s: history has %d messages, another node's %d", nd.name, len(h.Messages), latest)
		}
		latest = uint64(len(h.Messages))
	}
	t.Logf("%d messages stored, %d acknowledged", latest, len(acked))

	// Every subscriber catches up to the whole channel: 1..latest in order,
	// none twice, on a socket that stayed open.
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range subs {
		for {
			offs, err := s.received()
			for i, off := range offs {
				if off != s.after+uint64(i+1) {
					t.Fatalf("%s: push %d has offset %d, want %d (order, gap or duplicate)", s.node, i, off, s.after+uint64(i+1))
				}
			}
			if err != nil {
				t.Fatalf("%s, after %d pushes: %v", s.node, len(offs), err)
			}
			if s.after+uint64(len(offs)) == latest {
				break
			}
			if s.after+uint64(len(offs)) > latest {
				t.Fatalf("%s received up to offset %d, history ends at %d", s.node, s.after+uint64(len(offs)), latest)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s has offsets up to %d of %d 30 s after the outages", s.node, s.after+uint64(len(offs)), latest)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, s := range subs {
		_ = s.ws.Close()
	}
	// The publishers' sockets stayed open through both outages.
	for _, p := range pubs {
		msg, _ := json.Marshal(map[string]any{"id": 9999, "op": "history", "channel": restartChannel, "limit": 1})
		_ = p.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := p.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
			t.Fatalf("%s publisher socket after the outages: %v", p.node, err)
		}
		_ = p.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := p.ws.ReadMessage(); err != nil {
			t.Fatalf("%s publisher socket after the outages: %v", p.node, err)
		}
	}
}

// ask sends one request on ws and returns its answer, whether ok or an
// error, skipping pushes; at most 10 s.
func ask(t *testing.T, ws *websocket.Conn, v map[string]any) frame {
	t.Helper()
	b, _ := json.Marshal(v)
	_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for the answer to %s: %v", b, err)
		}
		var f frame
		if err := json.Unmarshal(msg, &f); err != nil {
			t.Fatalf("frame %s: %v", msg, err)
		}
		if f.Push == "" && f.ID == v["id"] {
			return f
		}
	}
}
