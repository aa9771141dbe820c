package diagnose

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"keepstate/conntrack"
	"keepstate/firewall"
	"keepstate/packet"
	"keepstate/policy"
)

// AdviseOptions tune Advise.
type AdviseOptions struct {
	Policy *Policy // nil: DefaultPolicy
	// BytesPerConn is the measured memory of one tracked connection (keepstate
	// bench engine); 0 leaves the memory figures out. BytesSource says where the
	// figure comes from, for the report.
	BytesPerConn float64
	BytesSource  string
	// KeepAliveMinIdle is how long a connection must have been silent before a
	// packet counts as a keep-alive probe (default 1 s).
	KeepAliveMinIdle time.Duration
	// GapMin is the shortest idle gap listed per connection (default 60 s).
	GapMin time.Duration
	// Margin is added to the longest idle gap to advise a timeout (default 0.1,
	// 10 %); the result is rounded up to whole 5 minutes.
	Margin float64
}

// RFC5382MinIdle is RFC 5382's floor for an established TCP connection's idle
// timeout: 2 h 4 min, two hours of RFC 1122 keep-alive time and some probes.
const RFC5382MinIdle = 7440 * time.Second

// establishedTimeout is the setting the advice is about.
const establishedTimeout = "TcpEstablishedTimeout"

// AdviseReport is the outcome of Advise.
type AdviseReport struct {
	Capture        CaptureInfo `json:"capture"`
	Connections    int         `json:"connections"`     // tracked by keepstate, every protocol
	TCPConnections int         `json:"tcp_connections"` // of them TCP
	WithKeepAlives int         `json:"with_keepalives"`
	// KeepAliveTimeS is the median over connections of their estimated
	// keep-alive time; 0 without probes.
	KeepAliveTimeS float64 `json:"keepalive_time_s,omitempty"`
	Flagged        int     `json:"flagged"` // connections cut, or probed without answer`
	// Timeouts has one entry per idle timeout some connection's idle gap fell
	// under, TcpEstablishedTimeout always first.
	Timeouts []TimeoutAdvice `json:"timeouts"`
	RFC5382S int64           `json:"rfc5382_min_s"`
	Memory   *MemoryAdvice   `json:"memory,omitempty"`
	Findings []string        `json:"findings"`
	// Conns lists the connections worth a look: cut ones first, then those with
	// keep-alives, then the longest idle; at most maxAdviseConns.
	Conns []ConnAdvice `json:"connections_detail"`
}

// TimeoutAdvice compares one idle timeout with the idle gaps it governs.
type TimeoutAdvice struct {
	Name     string `json:"name"`
	CurrentS int64  `json:"current_s"`
	// LongestIdleS is the longest idle gap of a connection in a state this timeout
	// governs; NeededS the smallest timeout that keeps it (whole seconds, strictly
	// longer: the table forgets a connection idle for exactly its timeout).
	LongestIdleS float64 `json:"longest_idle_s"`
	NeededS      int64   `json:"needed_s"`
	AdvisedS     int64   `json:"advised_s"` // NeededS plus the margin, rounded up to 5 min
	Cut          int     `json:"connections_cut"`
}

// MemoryAdvice is what a timeout costs for the capture's traffic.
type MemoryAdvice struct {
	BytesPerConn float64    `json:"bytes_per_connection"`
	Source       string     `json:"source"`
	Current      MemPoint   `json:"current"`
	Advised      MemPoint   `json:"advised"`
	Curve        []MemPoint `json:"curve"`
}

// ConnAdvice is one connection's idle behaviour.
type ConnAdvice struct {
	Proto          string      `json:"proto"`
	Client         string      `json:"client"`
	Server         string      `json:"server"`
	First          time.Time   `json:"first"`
	Last           time.Time   `json:"last"`
	DurationS      float64     `json:"duration_s"`
	Packets        int         `json:"packets"`
	KeepAlives     []KeepAlive `json:"keepalives,omitempty"`
	KeepAliveTimeS float64     `json:"keepalive_time_s,omitempty"` // estimated; 0 without probes
	LongestIdleS   float64     `json:"longest_idle_s"`
	Gaps           []Gap       `json:"gaps,omitempty"`
	Cut            *Cut        `json:"cut,omitempty"`
	CutInCapture   string      `json:"cut_in_capture,omitempty"`
	Flagged        bool        `json:"flagged"`
	Verdict        string      `json:"verdict"`
	Times          []float64   `json:"-"` // every packet, seconds since First, for the HTML report
	firstNs        int64
}

