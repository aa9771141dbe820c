package web

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"keepstate/config"
	"keepstate/daemon"
	"keepstate/dataplane"
	"keepstate/firewall"
	"keepstate/packet"
	"keepstate/synth"
)

// fakePlane stands in for NFQUEUE: tests hand it packets, it runs them through
// the engine and the reporter as a worker does.
type fakePlane struct {
	eng  *firewall.Engine
	rep  *dataplane.Reporter
	mu   sync.Mutex
	p    packet.Parsed
	once sync.Once
	done chan struct{}
}

func (f *fakePlane) Start(context.Context) error { return nil }
func (f *fakePlane) Close() error                { f.once.Do(func() { close(f.done) }); return nil }
func (f *fakePlane) Detach() error               { return f.Close() }
func (f *fakePlane) Wait() error                 { <-f.done; return nil }
func (f *fakePlane) Backend() string             { return "fake" }
func (f *fakePlane) Stats() daemon.PlaneStats    { return daemon.PlaneStats{Backend: "fake"} }

func (f *fakePlane) inject(frame []byte) firewall.Decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := time.Now().UnixNano()
	d := f.eng.Decide(frame, packet.LinkRaw, -1, t, &f.p)
	f.rep.Packet(t, frame, packet.LinkRaw, &f.p, &d)
	return d
}

// cheapHash is a valid argon2id hash with small parameters, so that tests log
// in quickly; the production parameters are HashPassword's.
func cheapHash(password string) string {
	return encodeHash(1024, 1, 1, []byte("0123456789abcdef"), password)
}

const (
	adminPass  = "correct horse battery"
	readerPass = "read only but long"
)

// env is one daemon with its web administration, in a temporary folder.
type env struct {
	t      *testing.T
	dir    string
	cfgDir string
	d      *daemon.Daemon
	s      *Server
	plane  *fakePlane
	url    string
	pool   *x509.CertPool
	stderr *syncBuf
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type envOptions struct {
	users        []config.User
	filtersInput bool
	edit         func(b *config.Bundle)
}

func defaultUsers() []config.User {
	return []config.User{
		{ID: 1, Name: "admin", Role: config.RoleAdmin, PasswordHash: cheapHash(adminPass)},
		{ID: 2, Name: "reader", Role: config.RoleReadOnly, PasswordHash: cheapHash(readerPass)},
	}
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.users == nil {
		o.users = defaultUsers()
	}
	dir := t.TempDir()
	e := &env{t: t, dir: dir, cfgDir: filepath.Join(dir, "etc"), stderr: &syncBuf{}}
	b := config.NewBundle(config.Default())
	b.Users = o.users
	b.Host.ConfirmTimeout = 5 * time.Second
	if o.edit != nil {
		o.edit(b)
	}
	if err := config.InstallBundle(e.cfgDir, b); err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(daemon.Options{
		ConfigPath: e.cfgDir, LogDir: filepath.Join(dir, "log"), SocketPath: filepath.Join(dir, "admin.sock"),
		NewPlane: func(eng *firewall.Engine, rep *dataplane.Reporter) (daemon.DataPlane, error) {
			e.plane = &fakePlane{eng: eng, rep: rep, done: make(chan struct{})}
			return e.plane, nil
		},
		Stderr: e.stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(d, Options{Listen: "127.0.0.1:0", StateDir: filepath.Join(dir, "state"), FiltersInput: o.filtersInput, Stderr: e.stderr})
	if err != nil {
		t.Fatal(err)
	}
	d2 := d
	e.d, e.s = d2, s
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Close()
		d.Stop()
	})
	e.url = "https://" + s.Addr().String()
	e.pool = x509.NewCertPool()
	leaf, err := x509.ParseCertificate(s.Certificate().Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	e.pool.AddCert(leaf)
	return e
}

// client is one HTTP client trusting the server's certificate, with its own
// cookie jar; newConn makes every request use a new TCP connection.
func (e *env) client(newConn bool) *http.Client {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool, ServerName: "127.0.0.1"}, DisableKeepAlives: newConn}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// rpcReply is a decoded JSON-RPC answer.
type rpcReply struct {
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
	status int
	header http.Header
	closed bool // the server closes the connection after this answer
}

// rpc calls method with params (a Go value) and token as X-Token.
func (e *env) rpc(c *http.Client, token, method string, params any) rpcReply {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequest("POST", e.url+"/admin/api/jsonrpc/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Token", token)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	var r rpcReply
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &r); err != nil {
		e.t.Fatalf("%s: answer %q: %v", method, raw, err)
	}
	r.status, r.header, r.closed = resp.StatusCode, resp.Header, resp.Close
	return r
}

