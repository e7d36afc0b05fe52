package server

import (
	"context"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"

	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/csrf"
	"github.com/wsguard/wsguard/internal/identity"
	"github.com/wsguard/wsguard/internal/session"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/web"
)

func (s *Server) chatGet(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.requirePage(w, r)
	if !ok {
		return
	}
	s.pages.Render(w, http.StatusOK, "chat", web.PageData{
		Title: "Chat", CSRFToken: sess.CSRFSecret, User: u.Name, Admin: u.Admin,
		Rooms: s.chatRooms(r, u),
	})
}

// enrolSession returns the session for 2FA enrolment: a full session, or
// one whose second factor is pending because the user has none enrolled yet.
func (s *ui) enrolSession(w http.ResponseWriter, r *http.Request) (store.Session, store.User, bool) {
	sess, u, err := s.anySession(r)
	if err != nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return sess, u, false
	}
	if !sess.TwoFADone && u.TOTPSecret != "" {
		http.Redirect(w, r, "/login/2fa", http.StatusSeeOther)
		return sess, u, false
	}
	return sess, u, true
}

func (s *ui) settings2FAGet(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.enrolSession(w, r)
	if !ok {
		return
	}
	data := web.PageData{Title: "Two-factor authentication", CSRFToken: sess.CSRFSecret, User: u.Name, Admin: u.Admin, Enrolled: u.TOTPSecret != ""}
	if !data.Enrolled {
		key, err := s.pendingEnrolment(r.Context(), u)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if err := s.fillEnrolment(&data, key); err != nil {
			s.serverError(w, r, err)
			return
		}
		if s.needs2FA(u) {
			data.Notice = "Your account requires two-factor authentication: enrol to continue."
		}
	}
	s.pages.Render(w, http.StatusOK, "settings_2fa", data)
}

// enrolmentTTL is how long a secret shown for enrolment stays the one the
// page shows: every visit within it shows the same QR code, so an app that
// scanned it on the first visit holds the secret that gets confirmed.
const enrolmentTTL = 10 * time.Minute

// pendingEnrolment returns the user's enrolment key: the one kept from an
// earlier visit while it lasts, else a new one, kept from now on.
func (s *ui) pendingEnrolment(ctx context.Context, u store.User) (*otp.Key, error) {
	fresh, err := identity.NewTOTPSecret("wsguard", u.Name)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	secret, err := s.store.PendingTOTP(ctx, u.ID, fresh.Secret(), now, now.Add(enrolmentTTL))
	if err != nil {
		return nil, err
	}
	if secret == fresh.Secret() {
		return fresh, nil
	}
	return enrolmentKey(u.Name, secret)
}

// enrolmentKey rebuilds the key of a kept secret, with the same issuer,
// account and parameters NewTOTPSecret gives a new one.
func enrolmentKey(name, secret string) (*otp.Key, error) {
	q := url.Values{"secret": {secret}, "issuer": {"wsguard"}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/wsguard:" + name, RawQuery: q.Encode()}
	return otp.NewKeyFromURL(u.String())
}

// renderEnrolment shows the enrolment page again with the kept secret.
func (s *ui) renderEnrolment(w http.ResponseWriter, r *http.Request, status int, u store.User, data web.PageData) {
	key, err := s.pendingEnrolment(r.Context(), u)
	if err == nil {
		err = s.fillEnrolment(&data, key)
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.pages.Render(w, status, "settings_2fa", data)
}

func (s *ui) fillEnrolment(data *web.PageData, key *otp.Key) error {
	png, err := identity.QRPNG(key)
	if err != nil {
		return err
	}
	data.TOTPSecret = key.Secret()
	// The QR code is made here and inlined: no third-party QR service ever sees the secret.
	data.TOTPQR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)) // #nosec G203 -- base64 of PNG bytes the server drew: no user text
	return nil
}

// recoveryFile is the recovery codes as a text file in a data: URL, for
// the page's download link: the codes are shown once and kept nowhere in
// the clear, so there is no endpoint that could serve them later.
func recoveryFile(user string, codes []string) template.URL {
	var b strings.Builder
	b.WriteString("wsguard recovery codes for " + user + "\n")
	b.WriteString("Each code signs you in once, in place of a code from your authenticator app.\n\n")
	for _, c := range codes {
		b.WriteString(c + "\n")
	}
	// Base64 of text the server wrote; nothing in it can end the URL.
	return template.URL("data:text/plain;charset=utf-8;base64," + base64.StdEncoding.EncodeToString([]byte(b.String()))) // #nosec G203 -- base64 of server-made text
}

