package diagnose

import (
	"fmt"
	"strings"
	"time"
)

// fmtSeconds prints a duration as whole seconds with a readable form beside it
// when it is long: "7200 s (2 h)", "7440 s (2 h 4 min)", "75 s".
func fmtSeconds(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s < 120 {
		if d < 10*time.Second && d != d.Round(time.Second) {
			return fmt.Sprintf("%.3g s", d.Seconds())
		}
		return fmt.Sprintf("%d s", s)
	}
	h, m, sec := s/3600, s%3600/60, s%60
	var parts []string
	if h > 0 {
		parts = append(parts, fmt.Sprintf("%d h", h))
	}
	if m > 0 {
		parts = append(parts, fmt.Sprintf("%d min", m))
	}
	if sec > 0 {
		parts = append(parts, fmt.Sprintf("%d s", sec))
	}
	return fmt.Sprintf("%d s (%s)", s, strings.Join(parts, " "))
}

func secondsDur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// connVerdict sums a connection up in one sentence.
func connVerdict(c *ConnAdvice) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s -> %s, %d packets over %s", c.Proto, c.Client, c.Server, c.Packets, fmtSeconds(secondsDur(c.DurationS)))
	if n := len(c.KeepAlives); n > 0 {
		answered := 0
		for _, k := range c.KeepAlives {
			if k.Answered {
				answered++
			}
		}
		fmt.Fprintf(&b, "; %d keep-alive probes from the %s (%d answered), keep-alive time about %s",
			n, c.KeepAlives[0].From, answered, fmtSeconds(secondsDur(c.KeepAliveTimeS)))
	}
	fmt.Fprintf(&b, "; longest idle %s", fmtSeconds(secondsDur(c.LongestIdleS)))
	if c.Cut != nil {
		fmt.Fprintf(&b, "; cut at %s by %s %d s, its next packet at %s is %s",
			c.Cut.At.Format(time.DateTime), c.Cut.Timeout, c.Cut.TimeoutS, c.Cut.Next.Format(time.DateTime), c.Cut.NextVerdict)
	}
	if c.CutInCapture != "" {
		b.WriteString("; in the capture: " + c.CutInCapture)
	}
	return b.String()
}

func adviseFindings(r *AdviseReport) []string {
	var out []string
	out = append(out, fmt.Sprintf("%d connections tracked (%d TCP), %d with TCP keep-alives", r.Connections, r.TCPConnections, r.WithKeepAlives))
	if r.WithKeepAlives > 0 {
		out = append(out, fmt.Sprintf("keep-alive probes come after %s of idleness (median over %d connections; RFC 1122's default is 2 h)",
			fmtSeconds(secondsDur(r.KeepAliveTimeS)), r.WithKeepAlives))
	}
	rfc := time.Duration(r.RFC5382S) * time.Second
	for i, t := range r.Timeouts {
		cur := time.Duration(t.CurrentS) * time.Second
		if t.LongestIdleS == 0 {
			if i == 0 {
				out = append(out, fmt.Sprintf("%s %s: no established connection was idle long enough to matter", t.Name, fmtSeconds(cur)))
			}
			continue
		}
		longest := fmtSeconds(secondsDur(t.LongestIdleS))
		if t.Cut > 0 {
			out = append(out, fmt.Sprintf("%s %s cuts %d connections (longest idle %s): the smallest value that keeps them all is %d s; with a margin, %s",
				t.Name, fmtSeconds(cur), t.Cut, longest, t.NeededS, fmtSeconds(time.Duration(t.AdvisedS)*time.Second)))
		} else {
			out = append(out, fmt.Sprintf("%s %s keeps every connection (longest idle %s; %d s would be the smallest that does, %s with a margin)",
				t.Name, fmtSeconds(cur), longest, t.NeededS, fmtSeconds(time.Duration(t.AdvisedS)*time.Second)))
		}
	}
	est := r.Timeouts[0]
	cur := time.Duration(est.CurrentS) * time.Second
	rel := func(d time.Duration) string {
		if d < rfc {
			return "below"
		}
		return "at or above"
	}
	s := fmt.Sprintf("RFC 5382 asks at least %s for an established connection's idle timeout: the current %s is %s it",
		fmtSeconds(rfc), fmtSeconds(cur), rel(cur))
	if est.AdvisedS > 0 && est.Cut > 0 {
		adv := time.Duration(est.AdvisedS) * time.Second
		s += fmt.Sprintf(", the advised %s %s it", fmtSeconds(adv), rel(adv))
	}
	out = append(out, s)
	if m := r.Memory; m != nil {
		out = append(out, fmt.Sprintf("memory for this capture's traffic: at %d s, at most %d connections tracked at once, %s; at %d s, %d connections, %s (%.1f bytes per connection, %s)",
			m.Current.TimeoutS, m.Current.PeakConns, fmtMiB(m.Current.MiB), m.Advised.TimeoutS, m.Advised.PeakConns, fmtMiB(m.Advised.MiB), m.BytesPerConn, m.Source))
	}
	quoted := 0
	for _, c := range r.Conns {
		if c.Flagged && quoted < maxFlaggedFindings {
			out = append(out, c.Verdict)
			quoted++
		}
	}
	if r.Flagged > quoted {
		out = append(out, fmt.Sprintf("... and %d more flagged connections", r.Flagged-quoted))
	}
	return out
}

// maxFlaggedFindings is how many flagged connections the findings quote.
const maxFlaggedFindings = 3

// fmtMiB prints an amount of memory in MiB, with KiB beside small amounts so that
// a small capture's figures do not read as zero.
func fmtMiB(mib float64) string {
	if mib < 1 {
		return fmt.Sprintf("%.3f MiB (%.1f KiB)", mib, mib*1024)
	}
	return fmt.Sprintf("%.1f MiB", mib)
}
