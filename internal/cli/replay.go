package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"keepstate/bench"
	"keepstate/config"
	"keepstate/daemon"
	"keepstate/dataplane"
	"keepstate/dataplane/replay"
	"keepstate/diagnose"
	"keepstate/firewall"
	"keepstate/insight"
	"keepstate/logging"
	"keepstate/reason"
)

func init() {
	register(&command{
		name:    "replay",
		summary: "run captures through the firewall: what would it have done?",
		run:     runReplay,
	})
}

const replayUsage = "replay [--config PATH] [--json] [--drops FILE.pcapng] [--log any|none|REASON,...] [--json-logs] [--utc] [--ifindex N=IFACE,...] CAPTURE..."

// replayFlags are the options of `keepstate replay`, shared with the demo.
type replayFlags struct {
	config   string
	asJSON   bool
	drops    string
	log      string // which drops the debug log shows; "" = what the configuration says
	jsonLogs bool
	utc      bool
	quiet    bool
	ifindex  string // SLL2 interface indexes: "3=LAN,4=DMZ"
}

func runReplay(e *env, args []string) int {
	fs := newFlagSet(e, "replay", replayUsage)
	var f replayFlags
	fs.StringVar(&f.config, "config", "", "configuration: bundle .tgz, folder or winroute.cfg (default: built-in, permits every connection)")
	fs.BoolVar(&f.asJSON, "json", false, "print the summary as one JSON object (logs go to stderr)")
	fs.StringVar(&f.drops, "drops", "", "write the dropped packets to this pcapng file, reasons as packet comments")
	fs.StringVar(&f.log, "log", "", "debug log of drops: any, none, or reason ids (default: the configuration's Logging settings, else any)")
	fs.BoolVar(&f.jsonLogs, "json-logs", false, "write logs as JSON lines instead of Kerio-style text")
	fs.BoolVar(&f.utc, "utc", false, "log timestamps in UTC instead of local time")
	fs.BoolVar(&f.quiet, "quiet", false, "print no logs, only the summary")
	fs.StringVar(&f.ifindex, "ifindex", "", "name the interfaces behind the indexes of an SLL2 capture (tcpdump -i any), e.g. 3=LAN,4=DMZ (a configured interface name or device)")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(paths) == 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, code := loadConfigOrDefault(e, f.config)
	if cfg == nil {
		return code
	}
	sum, err := replayWith(e, cfg, paths, &f, isTerminal(e.stderr))
	if err != nil {
		e.errorf("replay: %v", err)
		return exitFail
	}
	if f.asJSON {
		if err := writeJSON(e.stdout, sum); err != nil {
			return exitFail
		}
	} else {
		printSummary(e.stdout, sum.Summary)
		printReplayInsights(e.stdout, sum.Insights, f.utc)
	}
	for _, fr := range sum.Files {
		if fr.Error != "" {
			e.errorf("%s: stopped at byte offset %d: %s", fr.Path, fr.Offset, fr.Error)
		}
	}
	if sum.Failed() {
		return exitFail
	}
	return exitOK
}

// loadConfigOrDefault loads path, or returns the built-in default for "". On
// failure it prints every error and returns a nil config and the exit code.
func loadConfigOrDefault(e *env, path string) (*config.Config, int) {
	if path == "" {
		return config.Default(), exitOK
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return nil, exitUsage
	}
	return cfg, exitOK
}

// loadPolicy is loadConfigOrDefault for the diagnostics, which take the rules and
// settings a configuration compiles to.
func loadPolicy(e *env, path string) (*diagnose.Policy, int) {
	cfg, code := loadConfigOrDefault(e, path)
	if cfg == nil {
		return nil, code
	}
	rs, err := cfg.Compile()
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return nil, exitUsage
	}
	return &diagnose.Policy{Rules: rs, Settings: cfg.EngineSettings()}, exitOK
}

// replayResult is what `keepstate replay` prints: the replay's summary and what the
// insight detectors found in it.
type replayResult struct {
	*replay.Summary
	Insights []insight.Insight `json:"insights"`
}

// replayWith runs the captures through a new engine built from cfg, with logs as f
// asks and the insight detectors watching, and returns the summary.
func replayWith(e *env, cfg *config.Config, paths []string, f *replayFlags, progress bool) (*replayResult, error) {
	logOut := e.stdout
	if f.asJSON {
		logOut = e.stderr // stdout carries exactly one JSON object
	}
	lc, err := replayLogConfig(cfg, f, logOut)
	if err != nil {
		return nil, err
	}
	rep := &dataplane.Reporter{}
	if !f.quiet {
		rep.Log = logging.New(lc)
	}
	mon := insight.New(insight.Options{ExplainConfig: f.config})
	mon.SetMemory(bench.MeasuredBytesPerConnection)
	eng, err := cfg.NewEngine(firewall.Options{OnConnEnd: func(end firewall.ConnEnd) {
		rep.ConnEnd(end)
		mon.ConnEnd(end)
	}})
	if err != nil {
		return nil, err
	}
	rep.Engine = eng

	var dropFile *os.File
	if f.drops != "" {
		dropFile, err = os.Create(f.drops)
		if err != nil {
			return nil, err
		}
		defer dropFile.Close()
		rep.Drops, err = dataplane.NewDropWriter(dropFile)
		if err != nil {
			return nil, err
		}
	}

	ifindex, err := parseIfIndex(f.ifindex)
	if err != nil {
		return nil, err
	}
	opts := replay.Options{Engine: eng, Reporter: rep, IfIndex: ifindex}
	insight.WatchReplay(&opts, mon, cfg)
	if progress {
		opts.Progress = e.stderr
	}
	sum, err := replay.Run(paths, opts)
	if err != nil {
		return nil, err
	}
	if rep.Drops != nil {
		if err := rep.Drops.Close(); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.drops, err)
		}
		if err := dropFile.Close(); err != nil {
			return nil, err
		}
	}
	if rep.Log != nil {
		if err := rep.Log.Close(); err != nil {
			return nil, err
		}
	}
	return &replayResult{Summary: sum, Insights: mon.Insights()}, nil
}