// settings2FAPost confirms enrolment: the code must come from the secret
// the server kept for this user (pendingEnrolment), which is stored as the
// user's only once a code from it verifies.
func (s *ui) settings2FAPost(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.sessionForm(w, r, s.enrolSession)
	if !ok {
		return
	}
	if u.TOTPSecret != "" {
		http.Redirect(w, r, "/settings/2fa", http.StatusSeeOther)
		return
	}
	code := strings.TrimSpace(r.PostForm.Get("code"))
	now := s.clock.Now()
	ip := s.clientIP(r)
	data := web.PageData{Title: "Two-factor authentication", CSRFToken: sess.CSRFSecret, User: u.Name, Admin: u.Admin}
	secret, err := s.store.PendingTOTPSecret(r.Context(), u.ID, now)
	if errors.Is(err, store.ErrNotFound) {
		// Not an attempt: the page was older than enrolmentTTL.
		data.Error = "That enrolment expired. Scan this new code and enter the 6 digits it shows."
		s.renderEnrolment(w, r, http.StatusBadRequest, u, data)
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if ok, wait := s.totpUser.Reserve("totp:"+u.Name, now); !ok {
		s.audit.Record(audit.Event{Type: "2fa.throttled", Reason: "enrolment", IP: ip, User: u.Name})
		retryAfter(w, wait)
		data.Error = "Too many attempts. " + waitText(wait)
		s.renderEnrolment(w, r, http.StatusTooManyRequests, u, data)
		return
	}
	step, valid := identity.CheckTOTP(secret, code, now, 0)
	if !valid {
		s.totpUser.Failure("totp:"+u.Name, now)
		s.audit.Record(audit.Event{Type: "2fa.failed", Reason: "enrolment", IP: ip, User: u.Name})
		data.Error = "That code did not match. Check the app shows wsguard (" + u.Name + ") and enter its current 6 digits."
		s.renderEnrolment(w, r, http.StatusBadRequest, u, data)
		return
	}
	// Only the TOTP columns are written: u was read before the code was
	// checked, and writing it back whole would undo a disable or role
	// change made meanwhile.
	if err := s.store.SetTOTP(r.Context(), u.ID, secret, step); err != nil {
		s.totpUser.Release("totp:" + u.Name)
		s.serverError(w, r, err)
		return
	}
	codes, hashes, err := identity.NewRecoveryCodes()
	if err == nil {
		err = s.store.SetRecoveryCodes(r.Context(), u.ID, hashes)
	}
	if err != nil {
		s.totpUser.Release("totp:" + u.Name)
		s.serverError(w, r, err)
		return
	}
	s.totpUser.Success("totp:" + u.Name)
	if err := s.store.ClearPendingTOTP(r.Context(), u.ID); err != nil {
		s.log.Warn("2fa enrolled but the pending secret was not cleared", "user", u.Name, "err", err)
	}
	s.audit.Record(audit.Event{Type: "2fa.enrolled", IP: ip, User: u.Name})
	// Privilege changed: new session id, second factor done. Sockets of
	// the old id close: that session no longer exists.
	ns, ok := s.rotateSession(w, r, sess, u, "2fa enrolled")
	if !ok {
		return
	}
	s.pages.Render(w, http.StatusOK, "settings_2fa", web.PageData{
		Title: "Two-factor authentication", CSRFToken: ns.CSRFSecret, User: u.Name, Admin: u.Admin,
		Enrolled: true, RecoveryCodes: codes, RecoveryFile: recoveryFile(u.Name, codes),
		Notice: "Two-factor authentication is on. Store these recovery codes now: they are shown only once.",
	})
}

func (s *ui) sessionsGet(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.requirePage(w, r)
	if !ok {
		return
	}
	// Sessions past a lifetime are deleted here, not shown.
	list, err := s.sessions.List(r.Context(), u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	now := s.clock.Now()
	rows := make([]web.SessionRow, 0, len(list))
	for _, x := range list {
		rows = append(rows, web.SessionRow{
			PublicID: x.PublicID,
			Created:  x.CreatedAt.UTC().Format(time.RFC3339), CreatedAgo: web.Ago(x.CreatedAt, now),
			LastSeen: x.LastSeen.UTC().Format(time.RFC3339), LastSeenAgo: web.Ago(x.LastSeen, now),
			IP: x.IP, Browser: web.BrowserName(x.UserAgent), UserAgent: x.UserAgent, Current: x.PublicID == sess.PublicID,
		})
	}
	s.pages.Render(w, http.StatusOK, "settings_sessions", web.PageData{Title: "Sessions", CSRFToken: sess.CSRFSecret, User: u.Name, Admin: u.Admin, Sessions: rows})
}

func (s *ui) revokeSessionPost(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.sessionForm(w, r, s.requirePage)
	if !ok {
		return
	}
	target := r.PostForm.Get("session")
	list, err := s.sessions.List(r.Context(), u.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	for _, x := range list {
		// Only the user's own sessions can be found this way.
		if x.PublicID == target && target != "" {
			s.endSession(r.Context(), x, "revoked by user", s.clientIP(r))
			if x.PublicID == sess.PublicID {
				session.ClearCookie(w)
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			break
		}
	}
	http.Redirect(w, r, "/settings/sessions", http.StatusSeeOther)
}

func (s *ui) passwordGet(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.requirePage(w, r)
	if !ok {
		return
	}
	s.pages.Render(w, http.StatusOK, "settings_password", web.PageData{Title: "Password", CSRFToken: sess.CSRFSecret, User: u.Name, Admin: u.Admin})
}

// passwordPost changes the password after checking the current one, and
// ends every other session of the user, live sockets included.
func (s *ui) passwordPost(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.sessionForm(w, r, s.requirePage)
	if !ok {
		return
	}
	data := web.PageData{Title: "Password", CSRFToken: sess.CSRFSecret, User: u.Name, Admin: u.Admin}
	now := s.clock.Now()
	key := "user:" + u.Name
	if ok, wait := s.loginUser.Reserve(key, now); !ok {
		retryAfter(w, wait)
		data.Error = "Too many attempts. " + waitText(wait)
		s.pages.Render(w, http.StatusTooManyRequests, "settings_password", data)
		return
	}
	_, good, err := s.checkPassword(r.Context(), u.Name, r.PostForm.Get("current_password"))
	if errors.Is(err, identity.ErrBusy) {
		s.loginUser.Release(key) // nothing was checked
		retryAfter(w, 2*time.Second)
		data.Error = "The server is busy. Try again in a moment."
		s.pages.Render(w, http.StatusServiceUnavailable, "settings_password", data)
		return
	}
	if err != nil || !good {
		s.loginUser.Failure(key, now)
		data.Error = "The current password is wrong."
		s.pages.Render(w, http.StatusUnauthorized, "settings_password", data)
		return
	}
	s.loginUser.Success(key)
	newPw := r.PostForm.Get("new_password")
	if err := identity.ValidatePassword(newPw); err != nil {
		data.Error = err.Error()
		s.pages.Render(w, http.StatusBadRequest, "settings_password", data)
		return
	}
	hash, err := s.hasher.Hash(r.Context(), newPw)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	// Only the hash is written: u was read before argon2 ran, and writing
	// it back whole would undo a disable or role change made meanwhile.
	if err := s.store.SetPassword(r.Context(), u.ID, hash); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.audit.Record(audit.Event{Type: "password.changed", IP: s.clientIP(r), User: u.Name})
	// The password opened every session of the user: this one gets a new
	// id and CSRF secret, every other one ends with its live sockets.
	ns, ok := s.rotateSession(w, r, sess, u, "password changed")
	if !ok {
		return
	}
	data.CSRFToken = ns.CSRFSecret
	ended, err := s.store.DeleteUserSessions(r.Context(), u.ID, ns.IDHash)
	if err != nil {
		s.log.Error("password changed but other sessions not ended", "user", u.Name, "err", err)
		data.Error = "Your password was changed, but other sessions could not be signed out. Sign them out on the Sessions page."
		s.pages.Render(w, http.StatusInternalServerError, "settings_password", data)
		return
	}
	for _, x := range ended {
		_ = s.hub.Revoke(r.Context(), x.PublicID, "", "password changed")
		s.audit.Record(audit.Event{Type: "session.revoked", Reason: "password changed", IP: s.clientIP(r), User: u.Name, Fields: map[string]string{"session": x.PublicID}})
	}
	data.Notice = "Password changed. Every other session was signed out."
	s.pages.Render(w, http.StatusOK, "settings_password", data)
}

// rotateSession gives the browser a new session id and CSRF secret in
// place of sess after a privilege or credential change (why), and closes
// the old id's live sockets (4001): that id no longer exists. When sess
// ended while the request ran (signed out, revoked, user disabled) nothing
// is created and the browser is sent to sign in. On false it has answered.
func (s *ui) rotateSession(w http.ResponseWriter, r *http.Request, sess store.Session, u store.User, why string) (store.Session, bool) {
	value, ns, err := s.sessions.Rotate(r.Context(), sess, u, true)
	if errors.Is(err, session.ErrUnknown) {
		session.ClearCookie(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return store.Session{}, false
	}
	if err != nil {
		s.serverError(w, r, err)
		return store.Session{}, false
	}
	s.sessions.SetCookie(w, value, ns)
	_ = s.hub.Revoke(r.Context(), sess.PublicID, "", "session rotated")
	s.audit.Record(audit.Event{Type: "session.created", Reason: why, IP: s.clientIP(r), User: u.Name,
		Fields: map[string]string{"session": ns.PublicID, "replaces": sess.PublicID}})
	return ns, true
}

// sessionForm reads a state-changing form posted from a signed-in page:
// it parses the (size-capped) body, finds the session with lookup
// (requirePage, or enrolSession for the 2FA enrolment a user may still
// owe), and checks the synchronizer token. On false it has answered.
func (s *ui) sessionForm(w http.ResponseWriter, r *http.Request,
	lookup func(http.ResponseWriter, *http.Request) (store.Session, store.User, bool)) (store.Session, store.User, bool) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "form too large or malformed", http.StatusRequestEntityTooLarge)
		return store.Session{}, store.User{}, false
	}
	sess, u, ok := lookup(w, r)
	if !ok {
		return store.Session{}, store.User{}, false
	}
	if !csrf.Equal(r.PostForm.Get("csrf_token"), sess.CSRFSecret) {
		s.refuseForm(w, r, "csrf_invalid")
		return store.Session{}, store.User{}, false
	}
	return sess, u, true
}
