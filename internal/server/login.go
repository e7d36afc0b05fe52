package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wsguard/wsguard/internal/audit"
	"github.com/wsguard/wsguard/internal/csrf"
	"github.com/wsguard/wsguard/internal/guard"
	"github.com/wsguard/wsguard/internal/identity"
	"github.com/wsguard/wsguard/internal/session"
	"github.com/wsguard/wsguard/internal/store"
	"github.com/wsguard/wsguard/internal/web"
)

// loginFailed is the one message every failed login gets (no enumeration).
const loginFailed = "Wrong username or password."

func (s *ui) clientIP(r *http.Request) string { return s.proxies.ClientIP(r) }

func (s *ui) loginGet(w http.ResponseWriter, r *http.Request) {
	if _, _, err := s.fullSession(r); err == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.pages.Render(w, http.StatusOK, "login", web.PageData{Title: "Sign in", CSRFToken: csrf.EnsurePre(w, r)})
}

// refuseForm answers a form whose CSRF check failed: 403, nothing changed.
func (s *ui) refuseForm(w http.ResponseWriter, r *http.Request, reason string) {
	s.audit.Record(audit.Event{Type: "form.refused", Reason: reason, IP: s.clientIP(r), Fields: map[string]string{"path": r.URL.Path}})
	s.metrics.Refusals.WithLabelValues(reason).Inc()
	s.errorPage(w, r, http.StatusForbidden, "Request refused", "This form has expired or did not come from this site. Reload the page and try again.")
}

func retryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
}

