package hooks

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"time"
)

// Event is one webhook: a join or leave of a channel (a user's first
// subscription there on this node, or its last one gone), or the end of a
// connection.
type Event struct {
	Event   string `json:"event"` // "join", "leave" or "disconnect"
	ID      string `json:"id"`    // unique per event; the same on every retry (Wsguard-Delivery)
	TS      string `json:"ts"`    // RFC 3339, when it happened
	User    string `json:"user"`
	Channel string `json:"channel,omitempty"` // join, leave
	Code    int    `json:"code,omitempty"`    // disconnect: the close code
	Reason  string `json:"reason,omitempty"`  // disconnect: the close reason
}

// Queued returns the number of events waiting.
func (h *Hooks) Queued() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Emit queues e for delivery and returns at once: it never blocks on the
// backend. When the queue is full the oldest event is dropped and counted.
// With webhooks off it does nothing. ID and TS are filled in when empty.
func (h *Hooks) Emit(e Event) {
	if !h.Enabled("events") {
		return
	}
	if e.ID == "" {
		e.ID = newDeliveryID()
	}
	if e.TS == "" {
		e.TS = time.Now().UTC().Format(time.RFC3339Nano)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	if h.n == len(h.queue) {
		// Drop the oldest: the newest says most about the present.
		h.queue[h.head] = Event{}
		h.head = (h.head + 1) % len(h.queue)
		h.n--
		h.dropped.Inc()
		h.droppedN.Add(1)
	}
	h.queue[(h.head+h.n)%len(h.queue)] = e
	h.n++
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// pop takes the oldest event.
func (h *Hooks) pop() (Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return Event{}, false
	}
	e := h.queue[h.head]
	h.queue[h.head] = Event{}
	h.head = (h.head + 1) % len(h.queue)
	h.n--
	return e, true
}

// Start runs webhook delivery on one goroutine until stop is called;
// events still queued then are not sent.
func (h *Hooks) Start() (stop func()) {
	if !h.Enabled("events") {
		return func() {}
	}
	go h.deliverLoop()
	return func() {
		h.mu.Lock()
		already := h.closed
		h.closed = true
		h.mu.Unlock()
		if !already {
			close(h.stop)
			<-h.done
		}
	}
}

func (h *Hooks) deliverLoop() {
	defer close(h.done)
	for {
		e, ok := h.pop()
		if !ok {
			select {
			case <-h.wake:
				continue
			case <-h.stop:
				return
			}
		}
		if !h.deliver(e) {
			return
		}
	}
}

// deliver sends e until the backend answers 2xx or the attempts run out,
// waiting Backoff, then twice as long each time (at most 30 s), with
// jitter so that many nodes do not retry in step. It returns false when
// stopped.
func (h *Hooks) deliver(e Event) bool {
	body, _ := json.Marshal(e)
	wait := h.o.Backoff
	for attempt := 1; ; attempt++ {
		if h.sendOnce(e, body) {
			h.webhooks.WithLabelValues("delivered").Inc()
			return true
		}
		if attempt >= h.o.Attempts {
			h.webhooks.WithLabelValues("failed").Inc()
			h.log.Warn("webhook given up", "event", e.Event, "id", e.ID, "attempts", attempt)
			return true
		}
		h.webhooks.WithLabelValues("retry").Inc()
		// #nosec G404 -- jitter, not a secret
		d := wait/2 + time.Duration(rand.Int64N(int64(wait)))
		select {
		case <-time.After(d):
		case <-h.stop:
			return false
		}
		wait = min(wait*2, 30*time.Second)
	}
}

func (h *Hooks) sendOnce(e Event, body []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), h.o.Timeout)
	defer cancel()
	// A stop during the request ends it rather than wait for the timeout.
	go func() {
		select {
		case <-h.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	resp, err := h.post(ctx, h.o.Events, e.Event, e.ID, body)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}
