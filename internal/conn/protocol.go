package conn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Error codes sent to clients (docs/PROTOCOL.md lists their retry meaning).
const (
	CodeBadRequest  = "bad_request"
	CodeForbidden   = "forbidden"
	CodeNotFound    = "not_found"
	CodeRateLimited = "rate_limited"
	CodeTooLarge    = "too_large"
	CodeUnavailable = "unavailable"
)

// Close codes.
const (
	CloseNormal        = 1000
	CloseGoingAway     = 1001
	CloseUnsupported   = 1003
	CloseInvalidUTF8   = 1007
	ClosePolicy        = 1008
	CloseTooBig        = 1009
	CloseSessionEnded  = 4001
	CloseForbidden     = 4003
	CloseRateLimited   = 4008
	CloseInternalError = 1011
	maxNesting         = 32
	maxCIDLength       = 64
	maxTokenLength     = 8 << 10
	maxHistoryLimit    = 1000
	defaultHistoryPage = 50
	// maxCloseReason keeps a close frame's payload within the 125 bytes a
	// control frame may carry.
	maxCloseReason = 120
)

// sendableCloseCode reports whether code may be sent in a close frame
// (RFC 6455 §7.4): 1005, 1006 and 1015 are reserved for local use.
func sendableCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// RequestID reads the id of a frame that may fail strict parsing (an
// unknown op or field, a frame refused for rate): 0 when the frame is not
// JSON or its id is not a positive integer. Errors carry it so a client
// can tell which request to retry.
func RequestID(b []byte) int64 {
	var probe struct {
		ID int64 `json:"id"`
	}
	if json.Unmarshal(b, &probe) != nil || probe.ID <= 0 {
		return 0
	}
	return probe.ID
}

// Request is one client-to-server frame.
type Request struct {
	ID      int64           `json:"id"`
	Op      string          `json:"op"`
	Channel string          `json:"channel,omitempty"`
	Since   *uint64         `json:"since,omitempty"`
	Limit   int             `json:"limit,omitempty"`
	Before  uint64          `json:"before,omitempty"`
	CID     string          `json:"cid,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Token   string          `json:"token,omitempty"`
}

// ErrorBody is the error object of a reply.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type reply struct {
	ID     int64      `json:"id"`
	OK     bool       `json:"ok,omitempty"`
	Result any        `json:"result,omitempty"`
	Error  *ErrorBody `json:"error,omitempty"`
}

// ParseRequest decodes one frame strictly: a single JSON object with only
// known fields, no trailing data, nesting at most 32 deep, a positive id and
// a known op. Data, when present, must not carry control characters in its
// strings (other than tab, newline and carriage return).
func ParseRequest(b []byte) (Request, error) {
	var r Request
	if !utf8.Valid(b) {
		return r, errors.New("frame is not valid UTF-8")
	}
	if err := checkNesting(b); err != nil {
		return Request{ID: RequestID(b)}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{ID: RequestID(b)}, fmt.Errorf("invalid request: %v", sanitize(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Request{ID: max(r.ID, 0)}, errors.New("invalid request: data after the JSON object")
	}
	if r.ID <= 0 {
		return Request{}, errors.New("invalid request: id must be a positive integer")
	}
	// From here on the id is known: every refusal carries it.
	fail := func(err error) (Request, error) { return Request{ID: r.ID}, err }
	switch r.Op {
	case "subscribe", "unsubscribe", "publish", "history", "presence", "refresh", "ping":
	default:
		return fail(fmt.Errorf("invalid request: unknown op %q (allowed: subscribe, unsubscribe, publish, history, presence, refresh, ping)", truncate(r.Op, 32)))
	}
	if len(r.CID) > maxCIDLength {
		return fail(fmt.Errorf("invalid request: cid longer than %d bytes", maxCIDLength))
	}
	for _, c := range r.CID {
		if c < 0x21 || c > 0x7e {
			return fail(errors.New("invalid request: cid must be printable ASCII without spaces (allowed: the characters ! to ~)"))
		}
	}
	if len(r.Token) > maxTokenLength {
		return fail(errors.New("invalid request: token too long"))
	}
	if r.Data != nil {
		if err := checkControl(r.Data); err != nil {
			return fail(err)
		}
	}
	return r, nil
}

// checkNesting refuses JSON nested deeper than maxNesting without decoding
// it, so a deeply nested frame costs nothing but one scan.
func checkNesting(b []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > maxNesting {
				return fmt.Errorf("invalid request: nested deeper than %d levels", maxNesting)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// checkControl refuses control characters (escaped or raw) in data strings:
// they have no place in chat text and are a classic log and terminal
// injection vector.
func checkControl(data json.RawMessage) error {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("invalid request: data: %v", sanitize(err))
	}
	var walk func(any) error
	walk = func(v any) error {
		switch t := v.(type) {
		case string:
			for _, r := range t {
				if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
					return errors.New("invalid request: control characters are not allowed in data")
				}
			}
		case []any:
			for _, e := range t {
				if err := walk(e); err != nil {
					return err
				}
			}
		case map[string]any:
			for k, e := range t {
				if err := walk(k); err != nil {
					return err
				}
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(v)
}

// sanitize keeps decoder errors short and free of echoed input.
func sanitize(err error) string {
	return truncate(err.Error(), 120)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func encodeReply(r reply) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(reply{ID: r.ID, Error: &ErrorBody{Code: CodeUnavailable, Message: "internal error"}})
	}
	return b
}
