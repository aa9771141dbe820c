package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Session limits.
const (
	// DefaultIdleTimeout ends a session nobody used for this long.
	DefaultIdleTimeout = 15 * time.Minute
	// maxSessions bounds the sessions kept; the least recently used goes first.
	maxSessions = 256
)

// session is one login. The token authenticates (cookie for the page, X-Token
// for the API); csrf must accompany every state-changing request of the page.
type session struct {
	token    string
	csrf     string
	user     string
	addr     netip.Addr
	hashSum  [32]byte // of the password hash at login: a new password ends the session
	created  time.Time
	lastSeen time.Time
}

// sessions is the table of logged-in sessions. It is transport state only: who
// holds which token; users, roles and everything else are read from the daemon
// on every request.
type sessions struct {
	mu     sync.Mutex
	byTok  map[string]*session
	idle   time.Duration
	now    func() time.Time
	failMu sync.Mutex
	fails  map[netip.Addr]*rate.Limiter
}

func newSessions(idle time.Duration, now func() time.Time) *sessions {
	return &sessions{byTok: map[string]*session{}, idle: idle, now: now, fails: map[netip.Addr]*rate.Limiter{}}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("web: no randomness: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (ss *sessions) create(user string, passwordHash string, addr netip.Addr) *session {
	now := ss.now()
	s := &session{token: randomToken(), csrf: randomToken(), user: user, addr: addr,
		hashSum: sha256.Sum256([]byte(passwordHash)), created: now, lastSeen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.expireLocked(now)
	if len(ss.byTok) >= maxSessions {
		var oldest *session
		for _, o := range ss.byTok {
			if oldest == nil || o.lastSeen.Before(oldest.lastSeen) {
				oldest = o
			}
		}
		delete(ss.byTok, oldest.token)
	}
	ss.byTok[s.token] = s
	return s
}

// lookup returns the live session of token and marks it used.
func (ss *sessions) lookup(token string) *session {
	if token == "" {
		return nil
	}
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byTok[token]
	if s == nil {
		return nil
	}
	if now.Sub(s.lastSeen) > ss.idle {
		delete(ss.byTok, token)
		return nil
	}
	s.lastSeen = now
	c := *s
	return &c
}

func (ss *sessions) remove(token string) {
	ss.mu.Lock()
	delete(ss.byTok, token)
	ss.mu.Unlock()
}

func (ss *sessions) expireLocked(now time.Time) {
	for t, s := range ss.byTok {
		if now.Sub(s.lastSeen) > ss.idle {
			delete(ss.byTok, t)
		}
	}
}

// Failed logins per source address: a burst of loginBurst, then one more every
// loginEvery. An address over it is refused before its password is checked.
const (
	loginBurst = 5
	loginEvery = 30 * time.Second
	maxFailSrc = 4096
)

// loginAllowed reports whether addr may try a password now.
func (ss *sessions) loginAllowed(addr netip.Addr) (bool, time.Duration) {
	ss.failMu.Lock()
	defer ss.failMu.Unlock()
	l := ss.fails[addr]
	if l == nil {
		return true, 0
	}
	now := ss.now()
	if l.TokensAt(now) >= 1 {
		return true, 0
	}
	r := l.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return false, wait
}

// failed charges a failed login to addr.
func (ss *sessions) failed(addr netip.Addr) {
	ss.failMu.Lock()
	defer ss.failMu.Unlock()
	l := ss.fails[addr]
	if l == nil {
		if len(ss.fails) >= maxFailSrc {
			// Full of sources that failed once: forget the ones that recovered.
			now := ss.now()
			for a, x := range ss.fails {
				if x.TokensAt(now) >= loginBurst {
					delete(ss.fails, a)
				}
			}
			if len(ss.fails) >= maxFailSrc {
				clear(ss.fails)
			}
		}
		l = rate.NewLimiter(rate.Every(loginEvery), loginBurst)
		ss.fails[addr] = l
	}
	l.AllowN(ss.now(), 1)
}

func sameSecret(a, b string) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
