package diagnose

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// textWriter collects a report's text, written out at once by flush.
type textWriter struct {
	b strings.Builder
}

func (t *textWriter) f(format string, a ...any) { fmt.Fprintf(&t.b, format, a...) }

func (t *textWriter) flush(w io.Writer) error {
	_, err := io.WriteString(w, t.b.String())
	return err
}

func captureLine(name string, c *CaptureInfo) string {
	s := fmt.Sprintf("%s: %s, %d IP packets", name, c.Path, c.Packets)
	if c.Skipped > 0 {
		s += fmt.Sprintf(" (%d others skipped)", c.Skipped)
	}
	if !c.First.IsZero() {
		s += fmt.Sprintf(", %s to %s UTC", c.First.Format("2006-01-02 15:04:05.000"), c.Last.Format("2006-01-02 15:04:05.000"))
	}
	if c.Error != "" {
		s += "; " + c.Error
	}
	return s
}

// maxCleanListed is how many clean connections the text report lists; --json
// has them all.
const maxCleanListed = 5

// WriteText prints the diff for a terminal: the findings, then every connection
// that is not clean, then a few clean ones.
func (r *DiffReport) WriteText(w io.Writer) error {
	var t textWriter
	t.f("%s\n%s\n", captureLine("A", &r.A), captureLine("B", &r.B))
	t.f("\nfindings:\n")
	for _, f := range r.Findings {
		t.f("  - %s\n", f)
	}
	clean := 0
	t.f("\nconnections (worst first):\n")
	for i := range r.Conns {
		c := &r.Conns[i]
		if c.Status == StatusClean {
			clean++
			if clean > maxCleanListed {
				continue
			}
		}
		t.f("  [%s] %s %s -> %s\n      %s\n", c.Status, c.Proto, c.Client, c.Server, c.Verdict)
		for _, l := range c.Labels {
			t.f("      %s: %s\n", plural(l.Packets, "packet"), l.Label)
		}
	}
	if clean > maxCleanListed {
		t.f("  ... and %d more clean connections (--json lists every one)\n", clean-maxCleanListed)
	}
	return t.flush(w)
}

// WriteText prints the advice for a terminal.
func (r *AdviseReport) WriteText(w io.Writer) error {
	var t textWriter
	t.f("%s\n\nfindings:\n", captureLine("capture", &r.Capture))
	for _, f := range r.Findings {
		t.f("  - %s\n", f)
	}
	t.f("\nidle timeouts (seconds):\n  %-24s %9s %13s %9s %9s %5s\n", "setting", "current", "longest idle", "needed", "advised", "cuts")
	for _, ta := range r.Timeouts {
		t.f("  %-24s %9d %13.1f %9d %9d %5d\n", ta.Name, ta.CurrentS, ta.LongestIdleS, ta.NeededS, ta.AdvisedS, ta.Cut)
	}
	t.f("  RFC 5382 minimum for established connections: %d s\n", r.RFC5382S)
	if m := r.Memory; m != nil {
		t.f("\nmemory for this capture's traffic (%.1f bytes per connection, %s):\n", m.BytesPerConn, m.Source)
		for _, p := range []struct {
			what string
			pt   MemPoint
		}{{"current", m.Current}, {"advised", m.Advised}} {
			t.f("  %-8s TcpEstablishedTimeout %6d s: at most %d connections tracked at once, %s\n", p.what, p.pt.TimeoutS, p.pt.PeakConns, fmtMiB(p.pt.MiB))
		}
	} else {
		t.f("\nmemory: not estimated (give --bytes-per-conn from 'keepstate bench engine --json')\n")
	}
	if len(r.Conns) > 0 {
		t.f("\nconnections (flagged first):\n")
	}
	for i := range r.Conns {
		c := &r.Conns[i]
		mark := " "
		if c.Flagged {
			mark = "!"
		}
		t.f(" %s %s\n", mark, c.Verdict)
		for _, k := range c.KeepAlives {
			ans := "no answer"
			if k.Answered {
				ans = "answered in " + fmtDuration(k.AnswerDelay)
			}
			t.f("      keep-alive %s from the %s after %s idle, %s\n", k.Time.Format(time.DateTime), k.From, fmtSeconds(k.IdleBefore), ans)
		}
	}
	return t.flush(w)
}

// plural writes "1 packet" or "3 packets".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
