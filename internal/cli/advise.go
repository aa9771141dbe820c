package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"keepstate/bench"
	"keepstate/diagnose"
)

func init() {
	register(&command{
		name:    "advise",
		summary: "keep-alives and idle gaps in a capture against the idle timeouts, with the memory they cost",
		run:     runAdvise,
	})
}

const adviseUsage = "advise CAPTURE [--config PATH] [--json] [--html FILE] [--bytes-per-conn N | --measure-flows N]"

func runAdvise(e *env, args []string) int {
	fs := newFlagSet(e, "advise", adviseUsage)
	cfgPath := fs.String("config", "", "configuration: bundle .tgz, folder or winroute.cfg (default: built-in)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	htmlPath := fs.String("html", "", "also write a self-contained HTML report to this file")
	bytesPerConn := fs.Float64("bytes-per-conn", 0, "memory of one tracked connection, as 'keepstate bench engine --json' measures it (default: measure now)")
	measureFlows := fs.Int("measure-flows", 200_000, "connections to measure bytes per connection with, when --bytes-per-conn is not given")
	margin := fs.Float64("margin", 0.1, "margin added to the longest idle gap when advising a timeout")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(paths) != 1 || *bytesPerConn < 0 || *measureFlows <= 0 || *margin <= 0 {
		fs.Usage()
		return exitUsage
	}
	pol, code := loadPolicy(e, *cfgPath)
	if pol == nil {
		return code
	}
	o := diagnose.AdviseOptions{Policy: pol, BytesPerConn: *bytesPerConn, BytesSource: "given with --bytes-per-conn", Margin: *margin}
	if o.BytesPerConn == 0 {
		// A struct size would not do: the figure must include the table's index
		// and slab overheads, which only a heap measurement sees.
		fmt.Fprintf(e.stderr, "measuring memory per tracked connection (keepstate bench engine, %d flows)...\n", *measureFlows)
		res, err := bench.RunEngine(bench.EngineOptions{Flows: *measureFlows, Packets: *measureFlows, Seed: 1})
		if err != nil {
			e.errorf("advise: measuring memory: %v", err)
			return exitFail
		}
		o.BytesPerConn = res.BytesPerConnection
		o.BytesSource = fmt.Sprintf("measured now: keepstate bench engine, %d flows", *measureFlows)
	}
	r, err := diagnose.Advise(paths[0], o)
	if err != nil {
		e.errorf("advise: %v", err)
		return exitFail
	}
	if code := writeReport(e, "advise", r, *htmlPath, *asJSON); code != exitOK {
		return code
	}
	if r.Capture.Error != "" {
		e.errorf("%s", r.Capture.Error)
		return exitFail
	}
	return exitOK
}

// writeJSON prints v as one indented JSON object.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeFileWith creates path and fills it with write.
func writeFileWith(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
