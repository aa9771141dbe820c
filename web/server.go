// Package web is keepstate's web administration: an HTTPS server with sessions
// for the users of UserDB.cfg, a JSON-RPC 2.0 API at /admin/api/jsonrpc/ in the
// shape of Kerio Control's, and a page served from the binary.
//
// It holds no state of its own beyond who is logged in: every method reads the
// daemon and every change goes through daemon.Change, the path `keepstate config
// import` takes (the configuration's own checks, confirm-or-revert). The admin
// socket and this server are two transports of the same daemon operations.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"keepstate/daemon"
)

// DefaultListen is Kerio Control's administration port, on loopback: an operator
// opens it wider on purpose.
const DefaultListen = "127.0.0.1:4081"

// DefaultStateDir holds the self-signed certificate when no --state says where.
const DefaultStateDir = "/var/lib/keepstate"

// Options configure the server.
type Options struct {
	Listen       string // host:port; DefaultListen when empty
	CertFile     string // PEM; with KeyFile, the operator's certificate
	KeyFile      string
	StateDir     string        // where a self-signed certificate is kept
	IdleTimeout  time.Duration // session idle expiry; DefaultIdleTimeout when 0
	FiltersInput bool          // keepstate filters this host's own traffic (run --input)
	Stderr       io.Writer
	Now          func() time.Time
}

// Server is the web administration of one daemon.
type Server struct {
	d        *daemon.Daemon
	o        Options
	now      func() time.Time
	ss       *sessions
	ln       net.Listener
	srv      *http.Server
	cert     tls.Certificate
	uploads  uploads
	closeMu  sync.Once
	closeErr error
	// verify bounds the password checks running at once: each takes 19 MiB.
	verify chan struct{}
}

// New listens on o.Listen with TLS and prepares the handlers; Start serves.
// The certificate's fingerprint is printed on o.Stderr.
func New(d *daemon.Daemon, o Options) (*Server, error) {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	s := &Server{d: d, o: o, now: o.Now, ss: newSessions(o.IdleTimeout, o.Now), verify: make(chan struct{}, 2)}
	cert, created, err := loadOrCreateCert(o.CertFile, o.KeyFile, o.StateDir, o.Listen, o.Now())
	if err != nil {
		return nil, fmt.Errorf("web administration certificate: %w", err)
	}
	s.cert = cert
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("web administration: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connStartKey{}, o.Now())
		},
		ErrorLog: nil,
	}
	how := "certificate " + o.CertFile
	if o.CertFile == "" {
		how = "self-signed certificate " + o.StateDir + "/" + SelfSignedCert
		if created {
			how += " (created now)"
		}
	}
	fmt.Fprintf(o.Stderr, "keepstate: web administration on https://%s/admin/ (%s, SHA-256 fingerprint %s)\n", ln.Addr(), how, Fingerprint(cert))
	if len(d.Users()) == 0 {
		fmt.Fprintf(o.Stderr, "keepstate: no web administration user yet: create one with 'keepstate user add NAME --role admin'\n")
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Certificate is the certificate the server presents.
func (s *Server) Certificate() tls.Certificate { return s.cert }

// Start serves in the background.
func (s *Server) Start() {
	go func() {
		err := s.srv.ServeTLS(s.ln, "", "")
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(s.o.Stderr, "keepstate: error: web administration: %v\n", err)
		}
	}()
}

// Close stops the server, ending requests in progress after a few seconds (the
// live feeds do not end by themselves). Safe to call more than once.
func (s *Server) Close() error {
	s.closeMu.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = s.srv.Close()
		}
		s.ln.Close()
		s.closeErr = err
	})
	return s.closeErr
}

type connStartKey struct{}

// connStart is when the TCP connection of r was accepted.
func connStart(r *http.Request) time.Time {
	t, _ := r.Context().Value(connStartKey{}).(time.Time)
	return t
}

// remoteAddr is the peer's address (never a header: no proxy is trusted).
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// Handler routes every path of the web administration.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/api/jsonrpc/", s.serveRPC)
	mux.HandleFunc("GET /admin/api/drops", s.serveDropStream)
	mux.HandleFunc("GET /admin/api/export", s.serveExport)
	s.pageRoutes(mux)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
	})
	return securityHeaders(mux)
}

// securityHeaders are on every answer: scripts and styles only from this
// origin (no inline script, no eval), no framing, no sniffing, no referrer, and
// HSTS since the server only speaks HTTPS.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Strict-Transport-Security", "max-age=31536000")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}
