package insight

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// TextOptions say how WriteText writes insights.
type TextOptions struct {
	Location *time.Location // times in this zone; nil: local
	// Brief writes one line per insight: severity, kind, id and summary.
	Brief bool
	// ApplyHint: say how to apply a fix (for a running daemon; not for replay).
	ApplyHint bool
}

// textWidth is where summaries wrap.
const textWidth = 100

// WriteText writes insights for a terminal: each with its summary, hosts, evidence
// (with the command that explains a sample) and fixes with their diffs.
func WriteText(w io.Writer, ins []Insight, o TextOptions) error {
	loc := o.Location
	if loc == nil {
		loc = time.Local
	}
	tw := &textWriter{w: w}
	for i := range ins {
		if i > 0 && !o.Brief {
			tw.line("")
		}
		writeOne(tw, &ins[i], loc, o)
	}
	return tw.err
}

type textWriter struct {
	w   io.Writer
	err error
}

func (t *textWriter) line(format string, a ...any) {
	if t.err != nil {
		return
	}
	_, t.err = fmt.Fprintf(t.w, format+"\n", a...)
}

// wrapped writes s wrapped at textWidth after prefix, its further lines indented
// to where the first line's text starts.
func (t *textWriter) wrapped(prefix, s string) {
	indent := strings.Repeat(" ", len(prefix))
	for i, l := range wrap(s, textWidth-len(prefix)) {
		if i == 0 {
			t.line("%s%s", prefix, l)
		} else {
			t.line("%s%s", indent, l)
		}
	}
}

func writeOne(t *textWriter, in *Insight, loc *time.Location, o TextOptions) {
	state := "open"
	if !in.Open {
		state = "closed " + in.Closed.In(loc).Format(time.DateTime)
	}
	if o.Brief {
		t.line("%-8s %-26s %-18s %s: %s", in.Severity, in.Kind, in.ID, state, firstSentence(in.Summary))
		return
	}
	t.line("[%s] %s %s (%s): %d %s from %s to %s", in.Severity, in.Kind, in.ID, state, in.Count, in.CountOf,
		in.First.In(loc).Format(time.DateTime), in.Last.In(loc).Format(time.TimeOnly))
	t.wrapped("  ", in.Summary)
	if len(in.Hosts) > 0 {
		var hs []string
		for _, h := range in.Hosts {
			s := h.Role + " " + h.Addr
			if h.Note != "" {
				s += " (" + h.Note + ")"
			}
			hs = append(hs, s)
		}
		t.wrapped("  hosts: ", strings.Join(hs, "; "))
	}
	if len(in.Conns) > 0 {
		more := ""
		if in.Connections > len(in.Conns) {
			more = fmt.Sprintf(" (%d of %d)", len(in.Conns), in.Connections)
		}
		t.wrapped(fmt.Sprintf("  connections%s: ", more), strings.Join(in.Conns, ", "))
	}
	for _, n := range in.Evidence.Notes {
		t.wrapped("  - ", n)
	}
	if len(in.Evidence.Samples) > 0 {
		t.line("  evidence:")
		for _, s := range in.Evidence.Samples {
			t.line("    %s %s: %s", s.Time.In(loc).Format(time.TimeOnly), s.Packet, s.Detail)
			if s.Explain != "" {
				t.line("      %s", s.Explain)
			}
		}
	}
	for i, f := range in.Fix {
		t.line("  fix %d (%s): %s", i+1, f.Scope, f.Title)
		t.wrapped("      cost: ", f.Cost)
		if f.Command != "" {
			t.line("      run: %s", f.Command)
		}
		for _, l := range splitLines(f.Diff) {
			t.line("      %s", l)
		}
	}
	if o.ApplyHint && in.Open {
		for i, f := range in.Fix {
			if f.Applicable {
				t.line("  apply fix %d: keepstate insights apply %s --fix %d --confirm-within 5m, then keepstate config confirm", i+1, in.ID, i+1)
				break
			}
		}
	}
}

// firstSentence is s up to its first ": " or ". ", for one-line listings.
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i > 0 {
		return s[:i+1]
	}
	return s
}

// wrap cuts s into lines of at most width columns at spaces.
func wrap(s string, width int) []string {
	var out []string
	words := strings.Fields(s)
	cur := ""
	for _, w := range words {
		switch {
		case cur == "":
			cur = w
		case len(cur)+1+len(w) > width:
			out = append(out, cur)
			cur = w
		default:
			cur += " " + w
		}
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}
