package diagnose

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"keepstate/packet"
)

// DiffOptions tune Diff.
type DiffOptions struct {
	// Policy, when set, labels every packet seen on one side only with what
	// keepstate does with it: "dropped by the firewall: <reason>" or, when it would
	// pass it, "never reached the firewall".
	Policy *Policy
	// MaxSkew is how far apart two sightings of a packet may be once the clock
	// offset is removed (default 2 s).
	MaxSkew time.Duration
	// Device names what stands between the capture points in the verdicts
	// (default "the firewall").
	Device string
}

// Connection statuses, most worrying first.
const (
	StatusAsymmetric = "asymmetric" // one direction never appears on a side where the other does
	StatusOneSided   = "one_sided"  // nothing crossed: seen on one side only
	StatusLossy      = "lossy"      // both directions cross, some packets did not
	StatusClean      = "clean"      // every packet crossed
)

var statusRank = map[string]int{StatusAsymmetric: 0, StatusOneSided: 1, StatusLossy: 2, StatusClean: 3}

// DiffReport is the outcome of comparing two captures.
type DiffReport struct {
	A      CaptureInfo `json:"a"`
	B      CaptureInfo `json:"b"`
	Device string      `json:"device"`
	Clock  ClockOffset `json:"clock"`
	// Crossed counts packets seen on both sides; OnlyA and OnlyB the rest.
	Crossed int `json:"crossed"`
	OnlyA   int `json:"only_a"`
	OnlyB   int `json:"only_b"`
	// OutsideOverlap counts packets seen on one side while the other capture
	// was not running (before it started or after it stopped): left out.
	OutsideOverlap int            `json:"outside_overlap"`
	ByStatus       map[string]int `json:"connections_by_status"`
	// Labels counts the one-sided packets by keepstate's verdict (with a config).
	Labels   []LabelCount `json:"labels,omitempty"`
	Findings []string     `json:"findings"` // the headline, in sentences
	Conns    []ConnDiff   `json:"connections"`
	// Start is the earliest packet on A's clock: timelines count from it.
	Start time.Time `json:"start"`
}

// CaptureInfo describes one input capture.
type CaptureInfo struct {
	Path    string    `json:"path"`
	Packets int       `json:"packets"` // IP packets read
	Skipped int       `json:"skipped"` // not IP or not decodable
	Error   string    `json:"error,omitempty"`
	First   time.Time `json:"first,omitzero"`
	Last    time.Time `json:"last,omitzero"`
}

// ConnDiff is one connection seen in either capture.
type ConnDiff struct {
	Proto    string       `json:"proto"`
	Client   string       `json:"client"`
	Server   string       `json:"server"`
	Status   string       `json:"status"`
	Verdict  string       `json:"verdict"`
	Requests DirDiff      `json:"requests"` // client to server
	Replies  DirDiff      `json:"replies"`  // server to client
	Labels   []LabelCount `json:"labels,omitempty"`
	// Timeline holds every sighting, for the HTML report.
	Timeline []Mark `json:"-"`
}

// DirDiff counts one direction of a connection on each side. Times are each
// capture's own clock.
type DirDiff struct {
	OnA     int       `json:"on_a"`
	OnB     int       `json:"on_b"`
	Crossed int       `json:"crossed"`
	OnlyA   int       `json:"only_a"`
	OnlyB   int       `json:"only_b"`
	FirstA  time.Time `json:"first_a,omitzero"`
	LastA   time.Time `json:"last_a,omitzero"`
	FirstB  time.Time `json:"first_b,omitzero"`
	LastB   time.Time `json:"last_b,omitzero"`
}

// LabelCount is how many one-sided packets got one label.
type LabelCount struct {
	Label   string `json:"label"`
	Packets int    `json:"packets"`
}

// Mark is one packet in a connection's timeline. TA and TB are seconds since the
// report's Start on A's clock (B's corrected by the offset); a side that did not
// see the packet has a negative value.
type Mark struct {
	Reply bool    `json:"reply"`
	TA    float64 `json:"ta"`
	TB    float64 `json:"tb"`
	Desc  string  `json:"desc"`
	Label string  `json:"label,omitempty"`
}

// sighting is one packet of a connection: on A, on B, or on both.
type sighting struct {
	a, b *Packet // nil when that side did not see it
}

func (s sighting) pkt() *Packet {
	if s.a != nil {
		return s.a
	}
	return s.b
}

// Diff compares captures a and b, taken on two sides of a device.
func Diff(pathA, pathB string, o DiffOptions) (*DiffReport, error) {
	if o.MaxSkew <= 0 {
		o.MaxSkew = defaultMaxSkew
	}
	if o.Device == "" {
		o.Device = "the firewall"
	}
	ca, err := ReadCapture(pathA)
	if err != nil {
		return nil, err
	}
	cb, err := ReadCapture(pathB)
	if err != nil {
		return nil, err
	}
	var va, vb []verdict
	if o.Policy != nil {
		if va, err = replayVerdicts(pathA, o.Policy); err != nil {
			return nil, err
		}
		if vb, err = replayVerdicts(pathB, o.Policy); err != nil {
			return nil, err
		}
	}
	return diffCaptures(ca, cb, va, vb, o), nil
}

