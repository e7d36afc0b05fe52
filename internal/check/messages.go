package check

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

const (
	textMessage   = websocket.TextMessage
	sizeProbe     = 1 << 20 // WS-SIZE: one message of 1 MiB
	inflatedProbe = 4 << 20 // WS-DEFLATE: what the compressed message inflates to
	rateProbe     = 200     // WS-RATE: messages sent within one second
)

// probe opens a socket, sends payload as one message of type typ, then the
// probe message, and says whether the server went on serving the socket:
// it answered after the payload (an endpoint that answers the probe
// message), or kept the socket open for the wait (one that does not).
func (s *scan) probe(ctx context.Context, hs handshake, typ int, payload []byte, what string) outcome {
	if s.msgClose != "" { // the endpoint refuses even the probe message
		return skipped("%s", s.msgClose)
	}
	k, resp, err := s.dial(ctx, "", hs)
	if errors.Is(err, errBudget) {
		return skipped("%v", err)
	}
	if !upgraded(resp, err) {
		return skipped("the handshake for this check failed: %s", answer(resp, err))
	}
	defer k.close()
	if hs.compress && resp.Header.Get("Sec-WebSocket-Extensions") == "" {
		return passed("permessage-deflate was offered and not accepted")
	}
	if hs.compress {
		_ = k.ws.SetCompressionLevel(9)
	}
	if err := k.send(typ, payload); err != nil {
		if errors.Is(err, errBudget) {
			return skipped("%v", err)
		}
		// Refused only if the server closed the socket; a write that
		// merely timed out tells nothing.
		if v := k.wait(ctx, 0, s.opt.StepTimeout); v.closed != "" {
			return passed("sending %s was cut short: %s", what, v.closed)
		}
		return skipped("sending %s failed: %v", what, err)
	}
	// The probe message after the payload: an endpoint that answers it
	// shows it still serves the socket.
	if err := k.send(textMessage, []byte(s.opt.Message)); err != nil && !errors.Is(err, errBudget) {
		if v := k.wait(ctx, 0, s.opt.StepTimeout); v.closed != "" {
			return passed("sent %s; the socket was closed: %s", what, v.closed)
		}
		return skipped("sent %s, then the probe message failed without a close: %v", what, err)
	}
	if s.replies {
		v := k.wait(ctx, 1, s.opt.StepTimeout)
		switch {
		case v.closed != "":
			return passed("sent %s -> %s", what, v.closed)
		case v.replies == 0:
			return skipped("sent %s: no answer and no close within %s, though the endpoint answers the probe message otherwise", what, s.opt.StepTimeout)
		}
		// An answer may be an error reply followed by a close: give it a moment.
		if w := k.wait(ctx, 0, 300*time.Millisecond); w.closed != "" {
			return passed("sent %s -> %s", what, w.closed)
		}
		return found("sent %s -> the endpoint answered (%s) and kept the socket open", what, v.texts[0])
	}
	v := k.wait(ctx, 0, 2*time.Second)
	if v.closed != "" {
		return passed("sent %s -> %s", what, v.closed)
	}
	return found("sent %s -> the socket stayed open for 2 s (the endpoint sends no answers, so one that silently drops the message looks the same)", what)
}

func (s *scan) checkSize(ctx context.Context) outcome {
	// One frame: a write buffer as large as the message.
	return s.probe(ctx, handshake{origin: s.origin, writeBuf: sizeProbe + 64}, textMessage,
		bytes.Repeat([]byte("a"), sizeProbe), "one 1 MiB text message")
}

func (s *scan) checkUTF8(ctx context.Context) outcome {
	return s.probe(ctx, handshake{origin: s.origin}, textMessage,
		[]byte("wsguard check \xff\xfe not UTF-8"), "a text message with invalid UTF-8 (bytes ff fe)")
}

// checkDeflate offers permessage-deflate and sends one message of 4 MiB
// of one repeated byte, which deflate shrinks to a few KiB on the wire.
func (s *scan) checkDeflate(ctx context.Context) outcome {
	return s.probe(ctx, handshake{origin: s.origin, compress: true, writeBuf: 64 << 10}, textMessage,
		bytes.Repeat([]byte("a"), inflatedProbe), "one compressed message of about 4 KiB that inflates to 4 MiB")
}

