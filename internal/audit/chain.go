package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// chainStart stands for the MAC of the line before the first one.
const chainStart = "0000000000000000000000000000000000000000000000000000000000000000"

// record is one line on disk. Field order is the line's key order; MAC is
// last and empty while the MAC is computed.
type record struct {
	Seq    uint64            `json:"seq"`
	TS     string            `json:"ts"`
	Type   string            `json:"type"`
	Reason string            `json:"reason,omitempty"`
	IP     string            `json:"ip,omitempty"`
	User   string            `json:"user,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
	MAC    string            `json:"mac,omitempty"`
}

// seal sets rec.MAC to HMAC-SHA256(key, prev MAC, newline, the record
// without its MAC) and returns the line. Each MAC covering the one before
// makes an edited, removed or reordered line break the chain at that line,
// and without the key no one can write a chain that verifies.
func seal(key []byte, prev string, rec record) (line []byte, mac string, err error) {
	rec.MAC = ""
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, "", err
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte(prev + "\n"))
	h.Write(body)
	rec.MAC = hex.EncodeToString(h.Sum(nil))
	line, err = json.Marshal(rec)
	return line, rec.MAC, err
}

// sealed reports whether rec (a parsed line) carries the MAC seal gives it
// after prev. Constant time: the MAC is a secret until it is on disk.
func sealed(key []byte, prev string, rec record) bool {
	_, want, err := seal(key, prev, rec)
	return err == nil && hmac.Equal([]byte(want), []byte(rec.MAC))
}

// Head is the signed head of a chain: the seq of the last line written and
// a MAC over that seq and the line's MAC. It is kept apart from the log
// (Heads), so that lines cut off the end of the log, or a log replaced by
// another, show. The log itself holds no valid head: a line's MAC is not
// its head's Sig, so a head cannot be forged from what the log shows.
type Head struct {
	Seq uint64 // 0: no head kept yet
	Sig string
}

func signHead(key []byte, seq uint64, mac string) Head {
	h := hmac.New(sha256.New, key)
	fmt.Fprintf(h, "head %d %s", seq, mac)
	return Head{Seq: seq, Sig: hex.EncodeToString(h.Sum(nil))}
}

// names reports whether the head names the line with this seq and MAC.
func (h Head) names(key []byte, seq uint64, mac string) bool {
	return h.Seq == seq && hmac.Equal([]byte(signHead(key, seq, mac).Sig), []byte(h.Sig))
}

// Heads keeps signed heads apart from the log; the server and the CLI pass
// their store.
type Heads interface {
	// AuditHead returns the head of chain; (0, "") when none is kept yet.
	AuditHead(ctx context.Context, chain string) (seq uint64, sig string, err error)
	SetAuditHead(ctx context.Context, chain string, seq uint64, sig string) error
}

// chainID names the chain a key writes, for Heads. It is derived from the
// key, so each node's key has its own head, and reveals nothing of it.
func chainID(key []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("wsguard audit chain id"))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// LoadHead returns the head heads keeps for the chain of key.
func LoadHead(ctx context.Context, heads Heads, key []byte) (Head, error) {
	seq, sig, err := heads.AuditHead(ctx, chainID(key))
	if err != nil {
		return Head{}, fmt.Errorf("audit head: %w", err)
	}
	return Head{Seq: seq, Sig: sig}, nil
}