func captureInfo(c *Capture) CaptureInfo {
	ci := CaptureInfo{Path: c.Path, Packets: len(c.Packets), Skipped: c.Skipped}
	if c.Err != nil {
		ci.Error = c.Err.Error()
	}
	if n := len(c.Packets); n > 0 {
		ci.First, ci.Last = utc(c.Packets[0].Time), utc(c.Packets[n-1].Time)
	}
	return ci
}

func utc(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// diffCaptures does the work of Diff on captures read into memory; va and vb are
// the engine's verdicts per packet index, nil without a configuration.
func diffCaptures(ca, cb *Capture, va, vb []verdict, o DiffOptions) *DiffReport {
	a, b := ca.Packets, cb.Packets
	pr := matchCaptures(a, b, o.MaxSkew)
	r := &DiffReport{A: captureInfo(ca), B: captureInfo(cb), Device: o.Device, Clock: pr.offset, ByStatus: map[string]int{}}

	// Group sightings by connection, in time order on A's clock.
	conns := map[connKey][]sighting{}
	var order []connKey
	add := func(k connKey, s sighting) {
		if _, ok := conns[k]; !ok {
			order = append(order, k)
		}
		conns[k] = append(conns[k], s)
	}
	// A packet seen on one side only while the other capture was not running
	// says nothing about the path: leave it out, and say how many.
	inOverlap := overlapWindow(a, b, int64(pr.offset.Offset), int64(o.MaxSkew))
	for i := range a {
		s := sighting{a: &a[i]}
		if j := pr.twinA[i]; j >= 0 {
			s.b = &b[j]
			r.Crossed++
		} else if !inOverlap(a[i].Time) {
			r.OutsideOverlap++
			continue
		} else {
			r.OnlyA++
		}
		add(connKeyOf(&a[i]), s)
	}
	for j := range b {
		if pr.twinB[j] >= 0 {
			continue
		}
		if !inOverlap(b[j].Time - int64(pr.offset.Offset)) {
			r.OutsideOverlap++
			continue
		}
		r.OnlyB++
		add(connKeyOf(&b[j]), sighting{b: &b[j]})
	}

	// Now that packets are paired, separate the clock offset from the transit time.
	perConn := make([][2][]int64, 0, len(order))
	for _, k := range order {
		var d [2][]int64
		for _, s := range conns[k] {
			if s.a != nil && s.b != nil {
				dir := b2i(s.a.Src != k.Lo)
				d[dir] = append(d[dir], s.b.Time-s.a.Time)
			}
		}
		perConn = append(perConn, d)
	}
	refineOffset(&r.Clock, perConn)
	off := int64(r.Clock.Offset)
	start := earliest(a, b, off)
	r.Start = utc(start)

	labelTotals := map[string]int{}
	for _, k := range order {
		ss := conns[k]
		at := func(s sighting) int64 {
			if s.a != nil {
				return s.a.Time
			}
			return s.b.Time - off
		}
		slices.SortStableFunc(ss, func(x, y sighting) int { return cmp.Compare(at(x), at(y)) })
		cd := buildConnDiff(k, ss, start, off, va, vb, o.Device)
		for _, l := range cd.Labels {
			labelTotals[l.Label] += l.Packets
		}
		r.ByStatus[cd.Status]++
		r.Conns = append(r.Conns, cd)
	}
	slices.SortStableFunc(r.Conns, func(x, y ConnDiff) int { return cmp.Compare(statusRank[x.Status], statusRank[y.Status]) })
	r.Labels = sortedLabels(labelTotals)
	r.Findings = findings(r)
	return r
}

// overlapWindow returns a test for "both captures were running at t" (A's
// clock), with slack on either end for the clock offset's error.
func overlapWindow(a, b []Packet, off, slack int64) func(t int64) bool {
	if len(a) == 0 || len(b) == 0 {
		return func(int64) bool { return true }
	}
	lo := max(a[0].Time, b[0].Time-off) - slack
	hi := min(a[len(a)-1].Time, b[len(b)-1].Time-off) + slack
	return func(t int64) bool { return t >= lo && t <= hi }
}

// earliest is the time of the first packet of either capture on A's clock.
func earliest(a, b []Packet, off int64) int64 {
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return b[0].Time - off
	case len(b) == 0:
		return a[0].Time
	}
	return min(a[0].Time, b[0].Time-off)
}

func sortedLabels(m map[string]int) []LabelCount {
	out := make([]LabelCount, 0, len(m))
	for l, n := range m {
		out = append(out, LabelCount{l, n})
	}
	slices.SortFunc(out, func(x, y LabelCount) int {
		if c := cmp.Compare(y.Packets, x.Packets); c != 0 {
			return c
		}
		return cmp.Compare(x.Label, y.Label)
	})
	return out
}

