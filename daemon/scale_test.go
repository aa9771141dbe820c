package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"keepstate/firewall"
	"keepstate/packet"
)

// TestScale measures what an administrator waits for, and what traffic suffers,
// with a large table: a reload, the snapshot on stop and its restore on start,
// and a full listing over the socket. Run it with
//
//	KEEPSTATE_SCALE=100000,1000000 go test -run TestScale -v ./daemon/
//
// On the 2-core development machine, with 1M connections: an import (compile,
// apply, keep every connection, write --config) 100-145 ms, during which one
// packet of an established connection waited at most ~3 ms (CloseIf copies a
// shard under its lock); stop with snapshot 186 ms (118 MB, 118 bytes per
// connection); start with restore 1.05 s; a filtered listing limited to 10
// 1.2 s; the whole table as JSON over the socket 16 s.
func TestScale(t *testing.T) {
	sizes := os.Getenv("KEEPSTATE_SCALE")
	if sizes == "" {
		t.Skip("set KEEPSTATE_SCALE=N[,N...] to measure")
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(s, func(t *testing.T) { measureScale(t, n) })
	}
}

// scaleConfig is testdata/base.cfg (or timeout.cfg) without per-source limits
// and with room for n connections.
func scaleConfig(t *testing.T, name string, n int) []byte {
	b := string(readFile(t, filepath.Join("testdata", name)))
	b = strings.Replace(b, `<variable name="AntiSpoofing">0</variable>`, `<variable name="AntiSpoofing">0</variable>
    <variable name="ConnLimitPerSource">0</variable>
    <variable name="NewConnLimitPerSourcePerMinute">0</variable>`, 1)
	if strings.Contains(b, `<table name="ConnTrack">`) {
		b = strings.Replace(b, `<table name="ConnTrack">`, fmt.Sprintf(`<table name="ConnTrack">
    <variable name="MaxConnections">%d</variable>`, 2*n), 1)
	} else {
		b = strings.Replace(b, `<table name="TrafficPolicy">`, fmt.Sprintf(`<table name="ConnTrack">
    <variable name="MaxConnections">%d</variable>
  </table>
  <table name="TrafficPolicy">`, 2*n), 1)
	}
	return []byte(b)
}

func measureScale(t *testing.T, n int) {
	h := newHarness(t, "base.cfg")
	os.WriteFile(h.opts.ConfigPath, scaleConfig(t, "base.cfg", n), 0o644)
	h.clk = &clock{t: time.Now()}
	h.opts.Now = time.Now
	h.start()
	server := netip.MustParseAddrPort("10.2.0.5:8080")
	start := time.Now()
	var buf []byte
	for i := 0; i < n; i++ {
		c := &tcpConn{client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(2 + i/60000)}), uint16(1024+i%60000)), server: server, cseq: 1000, sseq: 5000}
		for _, f := range [][]byte{c.fromClient(packet.SYN, ""), c.fromServer(packet.SYN|packet.ACK, ""), c.fromClient(packet.ACK, "")} {
			buf = append(buf[:0], f...)
			if d := h.plane.inject(buf, time.Now()); d.Action != firewall.Accept {
				t.Fatalf("connection %d: %v %v", i, d.Action, d.Reason)
			}
		}
	}
	fill := time.Since(start)
	t.Logf("%d connections opened in %v", h.d.Engine().Table().Len(), fill.Round(time.Millisecond))

	// A packet of an established connection every 50 µs during the reload: the
	// longest time one of them took is what traffic feels of the reload.
	probe := &tcpConn{client: netip.MustParseAddrPort("10.1.0.1:999"), server: server, cseq: 1000, sseq: 5000}
	h.handshake(probe)
	var worst atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var p packet.Parsed
		frame := probe.fromClient(packet.ACK, "")
		for {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			h.d.Engine().Decide(frame, packet.LinkRaw, -1, t0.UnixNano(), &p)
			if d := int64(time.Since(t0)); d > worst.Load() {
				worst.Store(d)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	for i, name := range []string{"timeout.cfg", "base.cfg"} {
		worst.Store(0)
		t0 := time.Now()
		res, err := h.d.Import(name, scaleConfig(t, name, n), 0)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(t0)
		t.Logf("import %d (%s, saved to --config): %v, %d kept, %d closed; slowest concurrent packet %v",
			i+1, name, took.Round(time.Millisecond), res.Kept, res.Closed, time.Duration(worst.Load()).Round(time.Microsecond))
	}
	close(stop)
	wg.Wait()

	t0 := time.Now()
	var list ConnList
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := Call(ctx, h.opts.SocketPath, &Request{Cmd: CmdConntrackList, Filter: []string{"dport", "8080"}, Limit: 10}, &list); err != nil {
		t.Fatal(err)
	}
	t.Logf("conntrack list dport 8080 --limit 10 over the socket: %v (%d matched)", time.Since(t0).Round(time.Millisecond), list.Matched)
	t0 = time.Now()
	if err := Call(ctx, h.opts.SocketPath, &Request{Cmd: CmdConntrackList}, &list); err != nil {
		t.Fatal(err)
	}
	t.Logf("conntrack list of everything over the socket: %v (%d listed)", time.Since(t0).Round(time.Millisecond), len(list.Conns))

	t0 = time.Now()
	h.stop()
	fi, err := os.Stat(h.opts.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stop with snapshot: %v, %d bytes (%.0f bytes/connection)", time.Since(t0).Round(time.Millisecond), fi.Size(), float64(fi.Size())/float64(n+1))

	t0 = time.Now()
	h2 := &harness{t: t, dir: h.dir, opts: h.opts, clk: h.clk, stderr: &syncBuffer{}}
	h2.opts.Stderr = h2.stderr
	h2.start()
	t.Logf("start with restore: %v, %d connections", time.Since(t0).Round(time.Millisecond), h2.d.Engine().Table().Len())
}
