package web

import (
	"crypto/sha256"
	"net/http"
	"time"

	"keepstate/config"
)

// sessionCookie carries the session token for the page. Secure (HTTPS only),
// HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it).
const sessionCookie = "keepstate_session"

func setSessionCookie(w http.ResponseWriter, token string, idle time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/admin/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(idle / time.Second * 8)})
}

func clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/admin/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

func sameHashSum(s *session, u config.User) bool {
	return sha256.Sum256([]byte(u.PasswordHash)) == s.hashSum
}

// login checks a user name and password. Failures are rate-limited per source
// address, and every attempt is written to the security log. With no user in
// UserDB.cfg nobody logs in: there is no default password.
func (s *Server) login(r *http.Request, name, password string) (*session, error) {
	addr := remoteAddr(r)
	if ok, wait := s.ss.loginAllowed(addr); !ok {
		s.d.SecurityLog("web_login_limited", addr, "web administration: login as %q from %s refused: too many failed logins, next try in %v", name, addr, wait.Round(time.Second))
		return nil, errorf(codeTooMany, "too many failed logins from %s: try again in %v", addr, wait.Round(time.Second))
	}
	users := s.d.Users()
	if len(users) == 0 {
		s.d.SecurityLog("web_login_failed", addr, "web administration: login as %q from %s refused: no user exists yet", name, addr)
		return nil, errorf(codeAuth, "no user can log in yet: create one on the firewall with 'keepstate user add NAME --role admin'")
	}
	var u *config.User
	for i := range users {
		if users[i].Name == name {
			u = &users[i]
		}
	}
	hash := dummyHash
	if u != nil && u.PasswordHash != "" {
		hash = u.PasswordHash
	}
	s.verify <- struct{}{}
	ok, err := checkPassword(hash, password)
	<-s.verify
	if err != nil || !ok || u == nil || u.PasswordHash == "" {
		s.ss.failed(addr)
		why := "wrong user name or password"
		if err != nil && u != nil {
			why = "stored hash unusable: " + err.Error()
		}
		s.d.SecurityLog("web_login_failed", addr, "web administration: login as %q from %s failed: %s", name, addr, why)
		return nil, errorf(codeAuth, "wrong user name or password")
	}
	sess := s.ss.create(u.Name, u.PasswordHash, addr)
	s.d.SecurityLog("web_login", addr, "web administration: %s (%s) logged in from %s", u.Name, u.Role, addr)
	return sess, nil
}
