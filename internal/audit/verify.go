package audit

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// VerifyError names the first line of a log that breaks the chain.
type VerifyError struct {
	Line   int    // 1-based
	Reason string // what is wrong and the likely cause
}

func (e *VerifyError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Verify reads a whole log and checks that every line is a canonical
// record, that seq counts up by one from 1, and that each line's MAC is
// the one key gives it after the line before. With a head (the one the
// store keeps for this log), it also checks that the line the head names
// is there and is that line: lines cut off the end, or a log replaced by
// another chain, show. It returns how many lines verified; on the first
// bad line it returns a *VerifyError naming it (or a read error).
//
// A nil head skips that last check: then lines removed from the end of the
// log go unnoticed. A zero head (none kept) fits only an empty log. Lines after the head's are checked like the others
// (the head lags when a save failed, or during a write).
func Verify(r io.Reader, key []byte, head *Head) (lines int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	prev := chainStart
	for {
		line, complete, err := readLine(br)
		if err != nil {
			var ve *VerifyError
			if errors.As(err, &ve) {
				ve.Line = lines + 1
				return lines, ve
			}
			return lines, fmt.Errorf("line %d: %w", lines+1, err)
		}
		if line == nil {
			break
		}
		n := lines + 1
		bad := func(format string, args ...any) (int, error) {
			return lines, &VerifyError{Line: n, Reason: fmt.Sprintf(format, args...)}
		}
		if !complete {
			return bad("incomplete final line (a torn write: the record has no trailing newline)")
		}
		rec, err := parseLine(line)
		if err != nil {
			return bad("%v", err)
		}
		// #nosec G115 -- n is a line count, from 1
		seq := uint64(n)
		switch {
		case rec.Seq != seq:
			return bad("seq %d, want %d (a line was removed, duplicated or reordered)", rec.Seq, n)
		case !sealed(key, prev, rec):
			return bad("MAC does not verify (the line was edited, or the chain was rewritten without the key)")
		case head != nil && seq == head.Seq && !head.names(key, seq, rec.MAC):
			return bad("not the line the signed head names (the log was replaced by another chain)")
		}
		prev = rec.MAC
		lines = n
	}
	if head != nil && head.Seq == 0 && lines > 0 {
		return 0, &VerifyError{Line: 1, Reason: "no signed head is kept for this log, yet it has lines (a new or restored database, or the head was deleted): a cut tail would not show"}
	}
	verified := uint64(lines) // #nosec G115 -- a line count, never negative
	if head != nil && verified < head.Seq {
		return lines, &VerifyError{Line: lines + 1, Reason: fmt.Sprintf(
			"missing: the log ends after line %d but the signed head is at line %d (the tail was cut off)", lines, head.Seq)}
	}
	return lines, nil
}

// readLine returns the next line without its newline and whether it had
// one; nil at the end. Lines over maxLine are refused without buffering
// them whole.
func readLine(br *bufio.Reader) (line []byte, complete bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine+1 {
			return nil, false, &VerifyError{Reason: fmt.Sprintf("longer than %d bytes", maxLine)}
		}
		switch {
		case err == nil:
			return line[:len(line)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(line) == 0 {
				return nil, false, nil
			}
			return line, false, nil
		default:
			return nil, false, err
		}
	}
}

// parseLine decodes one line strictly: known keys only, nothing after the
// object, required values present and well formed, and the line exactly as
// Record encodes it.
func parseLine(line []byte) (record, error) {
	var rec record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return rec, fmt.Errorf("not a valid audit record: %w", err)
	}
	if dec.More() {
		return rec, errors.New("not a valid audit record: data after the object")
	}
	switch {
	case rec.Seq == 0:
		return rec, errors.New("not a valid audit record: seq missing or zero")
	case rec.Type == "":
		return rec, errors.New("not a valid audit record: type missing")
	case len(rec.MAC) != 64 || !isHex(rec.MAC):
		return rec, errors.New("not a valid audit record: mac is not a hex HMAC-SHA256")
	}
	if _, err := time.Parse(time.RFC3339Nano, rec.TS); err != nil {
		return rec, fmt.Errorf("not a valid audit record: ts: %w", err)
	}
	canon, err := json.Marshal(rec)
	if err != nil || !bytes.Equal(canon, line) {
		return rec, errors.New("not in canonical form (the line was edited)")
	}
	return rec, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && s == string(bytes.ToLower([]byte(s)))
}
