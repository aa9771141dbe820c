package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"keepstate/conformance"
)

func init() {
	register(&command{
		name:    "conformance",
		summary: "replay captures through the Linux kernel's conntrack and keepstate, and list every packet they decide differently (root)",
		run:     runConformance,
	})
}

const conformanceUsage = `conformance [--mode strict|loose|both] [--all] [--json] [--settle DURATION] CAPTURE|DIR...

Replays the TCP packets of each capture (every file of a DIR) through a network
namespace whose bridge runs the kernel's conntrack ("ct state invalid"), with
nf_conntrack_tcp_loose=0 for strict (Require3WayHandshake=1) and 1 for loose, and
through keepstate's engine with the same setting, and prints every packet one passes
and the other drops, then the agreement rate. See docs/conformance.md.`

// conformanceJSON is the --json output.
type conformanceJSON struct {
	Captures []conformanceCaptureJSON `json:"captures"`
	Totals   []conformanceTotalsJSON  `json:"totals"`
	Errors   []string                 `json:"errors,omitempty"`
}

type conformanceCaptureJSON struct {
	Path    string                  `json:"path"`
	Packets int                     `json:"packets"`
	TCP     int                     `json:"tcp"`
	Skipped map[string]int          `json:"skipped,omitempty"`
	Modes   []conformanceResultJSON `json:"modes"`
}

type conformanceResultJSON struct {
	Mode          string                    `json:"mode"`
	Compared      int                       `json:"compared"`
	Agree         int                       `json:"agree"`
	Disagreements []conformanceDisagreement `json:"disagreements,omitempty"`
}

type conformanceDisagreement struct {
	Record    int    `json:"record"`
	Offset    int64  `json:"offset"`
	Side      string `json:"side"`
	Packet    string `json:"packet"`
	Keepstate string `json:"keepstate"`
	Kernel    string `json:"kernel"`
}

type conformanceTotalsJSON struct {
	Mode             string         `json:"mode"`
	Captures         int            `json:"captures"`
	CapturesAgreeing int            `json:"captures_agreeing"`
	Packets          int            `json:"packets"`
	PacketsAgreeing  int            `json:"packets_agreeing"`
	KeepstateOnly    int            `json:"keepstate_only_drops"`
	KernelOnly       int            `json:"kernel_only_drops"`
	Skipped          map[string]int `json:"skipped,omitempty"`
}

func runConformance(e *env, args []string) int {
	fs := newFlagSet(e, "conformance", conformanceUsage)
	mode := fs.String("mode", "both", "strict, loose or both")
	all := fs.Bool("all", false, "list every capture, also those where both sides agree on every packet")
	asJSON := fs.Bool("json", false, "print the results as one JSON object")
	settle := fs.Duration("settle", 100*time.Millisecond, "how long to wait for frames still in the bridge before counting them refused")
	args, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	var modes []conformance.Mode
	switch *mode {
	case "strict":
		modes = []conformance.Mode{conformance.Strict}
	case "loose":
		modes = []conformance.Mode{conformance.Loose}
	case "both":
		modes = conformance.Modes
	default:
		e.errorf("conformance: --mode %q: want strict, loose or both", *mode)
		return exitUsage
	}
	if len(args) == 0 {
		fs.Usage()
		return exitUsage
	}
	paths, err := capturePaths(args)
	if err != nil {
		e.errorf("conformance: %v", err)
		return exitUsage
	}
	if why := conformance.Missing(); why != "" {
		e.errorf("conformance: %s", why)
		return exitFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runner, err := conformance.NewRunner(ctx, modes, conformance.KernelOptions{Settle: *settle})
	if err != nil {
		e.errorf("conformance: %v", err)
		return exitFail
	}
	defer runner.Close()

	var captures []*conformance.Capture
	var failed []string
	for _, path := range paths {
		if ctx.Err() != nil {
			e.errorf("conformance: interrupted")
			return exitFail
		}
		c, err := runner.Run(path)
		if err != nil {
			failed = append(failed, err.Error())
			if !*asJSON {
				e.errorf("conformance: %v", err)
			}
			continue
		}
		captures = append(captures, c)
		if !*asJSON && (*all || disagrees(c)) {
			conformance.WriteCapture(e.stdout, c)
		}
	}
	totals := conformance.Sum(captures, modes)
	if *asJSON {
		if err := writeJSON(e.stdout, conformanceOut(captures, totals, failed)); err != nil {
			return exitFail
		}
	} else {
		fmt.Fprintf(e.stdout, "%d files, %d captures carry TCP\n", len(paths), countWithFrames(captures))
		conformance.WriteTotals(e.stdout, totals)
	}
	if len(failed) > 0 && len(captures) == 0 {
		return exitFail
	}
	return exitOK
}

// capturePaths expands directories into the files they hold, in name order.
func capturePaths(args []string) ([]string, error) {
	var paths []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			paths = append(paths, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, ent := range entries {
			if ent.Type().IsRegular() {
				names = append(names, ent.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			paths = append(paths, filepath.Join(a, n))
		}
	}
	return paths, nil
}

func disagrees(c *conformance.Capture) bool {
	for _, r := range c.Results {
		if len(r.Disagreements) > 0 {
			return true
		}
	}
	return c.Stream.ReadErr != nil && len(c.Stream.Frames) > 0
}

func countWithFrames(captures []*conformance.Capture) int {
	n := 0
	for _, c := range captures {
		if len(c.Stream.Frames) > 0 {
			n++
		}
	}
	return n
}

func conformanceOut(captures []*conformance.Capture, totals []conformance.Totals, failed []string) conformanceJSON {
	out := conformanceJSON{Errors: failed}
	for _, c := range captures {
		if len(c.Stream.Frames) == 0 {
			continue
		}
		cj := conformanceCaptureJSON{Path: c.Stream.Path, Packets: c.Stream.Records, TCP: c.Stream.TCP, Skipped: c.Stream.Skipped}
		for _, r := range c.Results {
			rj := conformanceResultJSON{Mode: r.Mode.String(), Compared: r.Frames, Agree: r.Agree()}
			for _, d := range r.Disagreements {
				rj.Disagreements = append(rj.Disagreements, conformanceDisagreement{
					Record: d.Frame.Record, Offset: d.Frame.Offset, Side: d.Frame.Side.String(),
					Packet: d.Frame.Describe(), Keepstate: d.Keepstate.String(), Kernel: d.Kernel.String(),
				})
			}
			cj.Modes = append(cj.Modes, rj)
		}
		out.Captures = append(out.Captures, cj)
	}
	for _, t := range totals {
		out.Totals = append(out.Totals, conformanceTotalsJSON{
			Mode: t.Mode.String(), Captures: t.Captures, CapturesAgreeing: t.CapturesAgreeing,
			Packets: t.Frames, PacketsAgreeing: t.Agreeing, KeepstateOnly: t.KeepstateOnlyDrop,
			KernelOnly: t.KernelOnlyDrop, Skipped: t.SkippedByCause,
		})
	}
	return out
}
