// Package replay feeds captures through the firewall engine on the capture's own
// clock: "what would keepstate have done with this traffic?"
//
// It streams: one packet buffer, the engine's table and a bounded tally of the
// connections with most drops are all it holds, so memory follows the number of
// tracked connections, not the size of the capture.
package replay

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"keepstate/capture"
	"keepstate/dataplane"
	"keepstate/firewall"
	"keepstate/packet"
	"keepstate/reason"
)

// Options configure a replay.
type Options struct {
	Engine   *firewall.Engine
	Reporter *dataplane.Reporter // nil: count only
	// Progress, when set, receives a one-line progress bar redrawn with \r (a
	// terminal); nil for none.
	Progress io.Writer
	// TopN is how many connections with most drops the summary lists (default 10).
	TopN int
	// IfIndex names the interfaces behind the interface indexes of SLL2 captures
	// (`tcpdump -i any`), e.g. {3: "LAN"}; see Ingress.
	IfIndex map[int32]string
	// InferIngress ignores what the capture says about interfaces and infers every
	// packet's ingress from its source address: for a tap that sees both
	// directions on one interface, where the replies would otherwise look spoofed.
	InferIngress bool
	// Observe, when set, sees every packet and its decision, after the Reporter.
	// p and d are only valid during the call.
	Observe func(t int64, p *packet.Parsed, d *firewall.Decision)
	// ObserveDrop, when set, sees every packet that does not pass, with where it
	// is: the capture's path and the packet's number in it, from 1 as Wireshark
	// counts (what `keepstate explain --capture --packet` takes).
	ObserveDrop func(t int64, path string, number int64, p *packet.Parsed, d *firewall.Decision)
	// Tick, when set, is called after every expiry sweep with the capture time,
	// and once at the end with the last packet's time: for watchers that run on
	// the capture's clock (the insight detectors).
	Tick func(now int64)
}

// FileResult is what happened to one capture file.
type FileResult struct {
	Path    string `json:"path"`
	Format  string `json:"format,omitempty"`
	Packets uint64 `json:"packets"`
	// Error is set when the file could not be read to its end; Offset is then the
	// byte offset (in the decompressed stream) where reading stopped.
	Error  string `json:"error,omitempty"`
	Offset int64  `json:"offset,omitempty"`
}

// Summary is the outcome of a replay, printed as text or as `--json`.
type Summary struct {
	Packets       uint64            `json:"packets"` // read from the captures
	Accepted      uint64            `json:"accepted"`
	Dropped       uint64            `json:"dropped"`
	Rejected      uint64            `json:"rejected"` // part of Dropped: refused with RST/ICMP by a Deny rule
	DropsByReason map[string]uint64 `json:"drops_by_reason"`
	Connections   uint64            `json:"connections"`     // connections opened
	OpenAtEnd     int               `json:"open_at_end"`     // still tracked when the captures ended
	TopDropped    []ConnDrops       `json:"top_dropped"`     // connections with most drops
	Files         []FileResult      `json:"files"`           // per capture
	CaptureStart  time.Time         `json:"capture_start"`   // first packet's time
	CaptureEnd    time.Time         `json:"capture_end"`     // last packet's time
	ElapsedSec    float64           `json:"elapsed_s"`       // wall time spent
	PacketsPerSec float64           `json:"packets_per_sec"` // Packets / ElapsedSec
	dropsByReason reason.Counters   `json:"-"`
	top           *topTalkers       `json:"-"`
}

// Failed reports whether some capture could not be read to its end.
func (s *Summary) Failed() bool {
	for _, f := range s.Files {
		if f.Error != "" {
			return true
		}
	}
	return false
}

// ExpireEvery is how much capture time may pass between full expiry sweeps. Track
// and Create expire a little on their own; the sweep makes connection-end logs come
// out close to when they happen in capture time.
const ExpireEvery = int64(time.Second)

