package server

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/csrf"
	"github.com/wsguard/wsguard/internal/identity"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/web"
)

// setupTokenOK reports whether tok is the live one-time setup token.
func (s *ui) setupTokenOK(ctx context.Context, tok string) bool {
	s.setupMu.Lock()
	defer s.setupMu.Unlock()
	return s.setupOpenLocked(ctx) && subtle.ConstantTimeCompare([]byte(tok), []byte(s.setupToken)) == 1
}

// setupOpenLocked reports whether first-admin setup is still possible: a
// token is live and the store holds no admin. An admin may have been
// created outside the setup page (`wsguard user add --admin`, another
// node), and the URL printed at start must not then create another, so the
// token is cleared for good. A store error refuses this request only.
// s.setupMu is held.
func (s *ui) setupOpenLocked(ctx context.Context) bool {
	if s.setupToken == "" {
		return false
	}
	any, err := s.store.AnyAdmin(ctx)
	if err != nil {
		return false
	}
	if any {
		s.setupToken = ""
		return false
	}
	return true
}

func (s *ui) setupGet(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if !s.setupTokenOK(r.Context(), tok) {
		s.errorPage(w, r, http.StatusNotFound, "Setup", "This setup link is not valid or was already used.")
		return
	}
	s.pages.Render(w, http.StatusOK, "setup", web.PageData{Title: "Create the first admin", CSRFToken: csrf.EnsurePre(w, r), SetupToken: tok})
}

// setupPost creates the first admin; the token works once, and only while
// no admin exists. The new admin must enrol two-factor before anything else.
func (s *ui) setupPost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "form too large or malformed", http.StatusRequestEntityTooLarge)
		return
	}
	if csrf.CheckPre(r, r.PostForm.Get("csrf_token")) != nil {
		s.refuseForm(w, r, "csrf_invalid")
		return
	}
	tok := r.PostForm.Get("token")
	if !s.setupTokenOK(r.Context(), tok) {
		s.audit.Record(audit.Event{Type: "setup.refused", Reason: "bad_token", IP: s.clientIP(r)})
		s.errorPage(w, r, http.StatusForbidden, "Setup", "This setup link is not valid or was already used.")
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	data := web.PageData{Title: "Create the first admin", CSRFToken: csrf.EnsurePre(w, r), SetupToken: tok, Username: typedName(name)}
	if err := ValidateUsername(name); err != nil {
		data.Error = err.Error()
		s.pages.Render(w, http.StatusBadRequest, "setup", data)
		return
	}
	if err := identity.ValidatePassword(password); err != nil {
		data.Error = err.Error()
		s.pages.Render(w, http.StatusBadRequest, "setup", data)
		return
	}
	hash, err := s.hasher.Hash(r.Context(), password)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.setupMu.Lock()
	// An admin may have appeared while the password was hashing.
	if !s.setupOpenLocked(r.Context()) || s.setupToken != tok {
		s.setupMu.Unlock()
		s.errorPage(w, r, http.StatusForbidden, "Setup", "This setup link was already used.")
		return
	}
	u, err := s.store.CreateUser(r.Context(), store.User{Name: name, PasswordHash: hash, Admin: true})
	if err == nil {
		s.setupToken = ""
	}
	s.setupMu.Unlock()
	if err != nil {
		data.Error = "That username cannot be used."
		s.pages.Render(w, http.StatusConflict, "setup", data)
		return
	}
	s.audit.Record(audit.Event{Type: "user.created", Reason: "setup", IP: s.clientIP(r), User: u.Name, Fields: map[string]string{"admin": "true"}})
	value, sess, err := s.sessions.Create(r.Context(), u, false, s.clientIP(r), r.UserAgent())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.sessions.SetCookie(w, value, sess)
	http.Redirect(w, r, "/settings/2fa", http.StatusSeeOther)
}
