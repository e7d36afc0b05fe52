package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// chainBreak is why the end of a log cannot be continued.
type chainBreak struct {
	reason  string // the event's reason: truncated, edited, reordered, replaced, unreadable, no_head, head_behind
	detail  string // what was found, for the operator
	headSeq uint64
}

// maxLag bounds how many lines the log may run ahead of its head (saves
// that failed while the store was down) before the walk back to the head's
// line gives up and calls the chain broken.
const maxLag = 10000

// resume checks the end of the file against the key and the head and, when
// they match, sets size, seq and mac from its last line, repairing a torn
// final write; it reports how many bytes of a torn fragment it removed.
// When they do not match it returns the break and changes nothing but a
// missing final newline.
func (l *Log) resume(size int64, head Head) (brk *chainBreak, dropped int, err error) {
	// A final line without its newline is the trace of a write torn by a
	// crash. end is where the complete lines end.
	frag, end, err := lineAt(l.f, size)
	if err != nil && !errors.Is(err, errLong) {
		return nil, 0, err
	}
	if len(frag) > 0 {
		if _, err := parseLine(frag); err == nil {
			// Written whole, only the newline is missing. The record is
			// checked with the others below.
			if _, err := l.f.Write([]byte{'\n'}); err != nil {
				return nil, 0, err
			}
			size++
			end = size
		}
	}
	last, lastLine, brk, err := l.checkTail(end, head)
	if brk != nil || err != nil {
		return brk, 0, err
	}
	if end < size {
		if err := l.f.Truncate(end); err != nil {
			return nil, 0, err
		}
	}
	if err := l.f.Sync(); err != nil {
		return nil, 0, err
	}
	l.size, l.seq, l.mac, l.last, l.head = end, last.Seq, last.MAC, lastLine, head
	if last.Seq == 0 {
		l.mac = chainStart
	}
	if l.heads != nil && last.Seq != head.Seq {
		// The log ran ahead of its head (a crash between a line's fsync
		// and its head save, or the store was down): catch up now.
		if err := l.saveHead(); err != nil {
			l.log.Warn("audit head not saved", "err", err)
		}
	}
	return nil, int(size - end), nil
}

// checkTail reads back from end to the line before the one the head names
// (or, with no head kept, the line before the last; or the start of the
// file) and checks every line after it: seq counting up, MACs chaining
// under the key, and the head naming its line. It returns the last line
// (zero in an empty log) and its bytes.
func (l *Log) checkTail(end int64, head Head) (last record, lastLine []byte, brk *chainBreak, err error) {
	broken := func(reason, format string, args ...any) (record, []byte, *chainBreak, error) {
		return record{}, nil, &chainBreak{reason: reason, detail: fmt.Sprintf(format, args...), headSeq: head.Seq}, nil
	}
	if end == 0 {
		if head.Seq > 0 {
			return broken("truncated", "the log is empty but its signed head is at seq %d", head.Seq)
		}
		return record{}, nil, nil, nil
	}
	if l.heads != nil && head.Seq == 0 {
		return broken("no_head", "the log has lines but the store keeps no signed head for its key (a new or restored database, or the head was deleted)")
	}
	var lines []record // newest first
	target := head.Seq
	for pos := end; pos > 0; {
		line, start, err := lineAt(l.f, pos-1)
		if errors.Is(err, errLong) {
			return broken("unreadable", "the line ending at byte %d is longer than %d bytes", pos, maxLine)
		} else if err != nil {
			return record{}, nil, nil, err
		}
		rec, err := parseLine(line)
		if err != nil {
			return broken("unreadable", "the line at byte %d: %v", start, err)
		}
		lines = append(lines, rec)
		pos = start
		if len(lines) == 1 {
			lastLine = line
			if l.heads == nil {
				target = rec.Seq // no head kept: check the last line
			}
		}
		if rec.Seq < target {
			break
		}
		if len(lines) > maxLag {
			return broken("head_behind", "no line with the head's seq %d in the last %d lines", head.Seq, maxLag)
		}
	}
	if lines[0].Seq < head.Seq {
		return broken("truncated", "the log ends at seq %d but its signed head is at seq %d: lines were cut off the end, or reordered", lines[0].Seq, head.Seq)
	}
	slices.Reverse(lines)
	prev, want, check := chainStart, uint64(1), lines
	if oldest := lines[0]; oldest.Seq < target {
		prev, want, check = oldest.MAC, oldest.Seq+1, lines[1:]
	}
	for _, rec := range check {
		switch {
		case rec.Seq != want:
			return broken("reordered", "seq %d where seq %d belongs: lines were removed or reordered", rec.Seq, want)
		case !sealed(l.key, prev, rec):
			return broken("edited", "the line with seq %d does not verify with the key: it was edited, or written without this key", rec.Seq)
		case l.heads != nil && rec.Seq == head.Seq && !head.names(l.key, rec.Seq, rec.MAC):
			return broken("replaced", "the line with seq %d is not the one the signed head names: the log was replaced by another chain", rec.Seq)
		}
		prev, want = rec.MAC, want+1
	}
	return lines[len(lines)-1], lastLine, nil, nil
}

var errLong = fmt.Errorf("line longer than %d bytes", maxLine)

// lineAt returns the bytes of f from just after the last newline before
// end up to end, and where they start. Called with end at a line's
// newline, it returns that line; called with the file size, it returns
// what follows the last newline (nothing, or a torn fragment).
func lineAt(f *os.File, end int64) ([]byte, int64, error) {
	for n := int64(4 << 10); ; n *= 2 {
		from := max(0, end-n)
		buf := make([]byte, end-from)
		if _, err := f.ReadAt(buf, from); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, err
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			return buf[i+1:], from + int64(i) + 1, nil
		}
		if from == 0 {
			return buf, 0, nil
		}
		if n > maxLine {
			return nil, end, errLong
		}
	}
}
