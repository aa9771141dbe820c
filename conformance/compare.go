package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Disagreement is one frame the two sides decided differently.
type Disagreement struct {
	Frame     *Frame
	Keepstate Verdict
	Kernel    Verdict
}

// Result is the comparison of one capture in one mode.
type Result struct {
	Mode          Mode
	Frames        int // compared
	Disagreements []Disagreement
	// Drops by side.
	KeepstateDrops, KernelDrops int
}

// Agree is the number of frames both sides decided alike.
func (r *Result) Agree() int { return r.Frames - len(r.Disagreements) }

// Compare pairs the verdicts of both sides on the frames of s.
func Compare(s *Stream, m Mode, keepstate, kernel []Verdict) Result {
	r := Result{Mode: m, Frames: len(s.Frames)}
	for i := range s.Frames {
		ks, kn := keepstate[i], kernel[i]
		if !ks.Pass {
			r.KeepstateDrops++
		}
		if !kn.Pass {
			r.KernelDrops++
		}
		if ks.Pass != kn.Pass {
			r.Disagreements = append(r.Disagreements, Disagreement{Frame: &s.Frames[i], Keepstate: ks, Kernel: kn})
		}
	}
	return r
}

// Capture is one capture compared in every mode asked for.
type Capture struct {
	Stream  *Stream
	Results []Result // one per mode, in the order asked
}

// Runner compares captures against kernels it keeps for its whole life, one per
// mode: building a namespace costs far more than replaying a capture.
type Runner struct {
	kernels []*Kernel
	modes   []Mode
}

// NewRunner builds a kernel namespace for every mode of modes.
func NewRunner(ctx context.Context, modes []Mode, o KernelOptions) (*Runner, error) {
	r := &Runner{modes: modes}
	for _, m := range modes {
		k, err := NewKernel(ctx, m, o)
		if err != nil {
			return nil, errors.Join(err, r.Close())
		}
		r.kernels = append(r.kernels, k)
	}
	return r, nil
}

// Close removes the runner's namespaces.
func (r *Runner) Close() error {
	var errs []error
	for _, k := range r.kernels {
		errs = append(errs, k.Close())
	}
	r.kernels = nil
	return errors.Join(errs...)
}

// Run compares the capture at path in every mode of the runner.
func (r *Runner) Run(path string) (*Capture, error) {
	s, err := ReadStream(path)
	if err != nil {
		return nil, err
	}
	c := &Capture{Stream: s}
	for i, m := range r.modes {
		ks, err := DecideKeepstate(s, m)
		if err != nil {
			return nil, err
		}
		kn, err := r.kernels[i].Decide(s)
		if err != nil {
			return nil, fmt.Errorf("%s: kernel (%s): %w", path, m, err)
		}
		c.Results = append(c.Results, Compare(s, m, ks, kn))
	}
	return c, nil
}

// Totals sums results over captures, per mode.
type Totals struct {
	Mode              Mode
	Captures          int // with at least one frame compared
	CapturesAgreeing  int // every frame agreed
	Frames, Agreeing  int
	KeepstateDrops    int
	KernelDrops       int
	SkippedByCause    map[string]int
	KeepstateOnlyDrop int // frames keepstate drops and the kernel passes
	KernelOnlyDrop    int // frames the kernel drops and keepstate passes
}

// Sum totals the results of captures for each mode.
func Sum(captures []*Capture, modes []Mode) []Totals {
	out := make([]Totals, len(modes))
	for i, m := range modes {
		t := Totals{Mode: m, SkippedByCause: map[string]int{}}
		for _, c := range captures {
			for cause, n := range c.Stream.Skipped {
				t.SkippedByCause[cause] += n
			}
			r := c.Results[i]
			if r.Frames == 0 {
				continue
			}
			t.Captures++
			if len(r.Disagreements) == 0 {
				t.CapturesAgreeing++
			}
			t.Frames += r.Frames
			t.Agreeing += r.Agree()
			t.KeepstateDrops += r.KeepstateDrops
			t.KernelDrops += r.KernelDrops
			for _, d := range r.Disagreements {
				if d.Kernel.Pass {
					t.KeepstateOnlyDrop++
				} else {
					t.KernelOnlyDrop++
				}
			}
		}
		out[i] = t
	}
	return out
}

// WriteCapture writes the per-frame disagreements of c.
func WriteCapture(w io.Writer, c *Capture) {
	s := c.Stream
	fmt.Fprintf(w, "%s: %d packets, %d TCP, %d compared", s.Path, s.Records, s.TCP, len(s.Frames))
	if len(s.Skipped) > 0 {
		fmt.Fprintf(w, " (skipped: %s)", skippedText(s.Skipped))
	}
	fmt.Fprintln(w)
	if s.ReadErr != nil {
		fmt.Fprintf(w, "  capture unreadable after the frames compared: %v\n", s.ReadErr)
	}
	for _, r := range c.Results {
		fmt.Fprintf(w, "  %s: %d of %d agree\n", r.Mode, r.Agree(), r.Frames)
		for _, d := range r.Disagreements {
			f := d.Frame
			fmt.Fprintf(w, "    #%d %s side: %s\n      keepstate %s, kernel %s\n", f.Record, f.Side, f.Describe(), d.Keepstate, d.Kernel)
		}
	}
}

// WriteTotals writes the summary of totals.
func WriteTotals(w io.Writer, totals []Totals) {
	for _, t := range totals {
		fmt.Fprintf(w, "%s: %d of %d packets agree (%s), %d of %d captures agree on every packet (%s); drops: keepstate %d, kernel %d; keepstate alone drops %d, the kernel alone %d\n",
			t.Mode, t.Agreeing, t.Frames, percent(t.Agreeing, t.Frames), t.CapturesAgreeing, t.Captures, percent(t.CapturesAgreeing, t.Captures),
			t.KeepstateDrops, t.KernelDrops, t.KeepstateOnlyDrop, t.KernelOnlyDrop)
	}
	if len(totals) > 0 && len(totals[0].SkippedByCause) > 0 {
		fmt.Fprintf(w, "TCP packets not compared: %s\n", skippedText(totals[0].SkippedByCause))
	}
}

func percent(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(of))
}

func skippedText(m map[string]int) string {
	causes := make([]string, 0, len(m))
	for c := range m {
		causes = append(causes, c)
	}
	sort.Strings(causes)
	parts := make([]string, len(causes))
	for i, c := range causes {
		parts[i] = fmt.Sprintf("%d %s", m[c], c)
	}
	return strings.Join(parts, ", ")
}
