package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"time"

	wsguardjs "github.com/wsguard/wsguard/clients/js"
)

//go:embed static
var staticFS embed.FS

// SubmittedPath is the file name (under the static mount) that the chat's
// forms name as their action. It answers 204 No Content, so a form that is
// submitted without a submit event (a script calling form.submit(), or no
// JavaScript at all) leaves the page where it is; the chat client reads
// the text from the form's formdata event instead. The inputs carry no
// name, so nothing typed ever travels in that request's URL.
const SubmittedPath = "submitted"

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// contentTypes lists every type served; a file with another extension is
// not served at all, so nothing is ever sniffed.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
	".png": "image/png",
}

func loadAssets() map[string]asset {
	out := make(map[string]asset)
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		if p == "static/app.js" {
			b = pinClient(b)
		}
		sum := sha256.Sum256(b)
		out[p[len("static/"):]] = asset{body: b, ctype: ctype, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		// The files are compiled in: failing here is a build defect.
		panic("web: load embedded assets: " + err.Error())
	}
	return out
}

var assets = loadAssets()

// clientImport is how app.js names the browser client it is built on.
const clientImport = "'" + wsguardjs.Path + "'"

// pinClient points app.js's import of the browser client at this build's
// version of it: the client is served immutable (cached for a year), so
// the versioned URL is what makes an upgraded server's page load the
// client it was built with.
func pinClient(b []byte) []byte {
	if !bytes.Contains(b, []byte(clientImport)) {
		// The files are compiled in: failing here is a build defect.
		panic("web: static/app.js does not import " + clientImport)
	}
	return bytes.ReplaceAll(b, []byte(clientImport), []byte("'"+wsguardjs.VersionedPath()+"'"))
}

// Static serves the embedded static/ files; mount it with
// http.StripPrefix("/static/", web.Static()). Only known files are served
// (no directory listings), each with an explicit content type, nosniff,
// and Cache-Control: no-cache with a content-hash ETag, so a new release
// is picked up at once while unchanged files cost a 304.
func Static() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := r.URL.Path
		if name == SubmittedPath {
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		a, ok := assets[name]
		if !ok {
			h.Set("Cache-Control", "no-store")
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}
