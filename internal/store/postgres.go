package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wsguard/wsguard/internal/clock"
)

//go:embed pgmigrations/*.sql
var pgMigrationFS embed.FS

// migrationLockKey is the pg_advisory_lock key that serialises schema
// migrations between nodes starting together ("wsguard" in ASCII).
const migrationLockKey int64 = 0x77736775617264

// PostgresOptions tunes OpenPostgres. The zero value is valid.
type PostgresOptions struct {
	// Clock stamps messages, sessions and keys and decides ticket expiry
	// and the dedupe window. Zero means the wall clock.
	Clock clock.Clock
	// OnCommit is the first value of the commit callback (see Log.OnCommit).
	// Zero means no callback.
	OnCommit func([]Message)
	// MaxBatch is the most publishes this node commits in one transaction.
	// Zero means 256.
	MaxBatch int
	// DedupeWindow is how long a (From, CID) pair is remembered, across
	// nodes. Zero means 24 hours.
	DedupeWindow time.Duration
	// Retention, when set, gives each channel's retention (see
	// SQLiteOptions.Retention). Nil keeps everything.
	Retention func(channel string) Retention
	// PruneInterval is how often this node's retention sweep runs. Zero
	// means one minute.
	PruneInterval time.Duration
	// OnCommitDuration, when set, is told how long each commit transaction
	// took. Zero means not measured.
	OnCommitDuration func(time.Duration)
	// Sealer seals TOTP secrets at rest (see SQLiteOptions.Sealer). Every
	// node sharing the database must use the same key.
	Sealer Sealer
	// OnMigrate, when set, is told of each schema migration just before it
	// is applied. Zero means not told.
	OnMigrate func(from, to int, name string)
	// MaxConns caps the pool's connections to the database. Zero means 16.
	MaxConns int32
	// CommitTimeout bounds one batch's transaction (and one sweep pass):
	// a database that stops answering without closing the connection
	// fails the batch with ErrUnavailable instead of holding every
	// publisher and Close. Zero means 10 s.
	CommitTimeout time.Duration
}

// Postgres is the Store that several nodes share: one PostgreSQL database
// reached through a pgx pool. Offsets are assigned in the database, in the
// transaction that stores the messages, so they stay gap-free per channel
// whichever node publishes; each node still group-commits its own
// publishes (one transaction for many).
type Postgres struct {
	pool *pgxpool.Pool
	opts PostgresOptions
	clk  clock.Clock

	onCommit atomic.Pointer[func([]Message)]

	// mu guards closed and the send side of reqs (as in SQLite).
	mu     sync.RWMutex
	closed bool
	reqs   chan *pubReq
	done   chan struct{}

	// Owned by the committer goroutine.
	sweepAfter string
}

var _ Store = (*Postgres)(nil)

// OpenPostgres connects to the database at url (postgres://...), applies
// the embedded migrations under an advisory lock, so that nodes starting
// together migrate once, and starts the publish committer. The database
// must exist; a server that cannot reach it at start refuses to start.
func OpenPostgres(ctx context.Context, url string, opts PostgresOptions) (*Postgres, error) {
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
	if opts.MaxConns <= 0 {
		opts.MaxConns = 16
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 10 * time.Second
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included: say only what is wrong.
		return nil, errors.New("store: open postgres: the store URL does not parse (want postgres://USER@HOST:5432/DB?sslmode=...)")
	}
	cfg.MaxConns = opts.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	s := &Postgres{pool: pool, opts: opts, clk: opts.Clock,
		reqs: make(chan *pubReq, opts.MaxBatch), done: make(chan struct{})}
	s.OnCommit(opts.OnCommit)
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	go s.committer()
	return s, nil
}

// migrate applies every embedded migration newer than schema_version,
// holding a session-level advisory lock on one connection the whole time:
// a second node starting at once waits, then finds nothing left to do.
func (s *Postgres) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("migrate: advisory lock: %w", err)
	}
	defer func() {
		// A lost connection releases the lock by itself.
		_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLockKey)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := fs.Glob(pgMigrationFS, "pgmigrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "pgmigrations/")
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return fmt.Errorf("migrate: bad migration name %q", base)
		}
		body, err := pgMigrationFS.ReadFile(name)
		if err != nil {
			return fmt.Errorf("migrate %q: %w", base, err)
		}
		if err := pgApplyMigration(ctx, conn.Conn(), version, base, string(body), s.opts.OnMigrate); err != nil {
			return fmt.Errorf("migrate %q: %w", base, err)
		}
	}
	return nil
}

func pgApplyMigration(ctx context.Context, conn *pgx.Conn, version int, name, body string, onMigrate func(from, to int, name string)) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	var current int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return err
	}
	if version <= current {
		return nil
	}
	if onMigrate != nil {
		onMigrate(current, version, name)
	}
	if _, err := tx.Exec(ctx, body); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, version); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// SchemaVersion reports the applied schema version.
func (s *Postgres) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, pgErr("schema version", err)
	}
	return v, nil
}

// OnCommit sets the commit callback (see Log.OnCommit). Only this node's
// commits are told.
func (s *Postgres) OnCommit(fn func([]Message)) {
	if fn == nil {
		s.onCommit.Store(nil)
		return
	}
	s.onCommit.Store(&fn)
}

// Ping reports whether the store can serve: the committer runs and the
// database answers a query.
func (s *Postgres) Ping(ctx context.Context) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return fmt.Errorf("store: ping: %w: closed", ErrUnavailable)
	}
	var one int
	if err := s.pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		return pgErr("ping", err)
	}
	return nil
}

// Close stops accepting publishes, commits (or fails) every publish
// already queued, waits for the committer and closes the pool. It is safe
// to call twice.
func (s *Postgres) Close() error {
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
	s.pool.Close()
	return nil
}

// pgErr wraps a database failure so callers can tell "try later"
// (ErrUnavailable) from a verdict (ErrNotFound, ErrExists).
func pgErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) || errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("store: %s: %w", op, ErrExists)
		case "23503": // foreign_key_violation
			return fmt.Errorf("store: %s: %w", op, ErrNotFound)
		}
	}
	return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
}

// pgAffectedOne turns "no row changed" into ErrNotFound.
func pgAffectedOne(tag pgconn.CommandTag, op string) error {
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	return nil
}