func (s *ui) loginPost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "form too large or malformed", http.StatusRequestEntityTooLarge)
		return
	}
	if csrf.CheckPre(r, r.PostForm.Get("csrf_token")) != nil {
		s.refuseForm(w, r, "csrf_invalid")
		return
	}
	ip := s.clientIP(r)
	name := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	now := s.clock.Now()
	userKey := "user:" + strings.ToLower(name)
	// limits.logins_per_minute: a token bucket per IP on every attempt, so
	// a password sprayer pays even while each guess is a first failure.
	if ok, wait := s.loginRate.Allow(ip, now); !ok {
		s.audit.Record(audit.Event{Type: "login.throttled", Reason: "login_rate", IP: ip, User: name})
		s.metrics.Logins.WithLabelValues("throttled").Inc()
		s.metrics.RateLimited.WithLabelValues("login").Inc()
		retryAfter(w, wait)
		s.pages.Render(w, http.StatusTooManyRequests, "login", web.PageData{Title: "Sign in", CSRFToken: csrf.EnsurePre(w, r), Username: typedName(name), Error: "Too many attempts. " + waitText(wait)})
		return
	}
	// The attempt is reserved on both keys before the password is hashed,
	// so parallel guesses share the allowance instead of all passing a
	// check while argon2 runs for the others.
	ipKey := "ip:" + ip
	if ok, wait := s.reserveLogin(userKey, ipKey, now); !ok {
		s.audit.Record(audit.Event{Type: "login.throttled", IP: ip, User: name})
		s.metrics.Logins.WithLabelValues("throttled").Inc()
		retryAfter(w, wait)
		s.pages.Render(w, http.StatusTooManyRequests, "login", web.PageData{Title: "Sign in", CSRFToken: csrf.EnsurePre(w, r), Username: typedName(name), Error: "Too many attempts. " + waitText(wait)})
		return
	}
	u, ok, err := s.checkPassword(r.Context(), name, password)
	if errors.Is(err, identity.ErrBusy) {
		// Not an attempt: nothing was checked.
		s.loginUser.Release(userKey)
		s.loginIP.Release(ipKey)
		s.metrics.Logins.WithLabelValues("busy").Inc()
		retryAfter(w, 2*time.Second)
		s.pages.Render(w, http.StatusServiceUnavailable, "login", web.PageData{Title: "Sign in", CSRFToken: csrf.EnsurePre(w, r), Username: typedName(name), Error: "The server is busy. Try again in a moment."})
		return
	}
	if err != nil || !ok {
		if s.loginUser.Failure(userKey, now) {
			s.audit.Record(audit.Event{Type: "login.locked", IP: ip, User: name})
		}
		s.loginIP.Failure(ipKey, now)
		s.audit.Record(audit.Event{Type: "login.failed", IP: ip, User: name})
		s.metrics.Logins.WithLabelValues("failed").Inc()
		s.pages.Render(w, http.StatusUnauthorized, "login", web.PageData{Title: "Sign in", CSRFToken: csrf.EnsurePre(w, r), Username: typedName(name), Error: loginFailed})
		return
	}
	s.loginUser.Success(userKey)
	// The IP's count stays: a sprayer who knows one password must not
	// clear the failures of all the accounts it guessed at.
	s.loginIP.Release(ipKey)

	// A fresh session id at login; any session the browser carried ends (I3).
	if old, err := s.sessions.Lookup(r.Context(), r); err == nil {
		_ = s.store.DeleteSession(r.Context(), old.IDHash)
		_ = s.hub.Revoke(r.Context(), old.PublicID, "", "signed in again")
	}
	fullyIn := u.TOTPSecret == "" && !s.needs2FA(u)
	value, sess, err := s.sessions.Create(r.Context(), u, fullyIn, ip, r.UserAgent())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if same, err := s.sameCredential(r.Context(), u, sess); err != nil {
		s.serverError(w, r, err)
		return
	} else if !same {
		s.audit.Record(audit.Event{Type: "login.failed", Reason: "credential changed", IP: ip, User: name})
		s.metrics.Logins.WithLabelValues("failed").Inc()
		s.pages.Render(w, http.StatusUnauthorized, "login", web.PageData{Title: "Sign in", CSRFToken: csrf.EnsurePre(w, r), Username: typedName(name), Error: loginFailed})
		return
	}
	s.sessions.SetCookie(w, value, sess)
	s.audit.Record(audit.Event{Type: "login.ok", IP: ip, User: u.Name, Fields: map[string]string{"session": sess.PublicID, "second_factor": strconv.FormatBool(!fullyIn)}})
	s.audit.Record(audit.Event{Type: "session.created", IP: ip, User: u.Name, Fields: map[string]string{"session": sess.PublicID, "second_factor": strconv.FormatBool(!fullyIn)}})
	s.metrics.Logins.WithLabelValues("ok").Inc()
	switch {
	case u.TOTPSecret != "":
		http.Redirect(w, r, "/login/2fa", http.StatusSeeOther)
	case !fullyIn:
		http.Redirect(w, r, "/settings/2fa", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

// sameCredential reads u again once its new session sess exists, and ends
// sess when the password changed or the user was disabled since u was read.
// A password change or disable ends every session it finds; a login that
// verified the old password while argon2 ran for the change may create its
// session just after that. Either the change finds this session, or this
// read sees the change: no session opened with an old password survives.
func (s *ui) sameCredential(ctx context.Context, u store.User, sess store.Session) (bool, error) {
	cur, err := s.store.UserByID(ctx, u.ID)
	if err == nil && !cur.Disabled && cur.PasswordHash == u.PasswordHash {
		return true, nil
	}
	_ = s.store.DeleteSession(ctx, sess.IDHash)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // the user was deleted meanwhile
	}
	return false, err
}

// reserveLogin reserves one password attempt on the account key and on the
// IP key, or neither: a refusal by one releases the other.
func (s *ui) reserveLogin(userKey, ipKey string, now time.Time) (bool, time.Duration) {
	ok, wait := s.loginUser.Reserve(userKey, now)
	if !ok {
		return false, wait
	}
	if ok, wait := s.loginIP.Reserve(ipKey, now); !ok {
		s.loginUser.Release(userKey)
		return false, wait
	}
	return true, 0
}

// checkPassword verifies name and password with the same work whether the
// user exists or not (I2): an unknown or disabled user still costs one hash.
func (s *ui) checkPassword(ctx context.Context, name, password string) (store.User, bool, error) {
	if len(password) > 1024 || name == "" || len(name) > 64 {
		// Refused before hashing: a huge password must not cost argon2 time.
		// Callers have reserved the attempt, so this counts as a failure
		// like any wrong password.
		return store.User{}, false, nil
	}
	u, err := s.store.UserByName(ctx, name)
	if err != nil {
		_, derr := s.hasher.VerifyDummy(ctx, password)
		if errors.Is(derr, identity.ErrBusy) {
			return store.User{}, false, derr
		}
		return store.User{}, false, nil
	}
	ok, err := s.hasher.Verify(ctx, u.PasswordHash, password)
	if err != nil {
		return store.User{}, false, err
	}
	if u.Disabled {
		return store.User{}, false, nil
	}
	return u, ok, nil
}

func (s *ui) needs2FA(u store.User) bool {
	switch s.cfg.Identity.Require2FA {
	case "all":
		return true
	case "none":
		return false
	}
	return u.Admin
}

// fullSession returns the signed-in session and its user, second factor done.
func (s *ui) fullSession(r *http.Request) (store.Session, store.User, error) {
	sess, u, err := s.anySession(r)
	if err != nil {
		return sess, u, err
	}
	if !sess.TwoFADone {
		return sess, u, errSecondFactor
	}
	return sess, u, nil
}

var errSecondFactor = errors.New("second factor pending")

// anySession returns the session even when the second factor is pending.
// An error is a *guard.Refusal: 503 when the store could not tell.
func (s *ui) anySession(r *http.Request) (store.Session, store.User, error) {
	sess, u, rf := s.creds.SignedIn(r.Context(), guard.SessionCookie(r))
	if rf != nil {
		return sess, u, rf
	}
	return sess, u, nil
}

// storeDown reports whether err is a session check the store could not make.
func storeDown(err error) bool {
	var rf *guard.Refusal
	return errors.As(err, &rf) && rf.Status == http.StatusServiceUnavailable
}

// unavailablePage answers a page whose session the store could not check:
// a database outage is not a reason to send a signed-in user to /login.
func (s *ui) unavailablePage(w http.ResponseWriter) {
	retryAfter(w, guard.UnavailableRetryAfter)
	s.pages.Render(w, http.StatusServiceUnavailable, "error", web.PageData{Title: "Try again later", Error: "The server cannot reach its database. Try again in a moment."})
}

// requirePage finds the full session for a page, or redirects to where the
// browser must go next and returns false.
func (s *ui) requirePage(w http.ResponseWriter, r *http.Request) (store.Session, store.User, bool) {
	sess, u, err := s.fullSession(r)
	switch {
	case err == nil:
		return sess, u, true
	case errors.Is(err, errSecondFactor) && u.TOTPSecret != "":
		http.Redirect(w, r, "/login/2fa", http.StatusSeeOther)
	case errors.Is(err, errSecondFactor):
		http.Redirect(w, r, "/settings/2fa", http.StatusSeeOther)
	case storeDown(err):
		s.unavailablePage(w)
	default:
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	}
	return sess, u, false
}

func (s *ui) login2FAGet(w http.ResponseWriter, r *http.Request) {
	sess, u, err := s.anySession(r)
	if err != nil || u.TOTPSecret == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if sess.TwoFADone {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.pages.Render(w, http.StatusOK, "login_2fa", web.PageData{Title: "Two-factor code", CSRFToken: sess.CSRFSecret})
}

func (s *ui) login2FAPost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "form too large or malformed", http.StatusRequestEntityTooLarge)
		return
	}
	sess, u, err := s.anySession(r)
	if err != nil || u.TOTPSecret == "" || sess.TwoFADone {
		if err == nil && !csrf.Equal(r.PostForm.Get("csrf_token"), sess.CSRFSecret) {
			s.refuseForm(w, r, "csrf_invalid")
			return
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if !csrf.Equal(r.PostForm.Get("csrf_token"), sess.CSRFSecret) {
		s.refuseForm(w, r, "csrf_invalid")
		return
	}
	ip := s.clientIP(r)
	now := s.clock.Now()
	key := "totp:" + u.Name
	// Reserved before checking, like the password (parallel guesses).
	if ok, wait := s.totpUser.Reserve(key, now); !ok {
		s.audit.Record(audit.Event{Type: "2fa.throttled", IP: ip, User: u.Name})
		retryAfter(w, wait)
		s.pages.Render(w, http.StatusTooManyRequests, "login_2fa", web.PageData{Title: "Two-factor code", CSRFToken: sess.CSRFSecret, Error: "Too many attempts. " + waitText(wait)})
		return
	}
	code := strings.TrimSpace(r.PostForm.Get("code"))
	ok, how := s.checkSecondFactor(r.Context(), u, code, now)
	if !ok {
		s.totpUser.Failure(key, now)
		s.audit.Record(audit.Event{Type: "2fa.failed", IP: ip, User: u.Name})
		s.pages.Render(w, http.StatusUnauthorized, "login_2fa", web.PageData{Title: "Two-factor code", CSRFToken: sess.CSRFSecret, Error: "That code is not valid."})
		return
	}
	s.totpUser.Success(key)
	if how == "recovery" {
		s.audit.Record(audit.Event{Type: "2fa.recovery_used", IP: ip, User: u.Name})
	}
	// The session id changes again now that the user holds full rights (I3).
	if _, ok := s.rotateSession(w, r, sess, u, "second factor"); !ok {
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// checkSecondFactor accepts a TOTP code (each time step once) or a recovery
// code (each code once).
func (s *ui) checkSecondFactor(ctx context.Context, u store.User, code string, now time.Time) (bool, string) {
	if len(code) == 6 {
		step, ok := identity.CheckTOTP(u.TOTPSecret, code, now, u.TOTPLastStep)
		if !ok {
			return false, ""
		}
		accepted, err := s.store.AcceptTOTPStep(ctx, u.ID, step)
		return err == nil && accepted, "totp"
	}
	if len(code) < 8 || len(code) > 32 {
		return false, ""
	}
	used, err := s.store.UseRecoveryCode(ctx, u.ID, identity.HashRecoveryCode(code))
	return err == nil && used, "recovery"
}

func (s *ui) logoutPost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "form too large or malformed", http.StatusRequestEntityTooLarge)
		return
	}
	sess, err := s.sessions.Lookup(r.Context(), r)
	if err != nil {
		session.ClearCookie(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if !csrf.Equal(r.PostForm.Get("csrf_token"), sess.CSRFSecret) {
		s.refuseForm(w, r, "csrf_invalid")
		return
	}
	s.endSession(r.Context(), sess, "logout", s.clientIP(r))
	session.ClearCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// endSession deletes a session and closes its live sockets on every node.
func (s *ui) endSession(ctx context.Context, sess store.Session, reason, ip string) {
	_ = s.store.DeleteSession(ctx, sess.IDHash)
	_ = s.hub.Revoke(ctx, sess.PublicID, "", reason)
	s.audit.Record(audit.Event{Type: "session.revoked", Reason: reason, IP: ip, User: sess.Username, Fields: map[string]string{"session": sess.PublicID}})
}

func (s *ui) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("request failed", "path", r.URL.Path, "err", err)
	s.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "The server could not complete this request. Try again.")
}

// errorPage answers an error page that keeps the navigation and the
// signed-in user when the request carries a full session, so a wrong link
// or an expired form does not look like being signed out.
func (s *ui) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	data := web.PageData{Title: title, Error: msg}
	if sess, u, err := s.fullSession(r); err == nil {
		data.User, data.Admin, data.CSRFToken = u.Name, u.Admin, sess.CSRFSecret
	}
	s.pages.Render(w, status, "error", data)
}

// waitText tells a throttled user how long to wait, in words.
func waitText(d time.Duration) string {
	secs := int((d + time.Second - 1) / time.Second)
	switch {
	case secs <= 1:
		return "Try again in a second."
	case secs < 120:
		return "Try again in " + strconv.Itoa(secs) + " seconds."
	default:
		return "Try again in " + strconv.Itoa((secs+59)/60) + " minutes."
	}
}

// typedName is the username put back into a form after an error, so the
// user retypes only the password; a value no username could be is dropped.
func typedName(name string) string {
	if len(name) > 64 {
		return ""
	}
	return name
}
