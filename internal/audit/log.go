package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	// Logger receives write errors and chain breaks (never event
	// contents). Zero means slog.Default().
	Logger *slog.Logger
	// KeyFile holds the key of the chain's MACs; it is made (mode 0600)
	// on first use. Whoever can read it can rewrite the log undetected:
	// keep it where those who may edit the log cannot read it. Zero means
	// "audit.key" beside the log.
	KeyFile string
	// Heads keeps the chain's signed head apart from the log; the server
	// and the CLI pass their store. Zero means none: then lines cut off
	// the end of the log, or the log replaced by an older copy, go
	// unnoticed.
	Heads Heads
	// OnError is called after each failed write, outside the log's lock;
	// wire it to a metric. Zero means none.
	OnError func()
	// OnBreak is called each time the log is found not to match its key
	// or head and a new segment is started; wire it to a metric. It runs
	// under the log's lock and must not call Record. Zero means none.
	OnBreak func()
}

// maxLine bounds one line, for Verify and for reading the tail. A record
// written by Record stays far below it (see redact.go).
const maxLine = 1 << 20

// headTimeout bounds each read or save of the signed head.
const headTimeout = 5 * time.Second

var errClosed = errors.New("audit log is closed")

// Log appends MAC-chained events to a file. A nil *Log, like Nop(),
// discards events.
type Log struct {
	path    string
	key     []byte
	chain   string // chainID(key)
	heads   Heads  // nil: no head kept
	clock   clock.Clock
	log     *slog.Logger
	onError func()
	onBreak func()
	discard bool
	errs    atomic.Uint64

	mu   sync.Mutex
	lock *os.File // path + ".lock", flocked by every writer around every change
	f    *os.File
	size int64  // bytes of complete lines in f; -1 before the first check
	seq  uint64 // seq of the last line, 0 in an empty log
	mac  string // MAC of the last line, or chainStart
	last []byte // the last line, to notice it edited in place
	head Head   // the head as this Log last read or saved it
}

// Nop returns a Log that discards every event (for tests and embedding).
func Nop() *Log { return &Log{discard: true} }

// Open opens or creates the log at path (mode 0600, its directory 0700 if
// missing), reads or makes the key, and checks the end of the log against
// the key and the signed head before continuing the chain.
//
// A log that does not match (lines cut off or edited at the end, a MAC
// that does not verify, a different chain) is never continued: it is moved
// aside to path.broken-TIME, a new chain starts whose first line, an
// "audit.chain_broken" event, says what was found, and the break is logged
// at error level and reported to Options.OnBreak.
//
// A final line without its newline is the trace of a write torn by a crash:
// a whole record gets its newline back, a fragment is cut off and an
// "audit.torn_tail" event records how many bytes were dropped.
func Open(path string, opts Options) (*Log, error) {
	if path == "" {
		return nil, errors.New("audit: no file given")
	}
	l := &Log{path: path, heads: opts.Heads, clock: opts.Clock, log: opts.Logger,
		onError: opts.OnError, onBreak: opts.OnBreak, size: -1, mac: chainStart}
	if l.clock == nil {
		l.clock = clock.Real{}
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	keyFile := opts.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(filepath.Dir(path), "audit.key")
	}
	for _, dir := range []string{filepath.Dir(path), filepath.Dir(keyFile)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600) // #nosec G304 -- beside the operator's audit.file
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l.lock = lock
	if err := l.open(keyFile); err != nil {
		_ = l.Close() // the open error is the one to report
		return nil, fmt.Errorf("audit: %q: %w", path, err)
	}
	return l, nil
}

func (l *Log) open(keyFile string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	unlock, err := lockFile(l.lock)
	if err != nil {
		return err
	}
	defer unlock()
	key, created, err := loadOrCreateKey(keyFile)
	if err != nil {
		return err
	}
	if created {
		l.log.Info("audit key created; keep it out of reach of whoever may edit the log", "key_file", keyFile)
	} else if st, err := os.Stat(keyFile); err == nil && st.Mode().Perm()&0o077 != 0 {
		l.log.Warn("audit key file is readable by others; whoever reads it can rewrite the log undetected", "key_file", keyFile, "mode", st.Mode().Perm().String())
	}
	l.key, l.chain = key, chainID(key)
	if l.f, err = openFile(l.path); err != nil {
		return err
	}
	return l.catchUp()
}

func openFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600) // #nosec G304 -- the operator's audit.file setting
}

// Record appends e as one line and fsyncs. It never fails loudly: errors
// are counted, logged and reported to Options.OnError.
func (l *Log) Record(e Event) {
	if l == nil || l.discard {
		return
	}
	if err := l.write(e); err != nil {
		l.errs.Add(1)
		l.log.Error("audit write failed", "event_type", clean(e.Type), "err", err)
		if l.onError != nil {
			l.onError()
		}
	}
}

func (l *Log) write(e Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errClosed
	}
	// The CLI (user disable, session revoke, ...) appends to the same file
	// as a running server. An exclusive lock around each append, and
	// picking up the chain where the other process left it, keep one chain.
	unlock, err := lockFile(l.lock)
	if err != nil {
		return err
	}
	defer unlock()
	if err := l.catchUp(); err != nil {
		return err
	}
	return l.append(e)
}

// catchUp brings l level with the file and the head as another process,
// or an attacker, may have left them. When neither changed since this Log
// last wrote, that costs two stats, a read of the last line and a head
// read; otherwise the tail is
// checked against the key and the head, and a new segment is started if it
// no longer matches. Called with l.mu and the file lock held.
func (l *Log) catchUp() error {
	replaced, err := l.reopenIfReplaced()
	if err != nil {
		return err
	}
	st, err := l.f.Stat()
	if err != nil {
		return err
	}
	unchanged := !replaced && st.Size() == l.size && l.lastLineIntact()
	head, err := l.loadHead()
	if err != nil {
		if unchanged {
			// The store is down and the file is as we left it: write,
			// and let the head catch up on a later save.
			return nil
		}
		return err
	}
	if unchanged && head == l.head {
		return nil
	}
	brk, dropped, err := l.resume(st.Size(), head)
	switch {
	case err != nil:
		return err
	case brk != nil:
		return l.startSegment(*brk)
	case dropped > 0:
		l.log.Warn("audit log ended in a torn write; fragment removed", "file", l.path, "bytes", dropped)
		return l.append(Event{Type: "audit.torn_tail", Reason: "incomplete_final_line",
			Fields: map[string]string{"dropped_bytes": fmt.Sprint(dropped)}})
	}
	return nil
}

