package cli

import (
	"io"
	"keepstate/diagnose"
)

func init() {
	register(&command{
		name:    "diff",
		summary: "compare captures from both sides of a device: lost packets, asymmetric paths, clock offset",
		run:     runDiff,
	})
}

const diffUsage = "diff A B [--config PATH] [--json] [--html FILE] [--max-skew DURATION]"

func runDiff(e *env, args []string) int {
	fs := newFlagSet(e, "diff", diffUsage)
	cfgPath := fs.String("config", "", "label packets seen on one side only with keepstate's verdict under this configuration")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	htmlPath := fs.String("html", "", "also write a self-contained HTML report to this file")
	maxSkew := fs.Duration("max-skew", 0, "how far apart two sightings of one packet may be once the clock offset is removed (default 2s)")
	device := fs.String("device", "the firewall", "what stands between the two capture points, for the verdicts")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(paths) != 2 || *maxSkew < 0 {
		fs.Usage()
		return exitUsage
	}
	var pol *diagnose.Policy
	if *cfgPath != "" {
		var code int
		if pol, code = loadPolicy(e, *cfgPath); pol == nil {
			return code
		}
	}
	r, err := diagnose.Diff(paths[0], paths[1], diagnose.DiffOptions{Policy: pol, MaxSkew: *maxSkew, Device: *device})
	if err != nil {
		e.errorf("diff: %v", err)
		return exitFail
	}
	if code := writeReport(e, "diff", r, *htmlPath, *asJSON); code != exitOK {
		return code
	}
	for _, c := range []diagnose.CaptureInfo{r.A, r.B} {
		if c.Error != "" {
			e.errorf("%s", c.Error)
			return exitFail
		}
	}
	return exitOK
}

// report is what diff and advise produce: words for the terminal, a page, and
// (through encoding/json) the same findings as JSON.
type report interface {
	WriteText(w io.Writer) error
	WriteHTML(w io.Writer) error
}

// writeReport writes r's page to htmlPath when asked, then r as JSON or text on
// stdout.
func writeReport(e *env, cmd string, r report, htmlPath string, asJSON bool) int {
	if htmlPath != "" {
		if err := writeFileWith(htmlPath, r.WriteHTML); err != nil {
			e.errorf("%s: %v", cmd, err)
			return exitFail
		}
	}
	var err error
	if asJSON {
		err = writeJSON(e.stdout, r)
	} else {
		err = r.WriteText(e.stdout)
	}
	if err != nil {
		return exitFail
	}
	return exitOK
}
