package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsguard/wsguard/internal/clock"
)

// Options configure a Log. The zero value is ready to use.
type Options struct {
	// Clock stamps records. Zero means the wall clock.
	Clock clock.Clock
	// Logger receives write errors (never event contents). Zero means
	// slog.Default().
	Logger *slog.Logger
	// OnError is called after each failed write, outside the log's lock;
	// wire it to a metric. Zero means none.
	OnError func()
}

// record is one line on disk. Field order is the line's key order.
type record struct {
	Seq    uint64            `json:"seq"`
	TS     string            `json:"ts"`
	Type   string            `json:"type"`
	Reason string            `json:"reason,omitempty"`
	IP     string            `json:"ip,omitempty"`
	User   string            `json:"user,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
	Prev   string            `json:"prev"`
}

// chainStart is the prev of the first line.
const chainStart = "0000000000000000000000000000000000000000000000000000000000000000"

// maxLine bounds one line, for Verify and for reading the tail on Open. A
// record written by Record stays far below it (see redact.go).
const maxLine = 1 << 20

var errClosed = errors.New("audit log is closed")

// Log appends hash-chained events to a file. A nil *Log, like Nop(),
// discards events.
type Log struct {
	clock   clock.Clock
	log     *slog.Logger
	onError func()
	discard bool
	errs    atomic.Uint64

	mu   sync.Mutex
	f    *os.File
	size int64  // bytes of complete lines in f
	seq  uint64 // seq of the last line
	prev string // hex SHA-256 of the last line
}

// Nop returns a Log that discards every event (for tests and embedding).
func Nop() *Log { return &Log{discard: true} }

// Open opens or creates the log at path (mode 0600, its directory 0700 if
// missing) and continues the chain from its last line.
//
// A final line without its newline is the trace of a write torn by a crash.
// If it is a complete record that continues the chain, the newline is added;
// otherwise the fragment is cut off and an "audit.torn_tail" event records
// how many bytes were dropped. Open refuses a log whose last complete line
// is not a record: run Verify, and move the file aside to start a new chain.
func Open(path string, opts Options) (*Log, error) {
	l := &Log{clock: opts.Clock, log: opts.Logger, onError: opts.OnError, prev: chainStart}
	if l.clock == nil {
		l.clock = clock.Real{}
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	if path == "" {
		return nil, errors.New("audit: no file given")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600) // #nosec G304 -- the operator's audit.file setting
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l.f = f
	dropped, err := l.resume()
	if err != nil {
		_ = f.Close() // the resume error is the one to report
		return nil, fmt.Errorf("audit: %q: %w", path, err)
	}
	if dropped > 0 {
		l.log.Warn("audit log ended in a torn write; fragment removed", "file", path, "bytes", dropped)
		l.Record(Event{Type: "audit.torn_tail", Reason: "incomplete_final_line",
			Fields: map[string]string{"dropped_bytes": fmt.Sprint(dropped)}})
	}
	return l, nil
}

// resume reads the tail of l.f and sets size, seq and prev from its last
// complete line, repairing a torn final write. It reports how many bytes of
// a torn fragment it removed.
func (l *Log) resume() (dropped int, err error) {
	st, err := l.f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if size == 0 {
		return 0, nil
	}
	tail, err := readTail(l.f, size)
	if err != nil {
		return 0, err
	}
	// tail ends at EOF and starts at a line start (or the file start).
	var torn []byte
	if tail[len(tail)-1] != '\n' {
		i := bytes.LastIndexByte(tail, '\n')
		torn = tail[i+1:]
		tail = tail[:i+1]
	}
	complete := size - int64(len(torn))
	if len(tail) > 0 {
		last := tail[:len(tail)-1]
		if i := bytes.LastIndexByte(last, '\n'); i >= 0 {
			last = last[i+1:]
		}
		rec, err := parseLine(last)
		if err != nil {
			return 0, fmt.Errorf("last line is not an audit record (run wsguard audit verify; move the file aside to start a new chain): %w", err)
		}
		l.seq, l.prev = rec.Seq, hashLine(last)
	}
	if len(torn) > 0 {
		if rec, err := parseLine(torn); err == nil && rec.Seq == l.seq+1 && rec.Prev == l.prev {
			// The record was written whole; only its newline is missing.
			if _, err := l.f.Write([]byte{'\n'}); err != nil {
				return 0, err
			}
			l.seq, l.prev = rec.Seq, hashLine(torn)
			l.size = size + 1
			return 0, l.f.Sync()
		}
		if err := l.f.Truncate(complete); err != nil {
			return 0, err
		}
		if err := l.f.Sync(); err != nil {
			return 0, err
		}
	}
	l.size = complete
	return len(torn), nil
}

// readTail returns the end of f from the start of its last complete line
// (plus any torn fragment after it).
func readTail(f *os.File, size int64) ([]byte, error) {
	const chunk = 64 << 10
	var buf []byte
	for pos := size; pos > 0; {
		n := min(int64(chunk), pos)
		pos -= n
		b := make([]byte, n, int64(len(buf))+n)
		if _, err := f.ReadAt(b, pos); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		buf = append(b, buf...)
		// Enough once a newline precedes the last complete line.
		body := buf
		if body[len(body)-1] == '\n' {
			body = body[:len(body)-1]
		} else if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
			body = body[:i]
		} else {
			body = nil
		}
		if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
			return buf[i+1:], nil
		}
		if len(buf) > 2*maxLine {
			return nil, fmt.Errorf("last line longer than %d bytes", maxLine)
		}
	}
	return buf, nil
}

// Record appends e as one line and fsyncs. It never fails loudly: errors
// are counted, logged and reported to Options.OnError.
func (l *Log) Record(e Event) {
	if l == nil || l.discard {
		return
	}
	now := l.clock.Now()
	if err := l.write(e, now); err != nil {
		l.errs.Add(1)
		l.log.Error("audit write failed", "event_type", clean(e.Type), "err", err)
		if l.onError != nil {
			l.onError()
		}
	}
}

func (l *Log) write(e Event, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errClosed
	}
	// The CLI (user disable, session revoke, ...) appends to the same file
	// as a running server. An exclusive lock around each append, and
	// picking up the chain where the other process left it, keep one chain.
	unlock, err := lockFile(l.f)
	if err != nil {
		return err
	}
	defer unlock()
	if st, err := l.f.Stat(); err != nil {
		return err
	} else if st.Size() != l.size {
		if _, err := l.resume(); err != nil {
			return err
		}
	}
	rec := record{
		Seq:    l.seq + 1,
		TS:     now.UTC().Format(time.RFC3339Nano),
		Type:   clean(e.Type),
		Reason: clean(e.Reason),
		IP:     clean(e.IP),
		User:   clean(e.User),
		Fields: redactFields(e.Fields),
		Prev:   l.prev,
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	n, err := l.f.Write(append(line, '\n'))
	if err != nil {
		if n > 0 {
			// Cut the partial line so the next record does not follow
			// a fragment.
			if terr := l.f.Truncate(l.size); terr != nil {
				err = errors.Join(err, terr)
			}
		}
		return err
	}
	l.size += int64(n)
	l.seq, l.prev = rec.Seq, hashLine(line)
	// The line is in the file even if fsync fails; the chain moves on.
	return l.f.Sync()
}

// Errors reports how many records failed to be written durably.
func (l *Log) Errors() uint64 {
	if l == nil {
		return 0
	}
	return l.errs.Load()
}

// Close flushes and closes the file. Records after Close count as errors.
func (l *Log) Close() error {
	if l == nil || l.discard {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := errors.Join(l.f.Sync(), l.f.Close())
	l.f = nil
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

func hashLine(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}