// reopenIfReplaced reopens the path when the file there is no longer the
// one l has open: another process set it aside and started a new segment,
// or someone moved or deleted it.
func (l *Log) reopenIfReplaced() (bool, error) {
	have, err := l.f.Stat()
	if err != nil {
		return false, err
	}
	there, err := os.Stat(l.path)
	if err == nil && os.SameFile(have, there) {
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	f, err := openFile(l.path)
	if err != nil {
		return false, err
	}
	_ = l.f.Close() // nothing of ours is unsynced in it
	l.f = f
	return true, nil
}

// startSegment moves the log aside and starts a new chain whose first line
// records why. Lines that failed their check are never continued or
// rewritten: they stay, as found, in the file moved aside.
func (l *Log) startSegment(b chainBreak) error {
	aside, err := l.moveAside(".broken-")
	if err != nil {
		return err
	}
	l.log.Error("audit log does not match its key or signed head: not continued; a new chain was started",
		"file", l.path, "moved_to", aside, "reason", b.reason, "detail", b.detail)
	if l.onBreak != nil {
		l.onBreak()
	}
	fields := map[string]string{"detail": b.detail, "head_seq": fmt.Sprint(b.headSeq)}
	if aside != "" {
		fields["moved_to"] = filepath.Base(aside)
	}
	return l.append(Event{Type: "audit.chain_broken", Reason: b.reason, Fields: fields})
}

// Rotate moves the log aside to FILE.TIME and starts a new chain whose
// first line, an "audit.rotated" event, names that file and the seq and
// MAC of its last line, linking the two. Other processes writing the log
// follow to the new file. It returns the file moved aside ("" when the log
// was empty and nothing moved).
func (l *Log) Rotate() (string, error) {
	if l == nil || l.discard {
		return "", nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return "", errClosed
	}
	unlock, err := lockFile(l.lock)
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := l.catchUp(); err != nil {
		return "", err
	}
	if l.size == 0 {
		return "", nil
	}
	lastSeq, lastMAC := l.seq, l.mac
	aside, err := l.moveAside(".")
	if err != nil {
		return "", err
	}
	return aside, l.append(Event{Type: "audit.rotated", Fields: map[string]string{
		"moved_to": filepath.Base(aside), "prev_seq": fmt.Sprint(lastSeq), "prev_mac": lastMAC}})
}

// moveAside renames a non-empty log to path+infix+TIME, opens a new empty
// file in its place and resets the chain; an empty log stays where it is.
func (l *Log) moveAside(infix string) (string, error) {
	st, err := l.f.Stat()
	if err != nil {
		return "", err
	}
	aside := ""
	if st.Size() > 0 {
		aside = l.path + infix + l.clock.Now().UTC().Format("20060102T150405.000000000Z")
		if err := os.Rename(l.path, aside); err != nil {
			return "", fmt.Errorf("move the log aside: %w", err)
		}
		f, err := openFile(l.path)
		if err != nil {
			return "", err
		}
		_ = l.f.Close() // renamed, and nothing of ours is unsynced in it
		l.f = f
	}
	l.size, l.seq, l.mac, l.last = 0, 0, chainStart, nil
	return aside, nil
}

// append writes e as the next line, fsyncs it, then saves the new head.
// The head is saved only once the line is durable, so it never names a
// line a crash could lose.
func (l *Log) append(e Event) error {
	rec := record{
		Seq:    l.seq + 1,
		TS:     l.clock.Now().UTC().Format(time.RFC3339Nano),
		Type:   clean(e.Type),
		Reason: clean(e.Reason),
		IP:     clean(e.IP),
		User:   clean(e.User),
		Fields: redactFields(e.Fields),
	}
	line, mac, err := seal(l.key, l.mac, rec)
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
	l.seq, l.mac, l.last = rec.Seq, mac, line
	if err := l.f.Sync(); err != nil {
		return err // the line is in the file; the chain moves on, the head waits
	}
	return l.saveHead()
}

// lastLineIntact reports whether the file still ends with the line l
// wrote or read last: an edit in place that keeps the size shows here.
func (l *Log) lastLineIntact() bool {
	if len(l.last) == 0 {
		return l.size == 0
	}
	want := append(bytes.Clone(l.last), '\n')
	got := make([]byte, len(want))
	_, err := l.f.ReadAt(got, l.size-int64(len(want)))
	return err == nil && bytes.Equal(got, want)
}

func (l *Log) loadHead() (Head, error) {
	if l.heads == nil {
		return Head{}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), headTimeout)
	defer cancel()
	return LoadHead(ctx, l.heads, l.key)
}

func (l *Log) saveHead() error {
	if l.heads == nil {
		return nil
	}
	h := signHead(l.key, l.seq, l.mac)
	ctx, cancel := context.WithTimeout(context.Background(), headTimeout)
	defer cancel()
	if err := l.heads.SetAuditHead(ctx, l.chain, h.Seq, h.Sig); err != nil {
		return fmt.Errorf("save audit head (the log runs ahead of it until a later save): %w", err)
	}
	l.head = h
	return nil
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
	var err error
	if l.f != nil {
		err = errors.Join(l.f.Sync(), l.f.Close())
		l.f = nil
	}
	if l.lock != nil {
		err = errors.Join(err, l.lock.Close())
		l.lock = nil
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}