// Gap is one idle gap of a connection.
type Gap struct {
	Start    time.Time `json:"start"`
	IdleS    float64   `json:"idle_s"`
	State    string    `json:"state"`   // the connection's state during the gap
	Timeout  string    `json:"timeout"` // the timeout that governs that state
	TimeoutS int64     `json:"timeout_s"`
	Cut      bool      `json:"cut"` // the gap reaches the timeout: the connection is forgotten
}

// Cut says when and how the configuration's timeouts end a connection.
type Cut struct {
	At       time.Time `json:"at"`
	Timeout  string    `json:"timeout"`
	TimeoutS int64     `json:"timeout_s"`
	// Next is the connection's next packet, which finds it gone; NextVerdict is
	// what keepstate does with it under the configuration.
	Next        time.Time `json:"next"`
	NextVerdict string    `json:"next_verdict"`
}

const maxAdviseConns = 200

// Advise reads a capture and compares its connections' idle behaviour with the
// configuration's idle timeouts. The capture is replayed through the engine twice:
// with the configuration, for what keepstate does, and with every timeout at its
// maximum, for the state each connection is in during each idle gap.
func Advise(path string, o AdviseOptions) (*AdviseReport, error) {
	if o.Policy == nil {
		o.Policy = DefaultPolicy()
	}
	c, err := ReadCapture(path)
	if err != nil {
		return nil, err
	}
	actual, err := replayVerdicts(path, o.Policy)
	if err != nil {
		return nil, err
	}
	free, err := replayVerdicts(path, neverForget(o.Policy))
	if err != nil {
		return nil, err
	}
	return advise(c, actual, free, o), nil
}

// neverForget returns a copy of pol whose idle timeouts never end a connection
// within a capture and whose limits never refuse one: replayed with it, the engine
// says what state every connection is in during every idle gap.
func neverForget(pol *Policy) *Policy {
	c := *pol
	tc := &c.Settings.Conntrack
	const forever = 365 * 24 * time.Hour
	for _, td := range conntrack.TimeoutDefs() {
		*td.Field(&tc.Timeouts) = forever
	}
	tc.AdaptiveStart, tc.AdaptiveEnd = 0, 0
	tc.PerSourceConns, tc.PerSourceRate = 0, 0
	tc.MaxConns = -1
	// Rules' idle timeouts too; the connections keep their rules, so that the
	// advice can say whose timeout a gap is up against.
	m := pol.Rules.Model()
	lifted := false
	for i := range m.Rules {
		if m.Rules[i].IdleTimeout > 0 {
			m.Rules[i].IdleTimeout, lifted = forever, true
		}
	}
	if lifted {
		if rs, err := policy.Compile(&m); err == nil {
			c.Rules = rs
		}
	}
	return &c
}

// timeoutIn names the idle timeout a connection in the state v says has under pol,
// and its value: "IdleTimeout of rule 'NAME'" when the connection's rule sets one
// for its state (established TCP, and the unacknowledged-data cap it lowers), else
// the setting.
func timeoutIn(pol *Policy, v verdict) (string, time.Duration) {
	name := conntrack.TimeoutName(v.state, true)
	limit := timeoutSetting(pol, name)
	if i := firewall.RuleIndex(pol.Rules, v.meta.Rule); i >= 0 && v.meta.Rule != 0 && v.state == conntrack.StateEstablished {
		if r := pol.Rules.Rule(i); r.IdleTimeout > 0 {
			return "IdleTimeout of rule '" + r.Name + "'", r.IdleTimeout
		}
	}
	return name, limit
}

// timeoutSetting returns the value in force of the timeout setting called name.
func timeoutSetting(pol *Policy, name string) time.Duration {
	td, ok := conntrack.TimeoutByName(name)
	if !ok {
		return 0
	}
	t := pol.Settings.Conntrack.Timeouts
	if v := *td.Field(&t); v > 0 {
		return v
	}
	return td.Default
}

// forgets reports whether a connection forgotten in state s is a loss: it was
// open. Closed connections (TIME_WAIT, CLOSE) and unanswered openings are meant to
// go.
func forgets(s conntrack.State) bool {
	switch s {
	case conntrack.StateNone, conntrack.StateTimeWait, conntrack.StateClose,
		conntrack.StateSynSent, conntrack.StateSynSent2, conntrack.StateUDPUnreplied,
		conntrack.StateICMPUnreplied, conntrack.StateICMPReplied, conntrack.StateOtherUnreplied:
		return false
	}
	return true
}