func buildConnDiff(k connKey, ss []sighting, start, off int64, va, vb []verdict, device string) ConnDiff {
	client, server := roles(k, func(yield func(*Packet) bool) {
		for _, s := range ss {
			if !yield(s.pkt()) {
				return
			}
		}
	})
	cd := ConnDiff{Proto: protoName(k.Proto), Client: endpoint(client, k.Proto), Server: endpoint(server, k.Proto)}
	labels := map[string]int{}
	var acks [2]bool
	for _, s := range ss {
		p := s.pkt()
		reply := p.Src == server && p.Dst == client
		d := &cd.Requests
		if reply {
			d = &cd.Replies
		}
		if p.Flags&packet.ACK != 0 {
			acks[b2i(reply)] = true
		}
		m := Mark{Reply: reply, TA: -1, TB: -1, Desc: describe(p)}
		if s.a != nil {
			d.OnA++
			d.FirstA, d.LastA = firstLast(d.FirstA, d.LastA, s.a.Time)
			m.TA = float64(s.a.Time-start) / 1e9
		}
		if s.b != nil {
			d.OnB++
			d.FirstB, d.LastB = firstLast(d.FirstB, d.LastB, s.b.Time)
			m.TB = float64(s.b.Time-off-start) / 1e9
		}
		switch {
		case s.a != nil && s.b != nil:
			d.Crossed++
		case s.a != nil:
			d.OnlyA++
			m.Label = labelAt(va, s.a.Index, device)
		default:
			d.OnlyB++
			m.Label = labelAt(vb, s.b.Index, device)
		}
		if m.Label != "" {
			labels[m.Label]++
		}
		cd.Timeline = append(cd.Timeline, m)
	}
	cd.Labels = sortedLabels(labels)
	cd.Status, cd.Verdict = judge(&cd, device, acks, k.Proto != packet.ProtoTCP)
	return cd
}

func labelAt(vs []verdict, index int, device string) string {
	if index <= 0 || index >= len(vs) {
		return ""
	}
	return labelFor(vs[index], device)
}

func firstLast(first, last time.Time, t int64) (time.Time, time.Time) {
	tt := utc(t)
	if first.IsZero() || tt.Before(first) {
		first = tt
	}
	if last.IsZero() || tt.After(last) {
		last = tt
	}
	return first, last
}

// serverAddr is a ConnDiff's server endpoint in canonical form, for grouping
// connections by server.
func serverAddr(cd *ConnDiff) string {
	if ap, err := netip.ParseAddrPort(cd.Server); err == nil {
		return ap.String()
	}
	return cd.Server
}

// findings are the report's headline sentences.
func findings(r *DiffReport) []string {
	var out []string
	if r.Clock.Conns > 0 {
		out = append(out, fmt.Sprintf("clock: B runs %s ahead of A; packets take %s from one capture point to the other (from %d connections that crossed both ways; 5-95%% spread of the differences %s)",
			fmtDuration(r.Clock.Offset), fmtDuration(r.Clock.Transit), r.Clock.Conns, fmtDuration(r.Clock.Spread)))
	} else {
		out = append(out, fmt.Sprintf("clock: B runs %s ahead of A, transit time included (median of %d unambiguous packet pairs; 5-95%% spread %s)",
			fmtDuration(r.Clock.Offset), r.Clock.Pairs, fmtDuration(r.Clock.Spread)))
	}
	out = append(out, fmt.Sprintf("packets: %d crossed, %d seen only on A, %d seen only on B", r.Crossed, r.OnlyA, r.OnlyB))
	if r.OutsideOverlap > 0 {
		out = append(out, fmt.Sprintf("%s seen while only one capture was running were left out", plural(r.OutsideOverlap, "packet")))
	}
	out = append(out, fmt.Sprintf("connections: %d asymmetric, %d one-sided, %d lossy, %d clean",
		r.ByStatus[StatusAsymmetric], r.ByStatus[StatusOneSided], r.ByStatus[StatusLossy], r.ByStatus[StatusClean]))

	// Asymmetric connections usually share a server and a cause: say it once per
	// server, with one connection's verdict as the example.
	type group struct {
		n, of   int
		example string
	}
	groups := map[string]*group{}
	var servers []string
	for i := range r.Conns {
		c := &r.Conns[i]
		key := c.Proto + " " + serverAddr(c)
		g := groups[key]
		if g == nil {
			g = &group{}
			groups[key] = g
			servers = append(servers, key)
		}
		g.of++
		if c.Status == StatusAsymmetric {
			g.n++
			if g.example == "" {
				g.example = c.Verdict
			}
		}
	}
	for _, s := range servers {
		if g := groups[s]; g.n > 0 {
			out = append(out, fmt.Sprintf("server %s: %d of %d connections asymmetric, e.g. %s", s, g.n, g.of, g.example))
		}
	}
	for _, l := range r.Labels {
		out = append(out, fmt.Sprintf("%s seen on one side only: %s", plural(l.Packets, "packet"), l.Label))
	}
	return out
}

// fmtDuration prints a duration rounded to what people compare: microseconds
// below a second, milliseconds above.
func fmtDuration(d time.Duration) string {
	if d < time.Second && d > -time.Second {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