// ok calls method and fails the test on an error; it decodes the result into
// out when out is not nil.
func (e *env) ok(c *http.Client, token, method string, params, out any) rpcReply {
	e.t.Helper()
	r := e.rpc(c, token, method, params)
	if r.Error != nil {
		e.t.Fatalf("%s: error %d %s", method, r.Error.Code, r.Error.Message)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result, out); err != nil {
			e.t.Fatalf("%s: result %s: %v", method, r.Result, err)
		}
	}
	return r
}

// fails calls method and wants the error code.
func (e *env) fails(c *http.Client, token, method string, params any, code int) *rpcError {
	e.t.Helper()
	r := e.rpc(c, token, method, params)
	if r.Error == nil {
		e.t.Fatalf("%s: succeeded (%s), want error %d", method, r.Result, code)
	}
	if r.Error.Code != code {
		e.t.Fatalf("%s: error %d %q, want code %d", method, r.Error.Code, r.Error.Message, code)
	}
	return r.Error
}

func (e *env) login(c *http.Client, user, pass string) string {
	e.t.Helper()
	var res loginResult
	e.ok(c, "", "Session.login", map[string]any{"userName": user, "password": pass, "application": map[string]string{"name": "test"}}, &res)
	if res.Token == "" {
		e.t.Fatal("no token")
	}
	return res.Token
}

// state is what must not move when a change is refused.
func (e *env) state() string {
	st := e.d.Status()
	data, _ := os.ReadFile(filepath.Join(e.cfgDir, "winroute.cfg"))
	return fmt.Sprintf("%s gen %d pending %v file %x", st.Config.Hash, st.Config.Generation, st.Pending != nil, data)
}

func (e *env) log(name string) string {
	data, _ := os.ReadFile(filepath.Join(e.dir, "log", name))
	return string(data)
}

// waitLog waits for a line containing want in log name (lines are buffered).
func (e *env) waitLog(name, want string) {
	e.t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		e.d.LogLines(name, -1, 1, "") // flushes
		if strings.Contains(e.log(name+".log"), want) {
			return
		}
	}
	e.t.Fatalf("%s.log lacks %q:\n%s", name, want, e.log(name+".log"))
}

// conversation makes a tracked TCP connection client -> server.
func (e *env) conversation(client, server string, seed uint32) *synth.Conv {
	c := synth.NewConv(netip.MustParseAddrPort(client), netip.MustParseAddrPort(server), seed)
	for _, step := range []struct {
		from  synth.Side
		flags packet.TCPFlags
	}{{synth.FromClient, packet.SYN}, {synth.FromServer, packet.SYN | packet.ACK}, {synth.FromClient, packet.ACK}} {
		if d := e.plane.inject(c.Segment(step.from, step.flags, 0)); d.Action != firewall.Accept {
			e.t.Fatalf("handshake packet dropped: %v", d.Reason)
		}
	}
	return c
}

type netipAddrPort = netip.AddrPort

func parseAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// cfg is the configuration in force.
func (e *env) cfg() *config.Config {
	e.t.Helper()
	b, err := e.d.Bundle()
	if err != nil {
		e.t.Fatal(err)
	}
	return b.Config
}
