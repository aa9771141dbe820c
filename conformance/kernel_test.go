//go:build linux

package conformance

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"keepstate/internal/testcorpus"
	"keepstate/packet"
	"keepstate/synth"
)

func needKernel(t *testing.T) {
	t.Helper()
	if why := Missing(); why != "" {
		t.Skip(why)
	}
}

func newRunner(t *testing.T, o KernelOptions) *Runner {
	t.Helper()
	r, err := NewRunner(context.Background(), Modes, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// The chain marks what conntrack finds invalid instead of dropping it. A chain
// that drops must lose exactly the frames the marking chain marks, plus those the
// bridge refuses either way, and the kernel's answers must be Linux's rules: a
// mid-stream ACK is invalid with nf_conntrack_tcp_loose=0 only, a SYN-ACK without
// a SYN always, an ACK of data never sent always, and an IPv4 header that claims
// more bytes than the frame has never reaches conntrack.
func TestMarkingDropsNothingElse(t *testing.T) {
	needKernel(t)
	c := synth.NewConv(cli, srv, 11)
	mid := synth.NewConv(netip.MustParseAddrPort("10.9.9.9:1000"), netip.MustParseAddrPort("10.9.9.10:2000"), 12)
	orphan := synth.NewConv(netip.MustParseAddrPort("10.9.9.11:1000"), netip.MustParseAddrPort("10.9.9.12:2000"), 13)
	short := c.SegmentAt(synth.FromClient, packet.ACK|packet.PSH, c.Next(synth.FromClient), 0)
	short[2], short[3] = 0x02, 0x00 // total length 512, frame 40 bytes
	ips := [][]byte{
		c.Segment(synth.FromClient, packet.SYN, 0),                             // 0 pass
		c.Segment(synth.FromServer, packet.SYN|packet.ACK, 0),                  // 1 pass
		c.Segment(synth.FromClient, packet.ACK, 0),                             // 2 pass
		mid.Segment(synth.FromClient, packet.ACK, 0),                           // 3 invalid in strict
		orphan.Segment(synth.FromServer, packet.SYN|packet.ACK, 0),             // 4 invalid
		c.SegmentAt(synth.FromClient, packet.ACK, c.Next(synth.FromClient), 0), // 5 pass
		short, // 6 refused by the bridge
	}
	// 7: an ACK of 5000 bytes the server never sent.
	bad := c.SegmentAt(synth.FromClient, packet.ACK, c.Next(synth.FromClient), 0)
	ackAt := 20 + 8 // IPv4 header, then the TCP header's acknowledgement number
	binary.BigEndian.PutUint32(bad[ackAt:], binary.BigEndian.Uint32(bad[ackAt:])+5000)
	ips = append(ips, bad)
	var frames [][]byte
	for _, ip := range ips {
		frames = append(frames, packet.AppendEthernet(nil, [6]byte{1}, [6]byte{2}, nil, ip))
	}
	s, err := ReadStream(writeCapture(t, packet.LinkEthernet, frames, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := map[Mode][]string{
		Strict: {"pass", "pass", "pass", KernelInvalid, KernelInvalid, "pass", KernelBridge, KernelInvalid},
		Loose:  {"pass", "pass", "pass", "pass", KernelInvalid, "pass", KernelBridge, KernelInvalid},
	}
	for _, m := range Modes {
		marking, err := NewKernel(context.Background(), m, KernelOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dropping, err := NewKernel(context.Background(), m, KernelOptions{DropInvalid: true})
		if err != nil {
			marking.Close()
			t.Fatal(err)
		}
		marked, err := marking.Decide(s)
		if err != nil {
			t.Fatal(err)
		}
		dropped, err := dropping.Decide(s)
		if err != nil {
			t.Fatal(err)
		}
		for i := range s.Frames {
			got := "pass"
			if !marked[i].Pass {
				got = marked[i].Why
			}
			if got != want[m][i] {
				t.Errorf("%v frame %d: kernel %s, want %s", m, i, got, want[m][i])
			}
			if marked[i].Pass != dropped[i].Pass {
				t.Errorf("%v frame %d: marking chain %v, dropping chain %v", m, i, marked[i], dropped[i])
			}
		}
		if err := marking.Close(); err != nil {
			t.Error(err)
		}
		if err := dropping.Close(); err != nil {
			t.Error(err)
		}
	}
}

// Each behaviour of synth.Behaviours is a conversation real stacks produce that
// Linux passes whole; keepstate must too, in both modes.
func TestBehaviours(t *testing.T) {
	needKernel(t)
	r := newRunner(t, KernelOptions{})
	dir := t.TempDir()
	for _, b := range synth.Behaviours() {
		path := filepath.Join(dir, b.Name+".pcapng")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := synth.WriteBehaviour(f, b); err != nil {
			t.Fatal(err)
		}
		f.Close()
		c, err := r.Run(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range c.Results {
			if res.KernelDrops != 0 {
				t.Errorf("%s (%v): the kernel dropped %d packets: the behaviour is not what Linux passes whole", b.Name, res.Mode, res.KernelDrops)
			}
			for _, d := range res.Disagreements {
				t.Errorf("%s (%v) #%d %s: keepstate %v, kernel %v", b.Name, res.Mode, d.Frame.Record, d.Frame.Describe(), d.Keepstate, d.Kernel)
			}
		}
	}
}

// The deliberate differences of docs/conformance.md, each on a capture of its own:
// exactly the packets the document names differ, in the mode it names.
func TestDeliberateDifferences(t *testing.T) {
	needKernel(t)
	r := newRunner(t, KernelOptions{})
	path := filepath.Join(t.TempDir(), "replies-only.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.WriteBehaviour(f, synth.RepliesOnly()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c, err := r.Run(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range c.Results {
		var got []string
		for _, d := range res.Disagreements {
			got = append(got, fmt.Sprintf("#%d keepstate %v, kernel %v", d.Frame.Record, d.Keepstate, d.Kernel))
		}
		want := "[]"
		if res.Mode == Loose {
			// The SYN-ACK picks the connection up in keepstate; Linux finds a
			// SYN-ACK without a SYN invalid, and picks it up from the next packet.
			want = "[#1 keepstate pass, kernel drop (invalid)]"
		}
		if fmt.Sprint(got) != want {
			t.Errorf("replies only (%v): %v, want %s", res.Mode, got, want)
		}
	}
}

// Every TCP packet of the corpus, in both modes: keepstate and the kernel agree
// on every one, and the agreement figures are logged (go test -v).
func TestCorpus(t *testing.T) {
	needKernel(t)
	paths := testcorpus.Captures()
	if paths == nil {
		t.Skipf("capture corpus not found at %s", testcorpus.Where())
	}
	r := newRunner(t, KernelOptions{})
	var captures []*Capture
	for _, path := range paths {
		c, err := r.Run(path)
		if err != nil {
			if _, rerr := ReadStream(path); rerr != nil {
				continue // not a capture replay can read: the replay tests cover it
			}
			t.Fatal(err)
		}
		captures = append(captures, c)
		for _, res := range c.Results {
			for _, d := range res.Disagreements {
				t.Errorf("%s#%d (%v) %s: keepstate %v, kernel %v", filepath.Base(path), d.Frame.Record, res.Mode, d.Frame.Describe(), d.Keepstate, d.Kernel)
			}
		}
	}
	for _, tot := range Sum(captures, Modes) {
		t.Logf("%v: %d of %d packets agree, %d of %d captures agree on every packet; drops: keepstate %d, kernel %d; skipped %v",
			tot.Mode, tot.Agreeing, tot.Frames, tot.CapturesAgreeing, tot.Captures, tot.KeepstateDrops, tot.KernelDrops, tot.SkippedByCause)
	}
}
