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
// record, that seq counts up by one from 1, and that each prev is the
// SHA-256 of the line before. It returns how many lines verified; on the
// first bad line it returns a *VerifyError naming it (or a read error).
//
// Verify cannot notice lines removed from the end of the log: compare the
// count or the last line with a copy kept elsewhere.
func Verify(r io.Reader) (lines int, err error) {
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
			return lines, nil
		}
		n := lines + 1
		if !complete {
			return lines, &VerifyError{Line: n, Reason: "incomplete final line (a torn write: the record has no trailing newline)"}
		}
		rec, err := parseLine(line)
		if err != nil {
			return lines, &VerifyError{Line: n, Reason: err.Error()}
		}
		if rec.Prev != prev {
			if n == 1 {
				return lines, &VerifyError{Line: n, Reason: "prev is not the chain start (the head of the log was removed or edited)"}
			}
			return lines, &VerifyError{Line: n, Reason: fmt.Sprintf("prev hash does not match line %d (edited, removed or reordered)", n-1)}
		}
		// #nosec G115 -- n is a line count, from 1
		if rec.Seq != uint64(n) {
			return lines, &VerifyError{Line: n, Reason: fmt.Sprintf("seq %d, want %d (removed, duplicated or reordered)", rec.Seq, n)}
		}
		prev = hashLine(line)
		lines = n
	}
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
	case len(rec.Prev) != 64 || !isHex(rec.Prev):
		return rec, errors.New("not a valid audit record: prev is not a hex SHA-256")
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