// Run replays the captures in order through one engine: connections carry over from
// one file to the next, as if the captures were one. A capture that cannot be read
// to its end is reported in its FileResult and the next one is read; Run returns an
// error only for a failure of the output.
func Run(paths []string, o Options) (*Summary, error) {
	if o.TopN <= 0 {
		o.TopN = 10
	}
	s := &Summary{top: newTopTalkers(topCapacity(o.TopN))}
	start := time.Now()
	// The engine counts every verdict; the summary is the difference over the run,
	// so the per-packet loop counts nothing twice.
	before := o.Engine.Counters()
	var st runState
	for _, path := range paths {
		fr := replayFile(path, &o, s, &st)
		s.Files = append(s.Files, fr)
		s.Packets += fr.Packets
	}
	after := o.Engine.Counters()
	s.Accepted = after.Accepted - before.Accepted
	s.Rejected = after.Rejected - before.Rejected
	for r := range after.Dropped {
		s.dropsByReason[r] = after.Dropped[r] - before.Dropped[r]
		s.Dropped += s.dropsByReason[r]
	}
	if o.Progress != nil {
		fmt.Fprint(o.Progress, "\r\033[K")
	}
	if o.Reporter != nil && o.Reporter.Log != nil {
		o.Reporter.Log.Flush()
	}
	s.ElapsedSec = time.Since(start).Seconds()
	if s.ElapsedSec > 0 {
		s.PacketsPerSec = float64(s.Packets) / s.ElapsedSec
	}
	s.DropsByReason = s.dropsByReason.Map()
	s.Connections = o.Engine.Table().Stats().Created
	s.OpenAtEnd = o.Engine.Table().Len()
	s.TopDropped = s.top.top(o.TopN)
	if o.Tick != nil && st.last != 0 {
		o.Tick(st.last)
	}
	if st.first != 0 {
		s.CaptureStart, s.CaptureEnd = time.Unix(0, st.first).UTC(), time.Unix(0, st.last).UTC()
	}
	return s, nil
}

// runState is carried from one capture to the next.
type runState struct {
	first, last int64 // capture times
	lastExpire  int64

	// Packets are decided in engine batches. The reader's packets are only
	// valid until its next read, so each waits in its own copy.
	batch  firewall.Batch
	frames [firewall.BatchSize][]byte
	// numbers[k] is the number in its capture of the packet in slot k, from 1.
	numbers [firewall.BatchSize]int64
	path    string // the capture being read
}

// queue adds a packet to the batch, deciding the batch when it is full.
// wireLen is the packet's length on the wire (the record's original length),
// which tells an offloaded send cut by the snapshot length its real size.
func (st *runState) queue(o *Options, s *Summary, data []byte, wireLen int, link packet.LinkType, in int, t, number int64) {
	k := st.batch.Len()
	st.numbers[k] = number
	st.frames[k] = append(st.frames[k][:0], data...)
	st.batch.AddCut(st.frames[k], wireLen, link, in, t)
	if st.batch.Full() {
		st.decide(o, s)
	}
}

// decide runs the batch through the engine and reports each packet in order.
func (st *runState) decide(o *Options, s *Summary) {
	b := &st.batch
	if b.Len() == 0 {
		return
	}
	o.Engine.DecideBatch(b)
	for j := range b.Len() {
		p, d, t := &b.Packets[j], &b.Decisions[j], b.Time(j)
		if d.Action != firewall.Accept && p.IPVersion != 0 {
			s.top.add(p, d.Reason)
		}
		if o.Reporter != nil {
			o.Reporter.Packet(t, b.Frame(j), b.Link(j), p, d)
		}
		if o.Observe != nil {
			o.Observe(t, p, d)
		}
		if o.ObserveDrop != nil && d.Action != firewall.Accept {
			o.ObserveDrop(t, st.path, st.numbers[j], p, d)
		}
	}
	b.Reset()
}

func replayFile(path string, o *Options, s *Summary, st *runState) (fr FileResult) {
	fr.Path = path
	f, err := os.Open(path)
	if err != nil {
		fr.Error = err.Error()
		return fr
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	counted := &countingReader{r: f}
	rd, err := capture.NewReader(counted)
	if err != nil {
		fr.Error = err.Error()
		var fe *capture.FormatError
		if errors.As(err, &fe) {
			fr.Offset = fe.Offset
		}
		return fr
	}
	fr.Format = rd.Format().String()

	eng := o.Engine
	st.path = path
	ingress := NewIngress(eng, o.IfIndex)
	var progress progressBar
	// Whatever was read is decided, also when reading stops at an error.
	defer st.decide(o, s)
	for {
		pkt, err := rd.Next()
		if err != nil {
			if err != io.EOF {
				fr.Error = err.Error()
				var fe *capture.FormatError
				if errors.As(err, &fe) {
					fr.Offset = fe.Offset
				}
			}
			break
		}
		fr.Packets++
		t := pkt.Time
		if st.first == 0 {
			st.first = t
		}
		st.last = t
		if t-st.lastExpire >= ExpireEvery {
			st.decide(o, s) // the packets before the sweep are decided before it
			eng.Expire(t)
			st.lastExpire = t
			if o.Tick != nil {
				o.Tick(t)
			}
		}

		in := -1
		if !o.InferIngress {
			in = ingress.Of(rd, &pkt)
		}
		st.queue(o, s, pkt.Data, pkt.OrigLen, pkt.Link, in, t, int64(fr.Packets))
		if o.Progress != nil && fr.Packets&0xffff == 0 {
			progress.draw(o.Progress, path, counted.n, size, s.Packets+fr.Packets)
		}
	}
	return fr
}

// countingReader counts the bytes read from the file, for the progress bar (the
// capture's own offsets are in the decompressed stream).
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}
