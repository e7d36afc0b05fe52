package store

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/wsguard/wsguard/internal/atrest"
	"github.com/wsguard/wsguard/internal/clock"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Limits and defaults of the SQLite store.
const (
	// MaxLimit caps how many messages one Since or History call returns, so
	// a client cannot make the server read a whole channel into memory.
	MaxLimit = 1000

	defaultMaxBatch     = 256
	defaultDedupeWindow = 24 * time.Hour
	defaultBusyTimeout  = 5 * time.Second
)

// SQLiteOptions tunes OpenSQLite. The zero value is valid.
type SQLiteOptions struct {
	// Clock stamps messages, sessions and keys and decides ticket expiry.
	// Zero means the wall clock.
	Clock clock.Clock
	// OnCommit is the first value of the commit callback (see Log.OnCommit,
	// which may replace it): called on the committer goroutine after each
	// successful publish commit with the newly stored (non-duplicate)
	// messages in offset order, before the waiting Publish calls return.
	// The server hands them to the broker there, so live delivery follows
	// the log's order. Zero means no callback.
	OnCommit func([]Message)
	// MaxBatch is the most publishes committed in one transaction. Zero means 256.
	MaxBatch int
	// DedupeWindow is how long a (From, CID) pair is remembered; older pairs
	// may be forgotten, bounding the table a flood of unique cids can grow.
	// Zero means 24 hours.
	DedupeWindow time.Duration
	// Retention, when set, gives each channel's retention (the server maps
	// a channel's namespace to its history_size and history_ttl). Messages
	// over the size are deleted at commit; a sweep every PruneInterval
	// deletes those past their age and catches up on size, a bounded
	// amount per pass. Nil keeps everything.
	Retention func(channel string) Retention
	// PruneInterval is how often the retention sweep runs. Zero means one
	// minute.
	PruneInterval time.Duration
	// OtherWriters says that another process may publish into the same
	// file. A server owns its SQLite database, so Latest is answered from
	// memory once known; with OtherWriters it always reads the database.
	OtherWriters bool
	// BusyTimeout is how long a write waits for a lock held by another
	// connection or process before failing with ErrUnavailable. Zero means 5 s.
	BusyTimeout time.Duration
	// OnCommitDuration, when set, is told how long each commit transaction
	// took, failed ones included (the store_commit_seconds metric). It runs
	// on the committer goroutine and must be quick. Zero means not measured.
	OnCommitDuration func(time.Duration)
	// Sealer encrypts TOTP secrets before they are written and opens them
	// when read, so a copy of the database file alone does not give them
	// away. Zero means they are stored in clear (tests); the server and the
	// CLI always set it.
	Sealer Sealer
	// OnMigrate, when set, is told of each schema migration just before it
	// is applied (from the version the database is at, to the one the
	// migration makes), so a start that changes the schema says so. Zero
	// means not told.
	OnMigrate func(from, to int, name string)
}

// SQLite is the embedded Store (modernc.org/sqlite, no cgo): WAL journal,
// synchronous=FULL so an acknowledged publish is on disk, foreign keys on.
type SQLite struct {
	db   *sql.DB
	opts SQLiteOptions
	clk  clock.Clock

	// mu guards closed and the send side of reqs: Publish holds it shared
	// while enqueueing, Close holds it exclusively to close reqs.
	mu     sync.RWMutex
	closed bool
	reqs   chan *pubReq
	done   chan struct{} // closed when the committer has exited

	// onCommit is the commit callback (Log.OnCommit); read by the committer.
	onCommit atomic.Pointer[func([]Message)]

	// Owned by the committer goroutine.
	wconn      *sql.Conn
	lastPrune  time.Time
	sweepAfter string // the retention sweep resumes after this channel

	latest latestCache // each channel's last offset, for Latest
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating if needed) the database at path, applies the
// embedded migrations and starts the publish committer.
func OpenSQLite(path string, opts SQLiteOptions) (*SQLite, error) {
	if path == "" || strings.ContainsAny(path, "?") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("store: open sqlite: invalid path %q", path)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = defaultMaxBatch
	}
	if opts.DedupeWindow <= 0 {
		opts.DedupeWindow = defaultDedupeWindow
	}
	if opts.PruneInterval <= 0 {
		opts.PruneInterval = defaultPruneInterval
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = defaultBusyTimeout
	}
	// SQLite creates -wal and -shm with the database file's mode, so
	// creating that file 0600 first keeps all three owner-only whatever
	// the umask; files left looser by an earlier version are tightened.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		create := atrest.Tighten
		if p == path {
			create = atrest.CreateFile
		}
		if _, err := create(p); err != nil {
			return nil, fmt.Errorf("store: open sqlite %q: %w", path, err)
		}
	}
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_foreign_keys", "1")
	q.Set("_txlock", "immediate") // writers take the lock up front: no deadlocking upgrades
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %q: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	s := &SQLite{
		db:   db,
		opts: opts,
		clk:  opts.Clock,
		reqs: make(chan *pubReq, opts.MaxBatch),
		done: make(chan struct{}),
	}
	s.OnCommit(opts.OnCommit)
	ctx := context.Background()
	if err := s.checkPragmas(ctx); err != nil {
		_ = db.Close() // the open error is the one to report
		return nil, fmt.Errorf("store: open sqlite %q: %w", path, err)
	}
	if err := migrate(ctx, db, opts.OnMigrate); err != nil {
		_ = db.Close() // the open error is the one to report
		return nil, fmt.Errorf("store: open sqlite %q: %w", path, err)
	}
	go s.committer()
	return s, nil
}

