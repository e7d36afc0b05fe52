// Package wsguardjs embeds the browser client (wsguard.js) so that every
// wsguard node serves the same file at /client/wsguard.js, the file the npm
// package publishes.
//
// The file is served immutable (cached for a year): a page pins it with its
// Subresource Integrity hash (Integrity, documented in docs/CLIENTS.md), and
// the embedded UI imports it with its content hash in the query
// (VersionedPath), so a new release is a new URL. It is a public file with
// no credentials in it, so any origin may load it (CORS *): pages on other
// origins import it as a module.
package wsguardjs

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	_ "embed" // the client source
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"time"
)

//go:embed wsguard.js
var source []byte

// Path is where every node serves the client.
const Path = "/client/wsguard.js"

var (
	integrity = func() string {
		sum := sha512.Sum384(source)
		return "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
	}()
	version = func() string {
		sum := sha256.Sum256(source)
		return hex.EncodeToString(sum[:6])
	}()
)

// Source returns a copy of the client's source.
func Source() []byte { return bytes.Clone(source) }

// Integrity is the Subresource Integrity value of the served file
// ("sha384-..."), for <script integrity>.
func Integrity() string { return integrity }

// VersionedPath is Path with a short content hash as its query, so a page
// built with this binary never runs a client cached from another release.
func VersionedPath() string { return Path + "?v=" + version }

// Handler serves the client for GET and HEAD: JavaScript content type,
// nosniff, cached for a year as immutable, loadable from any origin.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		h.Set("ETag", `"`+version+`"`)
		http.ServeContent(w, r, "wsguard.js", time.Time{}, bytes.NewReader(source))
	})
}