// printReplayInsights writes what the detectors found after a replay's summary.
func printReplayInsights(w io.Writer, ins []insight.Insight, utc bool) {
	if len(ins) == 0 {
		fmt.Fprintln(w, "insights: none")
		return
	}
	fmt.Fprintf(w, "insights: %d\n", len(ins))
	o := insight.TextOptions{}
	if utc {
		o.Location = time.UTC
	}
	insight.WriteText(w, ins, o)
}

// parseIfIndex reads "3=LAN,4=DMZ".
func parseIfIndex(s string) (map[int32]string, error) {
	if s == "" {
		return nil, nil
	}
	m := make(map[int32]string)
	for _, part := range strings.Split(s, ",") {
		idx, name, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.ParseInt(idx, 10, 32)
		if !ok || err != nil || n <= 0 || name == "" {
			return nil, fmt.Errorf("--ifindex %q: want INDEX=INTERFACE pairs such as 3=LAN", part)
		}
		m[int32(n)] = name
	}
	return m, nil
}

// replayLogConfig routes every log to w: replay is read at the terminal. The debug
// log shows what --log says, else what the configuration says, else every drop
// (replay's question is "what would have been dropped").
func replayLogConfig(cfg *config.Config, f *replayFlags, w io.Writer) (logging.Config, error) {
	sink := logging.Sink{Text: w}
	if f.jsonLogs {
		sink = logging.Sink{JSON: w}
	}
	lc := logging.Config{Debug: sink, Filter: sink, Connection: sink, Warning: sink, Error: sink}
	if f.utc {
		lc.Location = time.UTC
	}
	s := &cfg.Settings
	switch {
	case f.log != "":
		df, err := logging.ParseDropFilter(f.log)
		if err != nil {
			return lc, err
		}
		lc.Drops = df
	default:
		// The configuration's Logging table, as the daemon reads it; but a replay
		// is run to see the drops, so where the table asks for none, all are shown.
		lc.Drops = daemon.DropFilter(s)
		if lc.Drops.IsNone() {
			lc.Drops = logging.AnyDrop()
		}
	}
	lc.DropRate, lc.DropBurst = float64(s.DropLogRatePerSecond), s.DropLogBurst
	return lc, nil
}

func printSummary(w io.Writer, s *replay.Summary) {
	fmt.Fprintf(w, "\n%d packets", s.Packets)
	if !s.CaptureStart.IsZero() {
		fmt.Fprintf(w, " from %s to %s (%s of capture time)", s.CaptureStart.Format(time.DateTime), s.CaptureEnd.Format(time.DateTime),
			s.CaptureEnd.Sub(s.CaptureStart).Round(time.Second))
	}
	fmt.Fprintf(w, "\n  accepted     %d\n  dropped      %d", s.Accepted, s.Dropped)
	if s.Rejected > 0 {
		fmt.Fprintf(w, " (%d of them refused with RST/ICMP)", s.Rejected)
	}
	fmt.Fprintf(w, "\n  connections  %d opened, %d still tracked at the end\n", s.Connections, s.OpenAtEnd)
	if len(s.DropsByReason) > 0 {
		fmt.Fprintln(w, "drops by reason:")
		ids := make([]string, 0, len(s.DropsByReason))
		for id := range s.DropsByReason {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return s.DropsByReason[ids[i]] > s.DropsByReason[ids[j]] })
		for _, id := range ids {
			r, _ := reason.Parse(id)
			fmt.Fprintf(w, "  %-26s %8d  %s\n", id, s.DropsByReason[id], r.Text())
		}
	}
	if len(s.TopDropped) > 0 {
		fmt.Fprintln(w, "connections with most drops:")
		for _, c := range s.TopDropped {
			var rs []string
			for id, n := range c.Reasons {
				rs = append(rs, fmt.Sprintf("%s %d", id, n))
			}
			sort.Strings(rs)
			fmt.Fprintf(w, "  %-6s %s <-> %s  %d drops (%s)\n", c.Proto, c.A, c.B, c.Drops, strings.Join(rs, ", "))
		}
	}
	for _, f := range s.Files {
		if f.Error != "" {
			fmt.Fprintf(w, "%s: read %d packets, then stopped at byte offset %d: %s\n", f.Path, f.Packets, f.Offset, f.Error)
		}
	}
	if s.ElapsedSec > 0 {
		fmt.Fprintf(w, "replayed in %.2f s (%.2f M packets/s)\n", s.ElapsedSec, s.PacketsPerSec/1e6)
	}
}

// isTerminal reports whether w is a character device, where a progress bar belongs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
