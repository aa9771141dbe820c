package daemon

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"keepstate/dataplane"
	"keepstate/firewall"
	"keepstate/packet"
)

// fakePlane stands in for NFQUEUE: tests hand it packets, it runs them through
// the engine and the reporter exactly as a worker does, with the test's clock.
type fakePlane struct {
	eng *firewall.Engine
	rep *dataplane.Reporter

	mu       sync.Mutex
	p        packet.Parsed
	packets  uint64
	once     sync.Once
	done     chan struct{}
	closed   bool
	detached bool // stopped by Detach: hooks left for the next start
}

func (f *fakePlane) Start(context.Context) error {
	f.done = make(chan struct{})
	return nil
}

func (f *fakePlane) Close() error {
	f.once.Do(func() {
		f.mu.Lock()
		f.closed = true
		f.mu.Unlock()
		close(f.done)
	})
	return nil
}

func (f *fakePlane) Detach() error {
	f.mu.Lock()
	f.detached = true
	f.mu.Unlock()
	return f.Close()
}

func (f *fakePlane) Wait() error { <-f.done; return nil }

func (f *fakePlane) Backend() string { return "fake" }

// Stats returns fixed kernel-side figures so tests can see them travel.
func (f *fakePlane) Stats() PlaneStats {
	f.mu.Lock()
	n := f.packets
	f.mu.Unlock()
	return PlaneStats{
		Backend: "fake",
		Packets: n, QueueDropped: 3, UserDropped: 2, SocketOverflows: 1, NetlinkErrors: 4,
		Latency: LatencyHistogram{
			Bounds: []time.Duration{time.Microsecond, 2 * time.Microsecond},
			Counts: []uint64{5, 2, 1},
		},
	}
}

// inject decides one raw IP packet at time now.
func (f *fakePlane) inject(frame []byte, now time.Time) firewall.Decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		panic("packet injected into a closed plane")
	}
	f.packets++
	t := now.UnixNano()
	d := f.eng.Decide(frame, packet.LinkRaw, -1, t, &f.p)
	f.rep.Packet(t, frame, packet.LinkRaw, &f.p, &d)
	return d
}

// clock is a hand-advanced clock for the daemon.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is one daemon in a temporary folder.
type harness struct {
	t      *testing.T
	dir    string
	opts   Options
	d      *Daemon
	plane  *fakePlane
	clk    *clock
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var testEpoch = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// newHarness writes testdata/cfgName as the --config file of a new daemon.
func newHarness(t *testing.T, cfgName string) *harness {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "winroute.cfg")
	copyFile(t, filepath.Join("testdata", cfgName), cfg)
	h := &harness{t: t, dir: dir, clk: &clock{t: testEpoch}, stderr: &syncBuffer{}}
	h.opts = Options{
		ConfigPath: cfg,
		LogDir:     filepath.Join(dir, "log"),
		StatePath:  filepath.Join(dir, "state", "conntrack.snap"),
		SocketPath: filepath.Join(dir, "run", "admin.sock"),
		Stderr:     h.stderr,
		Now:        h.clk.now,
	}
	return h
}

// start builds and starts the daemon with a fake plane.
func (h *harness) start() {
	h.t.Helper()
	o := h.opts
	o.NewPlane = func(eng *firewall.Engine, rep *dataplane.Reporter) (DataPlane, error) {
		h.plane = &fakePlane{eng: eng, rep: rep}
		return h.plane, nil
	}
	d, err := New(o)
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	if err := d.Start(context.Background()); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
	h.d = d
	h.t.Cleanup(func() { d.Stop() })
}

func (h *harness) stop() {
	h.t.Helper()
	if err := h.d.Stop(); err != nil {
		h.t.Fatalf("Stop: %v", err)
	}
}

// call sends one request over the socket.
func (h *harness) call(req *Request, result any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Call(ctx, h.opts.SocketPath, req, result)
}

func (h *harness) mustCall(req *Request, result any) {
	h.t.Helper()
	if err := h.call(req, result); err != nil {
		h.t.Fatalf("%s: %v", req.Cmd, err)
	}
}

func (h *harness) status() *Status {
	h.t.Helper()
	var s Status
	h.mustCall(&Request{Cmd: CmdStatus}, &s)
	return &s
}

func (h *harness) readLog(name string) string {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.opts.LogDir, name))
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tcpConn builds the packets of one TCP connection.
type tcpConn struct {
	client, server netip.AddrPort
	cseq, sseq     uint32
}

func newTCPConn(client, server string) *tcpConn {
	return &tcpConn{client: netip.MustParseAddrPort(client), server: netip.MustParseAddrPort(server), cseq: 1000, sseq: 5000}
}

func (c *tcpConn) fromClient(flags packet.TCPFlags, payload string) []byte {
	b := packet.AppendTCP(nil, packet.TCPSpec{Src: c.client, Dst: c.server, Seq: c.cseq, Ack: c.sseq, Flags: flags, Window: 65535, Payload: []byte(payload)})
	c.cseq += uint32(len(payload))
	if flags&packet.SYN != 0 {
		c.cseq++
	}
	return b
}

func (c *tcpConn) fromServer(flags packet.TCPFlags, payload string) []byte {
	b := packet.AppendTCP(nil, packet.TCPSpec{Src: c.server, Dst: c.client, Seq: c.sseq, Ack: c.cseq, Flags: flags, Window: 65535, Payload: []byte(payload)})
	c.sseq += uint32(len(payload))
	if flags&packet.SYN != 0 {
		c.sseq++
	}
	return b
}

// handshake opens c through the plane; every packet must be accepted.
func (h *harness) handshake(c *tcpConn) {
	h.t.Helper()
	for i, frame := range [][]byte{
		c.fromClient(packet.SYN, ""),
		c.fromServer(packet.SYN|packet.ACK, ""),
		c.fromClient(packet.ACK, ""),
	} {
		if d := h.plane.inject(frame, h.clk.now()); d.Action != firewall.Accept {
			h.t.Fatalf("handshake packet %d: %v %v", i, d.Action, d.Reason)
		}
	}
}
