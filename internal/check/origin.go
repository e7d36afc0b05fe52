package check

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// originProbe tries each origin with the credential; the first that
// opens the socket is the finding.
func (s *scan) originProbe(ctx context.Context, origins []string) outcome {
	var refused []string
	for _, o := range origins {
		k, resp, err := s.dial(ctx, "", handshake{origin: o})
		if errors.Is(err, errBudget) {
			return skipped("%v", err)
		}
		shown := o
		if o == noOrigin {
			shown = "(none)"
		}
		if upgraded(resp, err) {
			k.close()
			return found("GET %s with Origin: %s%s -> %s", s.target.Path, shown, s.credentialNote(), answer(resp, err))
		}
		if resp == nil {
			// No answer at all (a timeout, a reset) is not a refusal.
			return skipped("the handshake with Origin %s got no answer: %v", shown, err)
		}
		refused = append(refused, fmt.Sprintf("Origin %s -> %s", shown, answer(resp, err)))
	}
	return passed("%s", strings.Join(refused, "; "))
}

// credentialNote says which credential rode along, for evidence.
func (s *scan) credentialNote() string {
	var parts []string
	for _, c := range s.opt.Cookies {
		name, _, _ := strings.Cut(c, "=")
		parts = append(parts, "cookie "+name)
	}
	for _, k := range slices.Sorted(maps.Keys(s.opt.Header)) {
		parts = append(parts, "header "+k)
	}
	for _, p := range s.opt.Subprotocols {
		if isCredentialProtocol(p) {
			parts = append(parts, "subprotocol "+maskProtocol(p))
		}
	}
	if len(parts) == 0 {
		return " and no credential (if browsers authenticate here by cookie, a foreign page's socket carries it)"
	}
	return " and the credential (" + strings.Join(parts, ", ") + ")"
}

func (s *scan) checkForeign(ctx context.Context) outcome {
	return s.originProbe(ctx, foreignOrigins(s.origin))
}

func (s *scan) checkSibling(ctx context.Context) outcome {
	return s.originProbe(ctx, siblingOrigins(s.origin))
}

func (s *scan) checkNull(ctx context.Context) outcome {
	return s.originProbe(ctx, []string{"null"})
}

// checkMissing matters only for cookie credentials: a non-browser client
// sends no Origin, and with a token that is fine.
func (s *scan) checkMissing(ctx context.Context) outcome {
	if len(s.opt.Cookies) == 0 {
		return skipped("no cookie credential given (--cookie): a handshake without Origin is a weakness only when a cookie authenticates it")
	}
	return s.originProbe(ctx, []string{noOrigin})
}

// checkCredEcho reads the protocol the baseline handshake selected.
func (s *scan) checkCredEcho(context.Context) outcome {
	var creds []string
	for _, p := range s.opt.Subprotocols {
		if isCredentialProtocol(p) {
			creds = append(creds, p)
		}
	}
	if len(creds) == 0 {
		return skipped("no credential subprotocol given (--subprotocol with a part of 8 or more characters, like x-token.<secret>)")
	}
	got := s.base.Header.Get("Sec-WebSocket-Protocol")
	for _, c := range creds {
		if got == c {
			return found("offered Sec-WebSocket-Protocol: %s -> the answer echoes it: Sec-WebSocket-Protocol: %s", maskProtocol(c), maskProtocol(got))
		}
	}
	return passed("the answer selected %q", maskProtocol(got))
}

// maskProtocol hides the secret parts of a credential subprotocol in
// evidence (reports end up in CI logs): each part of 8 or more characters
// keeps its first 3.
func maskProtocol(p string) string {
	parts := strings.Split(p, ".")
	for i, part := range parts {
		if len(part) >= 8 {
			parts[i] = part[:3] + "***"
		}
	}
	return strings.Join(parts, ".")
}

// checkCookie looks for the credential cookies in the Set-Cookie headers
// the scan saw (handshake answers and the origin's root page).
func (s *scan) checkCookie(context.Context) outcome {
	if len(s.opt.Cookies) == 0 {
		return skipped("no cookie credential given (--cookie)")
	}
	var seen, loose []string
	for _, given := range s.opt.Cookies {
		name, _, _ := strings.Cut(given, "=")
		for _, c := range s.cookies {
			if c.Name != name {
				continue
			}
			seen = append(seen, name)
			var lacks []string
			if !c.Secure {
				lacks = append(lacks, "Secure")
			}
			if !c.HttpOnly {
				lacks = append(lacks, "HttpOnly")
			}
			if c.SameSite != http.SameSiteStrictMode && c.SameSite != http.SameSiteLaxMode {
				lacks = append(lacks, "SameSite=Strict or Lax")
			}
			if len(lacks) > 0 {
				loose = append(loose, fmt.Sprintf("Set-Cookie %s lacks %s", name, strings.Join(lacks, ", ")))
			}
			break
		}
	}
	if len(loose) > 0 {
		return found("%s", strings.Join(loose, "; "))
	}
	if len(seen) == 0 {
		return skipped("the server set none of the given cookies in the answers this scan saw (the handshakes and GET /); check the Set-Cookie of the sign-in response")
	}
	return passed("Set-Cookie %s has Secure, HttpOnly and SameSite", strings.Join(seen, ", "))
}