// checkPragmas verifies the durability settings took effect, so a driver
// change cannot silently weaken what an acknowledgement means.
func (s *SQLite) checkPragmas(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	var syncMode, fk int
	if err := s.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil {
		return err
	}
	if syncMode < 2 {
		return fmt.Errorf("synchronous is %d, want 2 (full)", syncMode)
	}
	if err := s.db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return err
	}
	if fk != 1 {
		return errors.New("foreign_keys is off")
	}
	return nil
}

// migrate applies every embedded migration newer than schema_version, each
// in its own transaction, in file-name order (NNNN_name.sql).
func migrate(ctx context.Context, db *sql.DB, onMigrate func(from, to int, name string)) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return fmt.Errorf("migrate: bad migration name %q", base)
		}
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return fmt.Errorf("migrate %q: %w", base, err)
		}
		if err := applyMigration(ctx, db, version, base, string(body), onMigrate); err != nil {
			return fmt.Errorf("migrate %q: %w", base, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, version int, name, body string, onMigrate func(from, to int, name string)) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return err
	}
	if version <= current {
		return nil
	}
	if onMigrate != nil {
		onMigrate(current, version, name)
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, version); err != nil {
		return err
	}
	return tx.Commit()
}

// OnCommit sets the commit callback (see Log.OnCommit).
func (s *SQLite) OnCommit(fn func([]Message)) {
	if fn == nil {
		s.onCommit.Store(nil)
		return
	}
	s.onCommit.Store(&fn)
}

// SchemaVersion reports the applied schema version.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	if err != nil {
		return 0, dbErr("schema version", err)
	}
	return v, nil
}

// Ping reports whether the store can serve: the committer runs and the
// database answers a query.
func (s *SQLite) Ping(ctx context.Context) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return fmt.Errorf("store: ping: %w: closed", ErrUnavailable)
	}
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1 FROM schema_version LIMIT 1`).Scan(&one); err != nil {
		return dbErr("ping", err)
	}
	return nil
}

// Close stops accepting publishes, commits every publish already queued,
// waits for the committer and closes the database. It is safe to call twice.
func (s *SQLite) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.mu.Unlock()
	<-s.done
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// dbErr wraps a database failure so callers can tell "try later"
// (ErrUnavailable) from a verdict (ErrNotFound, ErrExists).
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) || errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("store: %s: %w", op, ErrExists)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("store: %s: %w", op, ErrNotFound)
		}
	}
	return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
}

// timeLayout is RFC 3339 with nine fixed fraction digits in UTC: full
// precision, and text order is time order.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// fmtTime stores times as RFC 3339 with nanoseconds in UTC.
func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

func encodeList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func decodeList(s string) []string {
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil || len(v) == 0 {
		return nil
	}
	return v
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func clampLimit(limit int) int {
	if limit <= 0 || limit > MaxLimit {
		return MaxLimit
	}
	return limit
}

// unixNanos converts t for INTEGER columns the database compares, clamped
// to what int64 nanoseconds can hold (years 1678 to 2262).
func unixNanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func timeFromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }
