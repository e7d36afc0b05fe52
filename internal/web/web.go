package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

// layoutFile holds the shared page frame; every other file in templates/
// is one page, named by its file name without ".html".
const layoutFile = "layout.html"

// PageData is everything a page may show. Every string is treated as
// untrusted and escaped by html/template for where it lands.
type PageData struct {
	Title     string // page title and main heading
	CSRFToken string // synchronizer token put in every form and in the chat page's csrf-token meta
	User      string // signed-in username; empty hides the navigation
	Error     string // one error message for the user (keep it generic on login)
	Notice    string // one neutral or success message
	Admin     bool   // the user is an admin (shown as a badge)

	Rooms []string // chat: channels joined on load, e.g. "room:lobby"

	TOTPSecret    string       // settings_2fa: base32 secret shown as text and posted back as "secret"
	TOTPQR        template.URL // settings_2fa: data:image/png;base64,... built by the server, never from input
	RecoveryCodes []string     // settings_2fa: shown once, right after enrolment
	RecoveryFile  template.URL // settings_2fa: data:text/plain,... of the codes, for the download link; built by the server
	Enrolled      bool         // settings_2fa: two-factor is already on

	Sessions []SessionRow // settings_sessions

	SetupToken string // setup: the one-time token from the setup URL
	Next       string // login: where to go after signing in (the server must validate it)
	Username   string // login, setup: the username typed before an error, put back in the field
}

// SessionRow is one of the user's sessions on the sessions page.
type SessionRow struct {
	PublicID    string // opaque id posted as "session" to revoke; never the cookie value
	Created     string // RFC 3339, UTC: the datetime attribute, shown in local time by the page's script
	CreatedAgo  string // "5 minutes ago": shown without script
	LastSeen    string
	LastSeenAgo string
	IP          string
	Browser     string // "Chrome on Linux", read from UserAgent
	UserAgent   string // the full header, shown on hover
	Current     bool   // the session viewing the page; its row carries data-current="true"
}

// view is what templates see: the page data plus the page's own name, so
// the navigation can mark the current page.
type view struct {
	PageData
	Page string
}

// Pages holds every parsed page; it is immutable and safe for concurrent use.
type Pages struct {
	pages map[string]*template.Template
}

var funcs = template.FuncMap{
	"join": strings.Join,
}

// New parses every template at start, so a broken template stops the
// server at once instead of failing a request later.
func New() (*Pages, error) {
	layout, err := template.New(layoutFile).Funcs(funcs).ParseFS(templateFS, "templates/"+layoutFile)
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	p := &Pages{pages: make(map[string]*template.Template)}
	for _, f := range files {
		base := path.Base(f)
		if base == layoutFile {
			continue
		}
		t, err := layout.Clone()
		if err != nil {
			return nil, fmt.Errorf("clone layout for %q: %w", base, err)
		}
		if _, err := t.ParseFS(templateFS, f); err != nil {
			return nil, fmt.Errorf("parse template %q: %w", base, err)
		}
		if t.Lookup("content") == nil {
			return nil, fmt.Errorf("template %q defines no \"content\"", base)
		}
		p.pages[strings.TrimSuffix(base, ".html")] = t
	}
	return p, nil
}

// Names lists the page names Render accepts.
func (p *Pages) Names() []string {
	names := make([]string, 0, len(p.pages))
	for n := range p.pages {
		names = append(names, n)
	}
	return names
}

// Render writes page name with status. It renders into a buffer first, so a
// template error answers a clean 500 rather than a truncated page. Pages
// carry CSRF tokens and personal data, hence no-store.
func (p *Pages) Render(w http.ResponseWriter, status int, name string, data PageData) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	t, ok := p.pages[name]
	var buf bytes.Buffer
	var err error
	if !ok {
		err = fmt.Errorf("no page %q", name)
	} else {
		err = t.ExecuteTemplate(&buf, "layout", view{PageData: data, Page: name})
	}
	if err != nil {
		// The detail goes to the log, never to the client.
		slog.Error("web: render page", "page", name, "err", err)
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("internal error\n"))
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
