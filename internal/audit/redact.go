package audit

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what one event may put in the log, so that an attacker-chosen
// user name or header cannot bloat it.
const (
	// MaxValueBytes is the longest string kept whole; longer ones are cut
	// and marked.
	MaxValueBytes = 256
	// maxKeyBytes is the longest field name kept whole.
	maxKeyBytes = 64
	// MaxFields is how many fields one event keeps; the rest are dropped
	// and counted in the field "_dropped_fields".
	MaxFields = 32
)

// Redacted replaces a secret value.
const Redacted = "[redacted]"

// secretSubstrings mark a field name as secret wherever they appear in it
// ("csrf_token", "session_cookie", "apiKey").
var secretSubstrings = []string{
	"password", "passwd", "token", "cookie", "ticket", "secret",
	"authorization", "csrf", "apikey", "credential", "private",
}

// secretWords mark a field name as secret when they are a whole word of it
// ("code", "totp_code", "api_key", "data", "body"), but not inside another
// word ("keyboard", "codec").
var secretWords = map[string]bool{
	"code": true, "key": true, "data": true, "body": true,
	"otp": true, "totp": true, "pass": true, "pin": true,
}

// secretKey reports whether a field named k must not have its value logged.
func secretKey(k string) bool {
	lower := strings.ToLower(k)
	for _, s := range secretSubstrings {
		if strings.Contains(lower, s) {
			return true
		}
	}
	for _, w := range words(k) {
		if secretWords[w] {
			return true
		}
	}
	return false
}

// words splits a field name at non-alphanumerics and lower-to-upper case
// changes, lowercased: "totpCode" and "totp_code" give [totp code].
func words(k string) []string {
	var out []string
	var cur strings.Builder
	var prevLower bool
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for _, r := range k {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
			prevLower = false
			continue
		case unicode.IsUpper(r) && prevLower:
			flush()
		}
		prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
		cur.WriteRune(unicode.ToLower(r))
	}
	flush()
	return out
}

// secretValue reports whether v looks like a credential whatever its field
// is called: an Authorization header value or a JWT.
func secretValue(v string) bool {
	t := strings.TrimSpace(v)
	lower := strings.ToLower(t)
	for _, scheme := range []string{"bearer ", "basic ", "digest "} {
		if strings.HasPrefix(lower, scheme) {
			return true
		}
	}
	// A JWT: three base64url parts, the header starting {" (eyJ).
	if strings.HasPrefix(t, "eyJ") && strings.Count(t, ".") == 2 {
		return true
	}
	return false
}

// redactFields returns a cleaned copy of fields: secrets redacted, keys
// and values cut to length, at most MaxFields entries (by sorted key).
func redactFields(fields map[string]string) map[string]string {
	if len(fields) == 0 {
		return nil
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]string, min(len(keys), MaxFields+1))
	for i, k := range keys {
		if i == MaxFields {
			out["_dropped_fields"] = fmt.Sprint(len(keys) - MaxFields)
			break
		}
		v := fields[k]
		ck := truncate(k, maxKeyBytes)
		if secretKey(k) || secretValue(v) {
			out[ck] = Redacted
		} else {
			out[ck] = clean(v)
		}
	}
	return out
}

// clean makes s safe and small to log: valid UTF-8 (so that a line
// re-encodes to the same bytes) and at most MaxValueBytes plus a marker.
// JSON encoding escapes the rest (newlines, quotes, control characters).
func clean(s string) string {
	return truncate(s, MaxValueBytes)
}

func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...[truncated %d bytes]", s[:cut], len(s)-cut)
}