func advise(c *Capture, actual, free []verdict, o AdviseOptions) *AdviseReport {
	if o.KeepAliveMinIdle <= 0 {
		o.KeepAliveMinIdle = time.Second
	}
	if o.GapMin <= 0 {
		o.GapMin = time.Minute
	}
	if o.Margin <= 0 {
		o.Margin = 0.1
	}
	cfg := o.Policy
	r := &AdviseReport{Capture: captureInfo(c), RFC5382S: int64(RFC5382MinIdle / time.Second)}
	at := func(vs []verdict, p *Packet) verdict {
		if p.Index < len(vs) {
			return vs[p.Index]
		}
		return verdict{}
	}

	conns := map[connKey][]*Packet{}
	var order []connKey
	for i := range c.Packets {
		p := &c.Packets[i]
		k := connKeyOf(p)
		if _, ok := conns[k]; !ok {
			order = append(order, k)
		}
		conns[k] = append(conns[k], p)
	}

	needs := map[string]*TimeoutAdvice{establishedTimeout: {Name: establishedTimeout}}
	var lifetimes []lifetime
	var all []ConnAdvice
	for _, k := range order {
		ps := conns[k]
		// Only packets keepstate tracks make a connection it must remember.
		lastTracked := -1
		for i, p := range ps {
			if at(free, p).tracked {
				lastTracked = i
			}
		}
		if lastTracked < 0 {
			continue
		}
		r.Connections++
		client, server := roles(k, func(yield func(*Packet) bool) {
			for _, p := range ps {
				if !yield(p) {
					return
				}
			}
		})
		ca := ConnAdvice{
			Proto: protoName(k.Proto), Client: endpoint(client, k.Proto), Server: endpoint(server, k.Proto),
			First: utc(ps[0].Time), Last: utc(ps[len(ps)-1].Time), Packets: len(ps), firstNs: ps[0].Time,
		}
		ca.DurationS = seconds(time.Duration(ps[len(ps)-1].Time - ps[0].Time))
		for _, p := range ps {
			ca.Times = append(ca.Times, seconds(time.Duration(p.Time-ps[0].Time)))
		}

		final := at(free, ps[lastTracked]).state
		lt := lifetime{first: ps[0].Time, last: ps[lastTracked].Time, established: final == conntrack.StateEstablished}
		if !lt.established {
			_, lt.linger = timeoutIn(cfg, at(free, ps[lastTracked]))
		}
		lifetimes = append(lifetimes, lt)

		for i := 1; i < len(ps); i++ {
			before := at(free, ps[i-1])
			if !before.tracked {
				continue
			}
			idle := time.Duration(ps[i].Time - ps[i-1].Time)
			name, limit := timeoutIn(cfg, before)
			cut := forgets(before.state) && limit > 0 && idle >= limit
			if forgets(before.state) {
				ta := needs[name]
				if ta == nil {
					ta = &TimeoutAdvice{Name: name}
					needs[name] = ta
				}
				ta.CurrentS = int64(limit / time.Second)
				ta.LongestIdleS = max(ta.LongestIdleS, seconds(idle))
				if cut && ca.Cut == nil {
					ta.Cut++
				}
				ca.LongestIdleS = max(ca.LongestIdleS, seconds(idle))
			}
			if idle >= o.GapMin {
				ca.Gaps = append(ca.Gaps, Gap{Start: utc(ps[i-1].Time), IdleS: seconds(idle), State: before.state.String(),
					Timeout: name, TimeoutS: int64(limit / time.Second), Cut: cut})
			}
			if cut && ca.Cut == nil {
				ca.Cut = &Cut{At: utc(ps[i-1].Time + int64(limit)), Timeout: name, TimeoutS: int64(limit / time.Second),
					Next: utc(ps[i].Time), NextVerdict: verdictWords(at(actual, ps[i]))}
			}
		}

		if k.Proto == packet.ProtoTCP {
			r.TCPConnections++
			ca.KeepAlives = findKeepAlives(ps, func(p *Packet) bool { return p.Src == client }, o.KeepAliveMinIdle)
			if len(ca.KeepAlives) > 0 {
				r.WithKeepAlives++
				ca.KeepAliveTimeS = seconds(keepAliveTime(ca.KeepAlives))
				ca.CutInCapture = cutEvidence(ca.KeepAlives)
			}
		}
		ca.Flagged = ca.Cut != nil || ca.CutInCapture != ""
		ca.Verdict = connVerdict(&ca)
		all = append(all, ca)
	}

	var kaTimes []int64
	for i := range all {
		if all[i].KeepAliveTimeS > 0 {
			kaTimes = append(kaTimes, int64(secondsDur(all[i].KeepAliveTimeS)))
		}
		if all[i].Flagged {
			r.Flagged++
		}
	}
	r.KeepAliveTimeS = seconds(time.Duration(median(kaTimes)))

	for _, ta := range needs {
		// Other timeouts are only worth a line when they matter: handshakes
		// and closings are idle for milliseconds.
		if ta.Name != establishedTimeout && ta.Cut == 0 && secondsDur(ta.LongestIdleS) < o.GapMin {
			continue
		}
		if ta.CurrentS == 0 {
			ta.CurrentS = int64(timeoutSetting(cfg, ta.Name) / time.Second)
		}
		if ta.LongestIdleS > 0 {
			needed := NeededTimeout(secondsDur(ta.LongestIdleS))
			ta.NeededS = int64(needed / time.Second)
			ta.AdvisedS = int64(AdvisedTimeout(needed, o.Margin) / time.Second)
		}
		r.Timeouts = append(r.Timeouts, *ta)
	}
	slices.SortFunc(r.Timeouts, func(a, b TimeoutAdvice) int {
		if (a.Name == establishedTimeout) != (b.Name == establishedTimeout) {
			if a.Name == establishedTimeout {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})

	if o.BytesPerConn > 0 {
		r.Memory = memoryAdvice(lifetimes, &r.Timeouts[0], o)
	}
	r.Conns = pickConns(all)
	r.Findings = adviseFindings(r)
	return r
}

func seconds(d time.Duration) float64 { return d.Seconds() }

func roundUp(v, step int64) int64 { return (v + step - 1) / step * step }

func memoryAdvice(ls []lifetime, est *TimeoutAdvice, o AdviseOptions) *MemoryAdvice {
	cur := time.Duration(est.CurrentS) * time.Second
	adv := time.Duration(est.AdvisedS) * time.Second
	if est.AdvisedS == 0 {
		adv = cur
	}
	m := &MemoryAdvice{BytesPerConn: o.BytesPerConn, Source: o.BytesSource}
	m.Current = memPoint(ls, cur, o.BytesPerConn)
	m.Advised = memPoint(ls, adv, o.BytesPerConn)
	upTo := max(cur, adv, RFC5382MinIdle) * 5 / 4
	m.Curve = memoryCurve(ls, upTo, 60, o.BytesPerConn, cur, adv, RFC5382MinIdle)
	return m
}

// pickConns orders connections for the report and keeps the interesting ones.
func pickConns(all []ConnAdvice) []ConnAdvice {
	rank := func(c *ConnAdvice) int {
		switch {
		case c.Flagged:
			return 0
		case len(c.KeepAlives) > 0:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(all, func(a, b ConnAdvice) int {
		if c := cmp.Compare(rank(&a), rank(&b)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.LongestIdleS, a.LongestIdleS); c != 0 {
			return c
		}
		return cmp.Compare(a.firstNs, b.firstNs)
	})
	return all[:min(len(all), maxAdviseConns)]
}

// verdictWords says what keepstate does with a packet.
func verdictWords(v verdict) string {
	switch {
	case !v.seen:
		return ""
	case v.action == firewall.Accept:
		return "accepted"
	case v.timeout != "":
		return fmt.Sprintf("%s: %s (%s)", v.action, v.reason, v.timeout)
	}
	return fmt.Sprintf("%s: %s", v.action, v.reason)
}

// cutEvidence looks in a connection's keep-alives for signs that something on the
// path already forgot it: probes nobody answered, retried.
func cutEvidence(kas []KeepAlive) string {
	unanswered, retries := 0, 0
	var retryGaps []int64
	for _, k := range kas {
		if !k.Answered {
			unanswered++
		}
		if k.Retry {
			retries++
			retryGaps = append(retryGaps, int64(k.IdleBefore))
		}
	}
	if unanswered == 0 {
		return ""
	}
	s := fmt.Sprintf("%d of %d keep-alive probes got no answer", unanswered, len(kas))
	if retries > 0 {
		s += fmt.Sprintf(", retried every %s", fmtSeconds(time.Duration(median(retryGaps))))
	}
	return s + ": something on the path may have forgotten the connection"
}
