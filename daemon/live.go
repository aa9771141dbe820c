package daemon

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"keepstate/dataplane"
	"keepstate/diagnose"
	"keepstate/logging"
	"keepstate/packet"
)

// feedSize is how many recent drops the live feed keeps.
const feedSize = 4096

// sampleEvery is how often the counters are sampled for the dashboard's charts;
// historySize samples are kept (an hour).
const (
	sampleEvery = 5 * time.Second
	historySize = 720
)

// Sample is the daemon's counters at one moment.
type Sample struct {
	Time          time.Time         `json:"time"`
	Packets       uint64            `json:"packets"`
	Accepted      uint64            `json:"accepted"`
	Dropped       uint64            `json:"dropped"`
	DropsByReason map[string]uint64 `json:"drops_by_reason"`
	Connections   int               `json:"connections"`
}

// history is a ring of samples.
type history struct {
	mu      sync.Mutex
	samples []Sample
}

func (h *history) add(s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.samples) == historySize {
		h.samples = slices.Delete(h.samples, 0, 1)
	}
	h.samples = append(h.samples, s)
}

func (d *Daemon) sample() Sample {
	st := d.Stats()
	return Sample{Time: d.now(), Packets: st.Packets, Accepted: st.Accepted, Dropped: st.Dropped,
		DropsByReason: st.DropsByReason, Connections: st.Conntrack.Connections}
}

// History returns the samples of the last hour, oldest first, ending with one
// taken now.
func (d *Daemon) History() []Sample {
	d.hist.mu.Lock()
	out := slices.Clone(d.hist.samples)
	d.hist.mu.Unlock()
	return append(out, d.sample())
}

// Drop is one dropped packet of the live feed.
type Drop struct {
	Seq        uint64    `json:"id"`
	Time       time.Time `json:"time"`
	Reason     string    `json:"reason"`
	ReasonText string    `json:"reason_text"`
	Rule       string    `json:"rule,omitempty"`
	Iface      string    `json:"iface"`
	ConnState  string    `json:"conn_state,omitempty"`
	Proto      string    `json:"proto"`
	Src        string    `json:"src"`
	SrcPort    uint16    `json:"sport"`
	Dst        string    `json:"dst"`
	DstPort    uint16    `json:"dport"`
	Flags      string    `json:"flags,omitempty"`
	Len        int       `json:"len"`
}

// DropPage answers Drops.
type DropPage struct {
	Drops  []Drop `json:"drops"`
	Next   uint64 `json:"next"`   // ask for this id next time
	Missed uint64 `json:"missed"` // drops after the id asked for that are no longer kept
}

// Drops returns up to limit of the drops numbered from since (0: the oldest
// kept), oldest first. Every drop is there, whatever the Logging table says.
func (d *Daemon) Drops(since uint64, limit int) *DropPage {
	recs, next, missed := d.feed.Since(since, limit)
	out := &DropPage{Drops: make([]Drop, 0, len(recs)), Next: next, Missed: missed}
	for i := range recs {
		out.Drops = append(out.Drops, dropOf(&recs[i]))
	}
	return out
}

func dropOf(r *dataplane.DropRecord) Drop {
	var p packet.Parsed
	p.Decode(r.Frame(), r.Link) // a malformed packet keeps what decoded
	dr := Drop{Seq: r.Seq, Time: time.Unix(0, r.Time), Reason: r.Reason.String(), ReasonText: r.Reason.Text(),
		Rule: r.Rule, Iface: r.Iface, ConnState: r.ConnState, Len: r.WireLen}
	if p.IPVersion != 0 {
		dr.Proto, dr.Src, dr.Dst = p.Proto.String(), p.Src.String(), p.Dst.String()
		dr.SrcPort, dr.DstPort = p.SrcPort, p.DstPort
		if p.Proto == packet.ProtoTCP {
			dr.Flags = logging.FlagWords(p.TCPFlags)
		}
	}
	return dr
}

// ExplainDrop walks the dropped packet numbered seq through the configuration
// in force, as `keepstate explain` does: a fresh engine that tracks nothing yet,
// so it says what the rules and checks make of the packet on its own; the
// drop's reason and connection state say what the live table knew.
func (d *Daemon) ExplainDrop(seq uint64) (*diagnose.Explanation, error) {
	r, ok := d.feed.Get(seq)
	if !ok {
		return nil, fmt.Errorf("drop %d is no longer kept (the live feed holds the last %d)", seq, feedSize)
	}
	d.mu.Lock()
	cfg := d.cur.bundle.Config
	d.mu.Unlock()
	in := d.eng.Ruleset().IfaceByName(r.Iface)
	return diagnose.ExplainFrame(cfg, r.Frame(), r.WireLen, r.Link, in, r.Time)
}

// LogNames are the logs LogLines reads, as Kerio names them (lower case).
var LogNames = logNames[:]

// LogPage answers LogLines.
type LogPage struct {
	Name       string   `json:"logName"`
	TotalLines int      `json:"totalItems"` // lines of the log (matching contains, if given)
	FromLine   int      `json:"fromLine"`   // index of Lines[0]
	Lines      []string `json:"lines"`
}

// maxLogRead bounds how much of a log file LogLines reads: its last 16 MiB.
const maxLogRead = 16 << 20

// LogLines reads count lines of the log called name from line fromLine (0 is the
// oldest line kept in the current file; negative: the last count lines), of
// those that contain contains when it is not empty.
func (d *Daemon) LogLines(name string, fromLine, count int, contains string) (*LogPage, error) {
	if !slices.Contains(LogNames, name) {
		return nil, fmt.Errorf("no log %q (want one of %s)", name, strings.Join(LogNames, ", "))
	}
	if count <= 0 || count > 10000 {
		return nil, fmt.Errorf("countLines %d: want 1 to 10000", count)
	}
	d.logs.logger.Flush()
	lines, err := readLogTail(filepath.Join(d.o.LogDir, name+".log"), contains)
	if err != nil {
		return nil, err
	}
	if fromLine < 0 {
		fromLine = max(len(lines)-count, 0)
	}
	page := &LogPage{Name: name, TotalLines: len(lines), FromLine: fromLine, Lines: []string{}}
	if fromLine < len(lines) {
		page.Lines = lines[fromLine:min(fromLine+count, len(lines))]
	}
	return page, nil
}

func readLogTail(path, contains string) ([]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cut := false
	if fi, err := f.Stat(); err == nil && fi.Size() > maxLogRead {
		if _, err := f.Seek(fi.Size()-maxLogRead, io.SeekStart); err != nil {
			return nil, err
		}
		cut = true
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var lines []string
	for sc.Scan() {
		if cut {
			cut = false // the first line read after the seek is a piece of one
			continue
		}
		if contains == "" || strings.Contains(sc.Text(), contains) {
			lines = append(lines, sc.Text())
		}
	}
	return lines, sc.Err()
}

// DropsNext is the id the next drop will get: a live feed starts there.
func (d *Daemon) DropsNext() uint64 { return d.feed.Next() }