// checkRate sends 200 probe messages spread over one second. It is
// limited when the server closes the socket, answers fewer than all of
// them, or says so in an answer (rate, limit, too many, slow down).
func (s *scan) checkRate(ctx context.Context) outcome {
	if s.msgClose != "" { // the endpoint refuses even the probe message
		return skipped("%s", s.msgClose)
	}
	k, resp, err := s.dial(ctx, "", handshake{origin: s.origin})
	if errors.Is(err, errBudget) {
		return skipped("%v", err)
	}
	if !upgraded(resp, err) {
		return skipped("the handshake for this check failed: %s", answer(resp, err))
	}
	defer k.close()
	// Read while writing, so that answers never hold up the writes.
	type tally struct {
		replies int
		closed  string
		refusal string // an answer that says the sender is too fast
	}
	result := make(chan tally, 1)
	stop := make(chan int, 1) // the number of messages sent; buffered, as the reader may have ended
	go func() {
		var t tally
		var timeout <-chan time.Time
		sent := -1
		for {
			select {
			case e := <-k.events:
				if e.err != nil {
					t.closed = closeText(e.err)
					result <- t
					return
				}
				t.replies++
				if t.refusal == "" && saysTooFast(e.data) {
					t.refusal = clipN(string(e.data), 80)
				}
			case sent = <-stop:
				timeout = time.After(s.opt.StepTimeout)
			case <-timeout:
				result <- t
				return
			}
			if sent >= 0 && (!s.replies || t.replies >= sent) {
				if !s.replies { // nothing to wait for but a close
					w := k.wait(ctx, 0, 2*time.Second)
					t.closed = w.closed
				}
				result <- t
				return
			}
		}
	}()
	// Evenly spread, catching up after a late tick (a busy machine), so
	// that all 200 leave within the second.
	sent := 0
	tick := time.NewTicker(time.Second / rateProbe)
	defer tick.Stop()
	start := time.Now()
	var sendErr error
send:
	for sent < rateProbe {
		<-tick.C
		due := min(rateProbe, int(time.Since(start)*rateProbe/time.Second)+1)
		for ; sent < due; sent++ {
			if sendErr = k.send(textMessage, []byte(s.opt.Message)); sendErr != nil {
				break send
			}
		}
	}
	stop <- sent
	v := <-result
	if errors.Is(sendErr, errBudget) {
		return skipped("%v after %d messages", sendErr, sent)
	}
	switch {
	case v.refusal != "":
		return passed("sent %d messages in 1 s; an answer says %s", sent, v.refusal)
	case v.closed != "":
		return passed("sent %d of %d messages in 1 s -> %s", sent, rateProbe, v.closed)
	case sendErr != nil:
		return skipped("sent %d of %d messages in 1 s, then the write failed without a close: %v", sent, rateProbe, sendErr)
	case s.replies && v.replies < sent:
		return passed("sent %d messages in 1 s -> %d answers", sent, v.replies)
	case s.replies:
		return found("sent %d messages in 1 s -> %d answers, none refusing, and the socket stayed open", sent, v.replies)
	}
	return found("sent %d messages in 1 s -> the socket stayed open (the endpoint sends no answers, so one that silently drops them looks the same)", sent)
}

// saysTooFast spots an answer that refuses for speed, in any protocol's words.
func saysTooFast(b []byte) bool {
	l := strings.ToLower(string(b))
	for _, w := range []string{"rate", "limit", "too many", "slow down"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// checkIdle holds a connection open and silent (no messages, no pongs)
// for Options.IdleWait; one the server has not closed by then is the
// finding. Only with Options.Slow.
func (s *scan) checkIdle(ctx context.Context) outcome {
	if !s.opt.Slow {
		return skipped("takes %s: run with --slow", s.opt.IdleWait)
	}
	k, resp, err := s.dial(ctx, "", handshake{origin: s.origin, silent: true})
	if errors.Is(err, errBudget) {
		return skipped("%v", err)
	}
	if !upgraded(resp, err) {
		return skipped("the handshake for this check failed: %s", answer(resp, err))
	}
	defer k.close()
	start := time.Now()
	for time.Since(start) < s.opt.IdleWait {
		v := k.wait(ctx, 0, s.opt.IdleWait-time.Since(start))
		if v.closed != "" {
			return passed("a silent socket was closed after %s: %s", time.Since(start).Round(time.Second), v.closed)
		}
		if ctx.Err() != nil {
			return skipped("interrupted after %s", time.Since(start).Round(time.Second))
		}
	}
	return found("a socket that sent nothing, not even pongs, was still open after %s", s.opt.IdleWait)
}
