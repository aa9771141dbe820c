package diagnose

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keepstate/config"
	"keepstate/synth"
)

var pairStart = time.Date(2012, 9, 23, 11, 0, 0, 0, time.UTC)

// writePair writes a generated capture pair into a temporary directory.
func writePair(t *testing.T, path synth.PairPath) (a, b string, res *synth.PairResult) {
	t.Helper()
	dir := t.TempDir()
	a, b = filepath.Join(dir, "a.pcapng"), filepath.Join(dir, "b.pcap")
	fa, err := os.Create(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Create(b)
	if err != nil {
		t.Fatal(err)
	}
	res, err = synth.WritePair(fa, fb, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := fa.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fb.Close(); err != nil {
		t.Fatal(err)
	}
	return a, b, res
}

func story1Config(t testing.TB) *Policy {
	t.Helper()
	data, _ := synth.Story1Config(true)
	cfg, err := config.Parse("story1.cfg", data)
	if err != nil {
		t.Fatal(err)
	}
	return policyOf(t, cfg)
}

// connByClient finds the connection whose client is ep.
func connByClient(t *testing.T, r *DiffReport, ep string) *ConnDiff {
	t.Helper()
	for i := range r.Conns {
		if r.Conns[i].Client == ep {
			return &r.Conns[i]
		}
	}
	t.Fatalf("no connection with client %s", ep)
	return nil
}

func TestDiffCleanPath(t *testing.T) {
	a, b, res := writePair(t, synth.PairPath{Start: pairStart, Conns: 6})
	r, err := Diff(a, b, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Crossed != 54 || r.OnlyA != 0 || r.OnlyB != 0 || res.Crossed != 54 {
		t.Errorf("crossed %d only A %d only B %d (generator: %d crossed)", r.Crossed, r.OnlyA, r.OnlyB, res.Crossed)
	}
	// Requests show +200 µs, replies -200 µs: no offset, 200 µs of transit.
	want0 := ClockOffset{Offset: 0, Transit: 200 * time.Microsecond, Pairs: 54, Conns: 6, Spread: 400 * time.Microsecond}
	if r.Clock != want0 {
		t.Errorf("clock %+v, want %+v", r.Clock, want0)
	}
	if r.ByStatus[StatusClean] != 6 || len(r.Conns) != 6 {
		t.Errorf("statuses %v over %d connections", r.ByStatus, len(r.Conns))
	}
	c := connByClient(t, r, "10.1.0.3:40001")
	if c.Server != "10.2.0.2:8080" || c.Proto != "tcp" {
		t.Errorf("connection %s %s -> %s", c.Proto, c.Client, c.Server)
	}
	want := "all 9 packets crossed the firewall, both ways (requests: 6 on A from 11:00:00.500 to 11:00:00.550, 6 on B from 11:00:00.500 to 11:00:00.550, 6 crossed; " +
		"replies: 3 on A from 11:00:00.500 to 11:00:00.550, 3 on B from 11:00:00.500 to 11:00:00.550, 3 crossed)"
	if c.Verdict != want {
		t.Errorf("verdict\n%s\nwant\n%s", c.Verdict, want)
	}
	if c.Requests.OnA != 6 || c.Replies.OnB != 3 || len(c.Timeline) != 9 {
		t.Errorf("requests %+v replies %+v timeline %d", c.Requests, c.Replies, len(c.Timeline))
	}
	// The first mark is the SYN, on A at 0.5 s after the start and on B 200 µs later.
	m := c.Timeline[0]
	if m.Reply || m.TA != 0.5 || m.TB != 0.5002 || !strings.HasPrefix(m.Desc, "[S] seq ") {
		t.Errorf("first mark %+v", m)
	}
}

func TestDiffDeviceDropsSomePackets(t *testing.T) {
	a, b, res := writePair(t, synth.PairPath{Start: pairStart, Conns: 8, DropEvery: 7})
	r, err := Diff(a, b, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// 72 packets reach the device; every 7th is dropped: 10.
	if res.OnlyA+res.OnlyB != 10 {
		t.Fatalf("generator dropped %d+%d", res.OnlyA, res.OnlyB)
	}
	if r.Crossed != res.Crossed || r.OnlyA != res.OnlyA || r.OnlyB != res.OnlyB {
		t.Errorf("diff: crossed %d only A %d only B %d; truth %d %d %d", r.Crossed, r.OnlyA, r.OnlyB, res.Crossed, res.OnlyA, res.OnlyB)
	}
	if r.ByStatus[StatusLossy] != len(res.DroppedConns) || r.ByStatus[StatusClean] != 8-len(res.DroppedConns) {
		t.Errorf("statuses %v, dropped in %d connections", r.ByStatus, len(res.DroppedConns))
	}
	for i, n := range res.DroppedConns {
		c := connByClient(t, r, res.Clients[i].String())
		if c.Status != StatusLossy {
			t.Errorf("connection %d: status %s", i, c.Status)
		}
		lost := c.Requests.OnlyA + c.Requests.OnlyB + c.Replies.OnlyA + c.Replies.OnlyB
		if lost != n {
			t.Errorf("connection %d: %d one-sided packets, generator dropped %d", i, lost, n)
		}
		prefix := fmt.Sprintf("%d of 9 packets did not cross the firewall: ", n)
		if !strings.HasPrefix(c.Verdict, prefix) {
			t.Errorf("connection %d verdict %q", i, c.Verdict)
		}
	}
}

func TestDiffAsymmetricPath(t *testing.T) {
	around := func(i int) bool { return i%3 == 0 }
	a, b, res := writePair(t, synth.PairPath{Start: pairStart, Conns: 9, Around: around})
	r, err := Diff(a, b, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.ByStatus[StatusAsymmetric] != 3 || r.ByStatus[StatusClean] != 6 {
		t.Fatalf("statuses %v", r.ByStatus)
	}
	// Asymmetric connections sort first.
	for k, i := range res.AroundConns {
		c := &r.Conns[k]
		client := res.Clients[i].String()
		if c.Client != client || c.Status != StatusAsymmetric {
			t.Fatalf("connection %d: %s %s", k, c.Client, c.Status)
		}
		want := "10.2.0.2:8080 -> " + client + " replies cross the firewall but the requests never do: they reach the server another way (requests: none on either side; replies: 3 on A"
		if !strings.HasPrefix(c.Verdict, want) {
			t.Errorf("verdict\n%s\nwant prefix\n%s", c.Verdict, want)
		}
	}
	if r.Crossed != 9*9-3*6 || r.OnlyA != 0 || r.OnlyB != 0 {
		t.Errorf("crossed %d only %d/%d", r.Crossed, r.OnlyA, r.OnlyB)
	}
	found := false
	for _, f := range r.Findings {
		if strings.HasPrefix(f, "server tcp 10.2.0.2:8080: 3 of 9 connections asymmetric, e.g. 10.2.0.2:8080 -> 10.1.0.2:40000 replies cross") {
			found = true
		}
	}
	if !found {
		t.Errorf("findings %q", r.Findings)
	}
}

func TestDiffClockOffset(t *testing.T) {
	for _, off := range []time.Duration{7500 * time.Millisecond, -4 * time.Second} {
		a, b, _ := writePair(t, synth.PairPath{Start: pairStart, Conns: 5, ClockOffset: off, DropEvery: 11})
		r, err := Diff(a, b, DiffOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Clock.Offset != off || r.Clock.Transit != 200*time.Microsecond {
			t.Errorf("clock %+v, want offset %v and transit 200µs", r.Clock, off)
		}
		if r.Crossed != 41 || r.OnlyA+r.OnlyB != 4 {
			t.Errorf("offset %v: crossed %d one-sided %d", off, r.Crossed, r.OnlyA+r.OnlyB)
		}
		// Times in the timeline are on A's clock: once the offset is removed, a
		// crossed request shows on B 200 µs after A, a reply 200 µs before.
		for _, c := range r.Conns {
			for _, m := range c.Timeline {
				if m.TA < 0 || m.TB < 0 {
					continue
				}
				d := time.Duration((m.TB-m.TA)*1e9 + 0.5)
				if m.Reply {
					d = -d
				}
				if d < 199*time.Microsecond || d > 201*time.Microsecond {
					t.Fatalf("mark %+v: B - A = %v", m, d)
				}
			}
		}
	}
}

// TestDiffLabelsWithConfig re-enacts the first story: the firewall enforces the
// handshake and drops the replies of connections whose requests the switch leaked.
func TestDiffLabelsWithConfig(t *testing.T) {
	around := func(i int) bool { return i%4 == 1 }
	a, b, res := writePair(t, synth.PairPath{Start: pairStart, Conns: 8, Around: around, Strict: true})
	r, err := Diff(a, b, DiffOptions{Policy: story1Config(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.AroundConns) != 2 || r.OnlyB != 6 || r.OnlyA != 0 {
		t.Fatalf("around %v, only B %d only A %d", res.AroundConns, r.OnlyB, r.OnlyA)
	}
	want := []LabelCount{{"dropped by the firewall: handshake_not_completed", 6}}
	if fmt.Sprint(r.Labels) != fmt.Sprint(want) {
		t.Errorf("labels %v, want %v", r.Labels, want)
	}
	c := connByClient(t, r, "10.1.0.3:40001")
	if c.Status != StatusAsymmetric {
		t.Fatalf("status %s", c.Status)
	}
	wantV := "10.2.0.2:8080 -> 10.1.0.3:40001 replies are seen only on B and never cross the firewall, and the requests are seen on neither side: they reach the server another way"
	if !strings.HasPrefix(c.Verdict, wantV) {
		t.Errorf("verdict %q", c.Verdict)
	}
	for _, m := range c.Timeline {
		if m.Label != "dropped by the firewall: handshake_not_completed" || m.TA >= 0 {
			t.Errorf("mark %+v", m)
		}
	}
}

// TestDiffLabelsNeverReached: packets a device loses while keepstate would pass
// them are labelled as never having reached the firewall.
func TestDiffLabelsNeverReached(t *testing.T) {
	a, b, res := writePair(t, synth.PairPath{Start: pairStart, Conns: 3, DropEvery: 5})
	r, err := Diff(a, b, DiffOptions{Policy: story1Config(t)})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, l := range r.Labels {
		total += l.Packets
	}
	if total != res.OnlyA+res.OnlyB || total != 5 {
		t.Fatalf("labels %v for %d one-sided packets", r.Labels, res.OnlyA+res.OnlyB)
	}
	if r.Labels[0].Label != "never reached the firewall" {
		t.Errorf("labels %v", r.Labels)
	}
}

// TestDiffOutsideOverlap: capture B starts late and stops early; what A saw while
// B was not running is left out instead of being called lost.
func TestDiffOutsideOverlap(t *testing.T) {
	a, b, _ := writePair(t, synth.PairPath{Start: pairStart, Conns: 10})
	ca, err := ReadCapture(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := ReadCapture(b)
	if err != nil {
		t.Fatal(err)
	}
	// Keep B's packets of connections 3 to 6 only (each connection spans 50 ms,
	// 500 ms apart).
	from, to := pairStart.Add(1500*time.Millisecond).UnixNano(), pairStart.Add(3100*time.Millisecond).UnixNano()
	var kept []Packet
	for _, p := range cb.Packets {
		if p.Time >= from && p.Time < to {
			kept = append(kept, p)
		}
	}
	cb.Packets = kept
	r := diffCaptures(ca, cb, nil, nil, DiffOptions{MaxSkew: 100 * time.Millisecond, Device: "the firewall"})
	if r.Crossed != 36 || r.OnlyA != 0 || r.OnlyB != 0 || r.OutsideOverlap != 54 {
		t.Errorf("crossed %d only %d/%d outside %d", r.Crossed, r.OnlyA, r.OnlyB, r.OutsideOverlap)
	}
	if r.ByStatus[StatusClean] != 4 || len(r.Conns) != 4 {
		t.Errorf("statuses %v", r.ByStatus)
	}
	if r.Findings[2] != "54 packets seen while only one capture was running were left out" {
		t.Errorf("findings %q", r.Findings)
	}
}
