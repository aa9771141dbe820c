package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"keepstate/bench"
	"keepstate/config"
	"keepstate/conntrack"
	"keepstate/dataplane"
	"keepstate/dataplane/replay"
	"keepstate/firewall"
	"keepstate/insight"
	"keepstate/logging"
	"keepstate/packet"
	"keepstate/reason"
	"keepstate/synth"
)

func init() {
	register(&command{
		name:    "demo",
		summary: "replay both seed stories: the leaked handshake and the expired keep-alives",
		run:     runDemo,
	})
}

func runDemo(e *env, args []string) int {
	fs := newFlagSet(e, "demo", "demo [--out DIR]")
	out := fs.String("out", "", "keep the generated captures and configurations in DIR (default: a temporary folder, removed)")
	if _, err := parseFlags(fs, args); err != nil {
		return exitUsage
	}
	dir := *out
	if dir == "" {
		tmp, err := os.MkdirTemp("", "keepstate-demo-")
		if err != nil {
			e.errorf("demo: %v", err)
			return exitFail
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		e.errorf("demo: %v", err)
		return exitFail
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	if err := demoStory1(w, dir); err != nil {
		w.Flush()
		e.errorf("demo: story 1: %v", err)
		return exitFail
	}
	fmt.Fprintln(w)
	if err := demoStory2(w, dir); err != nil {
		w.Flush()
		e.errorf("demo: story 2: %v", err)
		return exitFail
	}
	if *out != "" {
		fmt.Fprintf(w, "\nThe captures and configurations are in %s: replay them with\n  keepstate replay --config %s %s\n",
			dir, filepath.Join(dir, "story1-require3way-0.cfg"), filepath.Join(dir, "story1.pcapng"))
	}
	return exitOK
}

// demoRun is one replay of a demo capture under one configuration.
type demoRun struct {
	sum      *replay.Summary
	logs     []string          // the log lines replay printed, in order
	insights []insight.Insight // what the detectors found
}

// replayDemo replays capture under the configuration text cfgText (saved beside the
// capture as cfgName), logging in UTC to memory, and calls observe for each packet.
func replayDemo(dir, cfgName string, cfgText []byte, capturePath string,
	observe func(t int64, p *packet.Parsed, d *firewall.Decision)) (*demoRun, error) {
	cfgPath := filepath.Join(dir, cfgName)
	if err := os.WriteFile(cfgPath, cfgText, 0o644); err != nil {
		return nil, err
	}
	cfg, err := config.Parse(cfgPath, cfgText)
	if err != nil {
		return nil, err
	}
	var logBuf bytes.Buffer
	sink := logging.Sink{Text: &logBuf}
	rep := &dataplane.Reporter{Log: logging.New(logging.Config{
		Debug: sink, Filter: sink, Connection: sink, Warning: sink, Error: sink,
		Location: time.UTC, Drops: logging.AnyDrop(),
	})}
	mon := insight.New(insight.Options{ExplainConfig: cfgPath})
	mon.SetMemory(bench.MeasuredBytesPerConnection)
	eng, err := cfg.NewEngine(firewall.Options{OnConnEnd: func(end firewall.ConnEnd) {
		rep.ConnEnd(end)
		mon.ConnEnd(end)
	}})
	if err != nil {
		return nil, err
	}
	rep.Engine = eng
	o := replay.Options{Engine: eng, Reporter: rep, Observe: observe}
	insight.WatchReplay(&o, mon, cfg)
	sum, err := replay.Run([]string{capturePath}, o)
	if err != nil {
		return nil, err
	}
	if err := rep.Log.Close(); err != nil {
		return nil, err
	}
	if sum.Failed() {
		return nil, fmt.Errorf("replay of %s failed: %s", capturePath, sum.Files[0].Error)
	}
	run := &demoRun{sum: sum, insights: mon.Insights()}
	for _, l := range strings.Split(strings.TrimRight(logBuf.String(), "\n"), "\n") {
		if l != "" {
			run.logs = append(run.logs, l)
		}
	}
	return run, nil
}

func demoStory1(w io.Writer, dir string) error {
	capPath := filepath.Join(dir, "story1.pcapng")
	f, err := os.Create(capPath)
	if err != nil {
		return err
	}
	story, err := synth.WriteStory1(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "== Story 1: a switch carries half of each conversation around the firewall ==")
	fmt.Fprintf(w, "%d logins from the web servers (LAN, 10.1.0.2-3) to Tomcat (DMZ, %s), %s to %s.\n",
		story.Logins, story.Tomcat, story.Start.Format("15:04:05"), story.Start.Add(time.Duration(story.Logins-1)*4*time.Second).Format("15:04:05 on 2 Jan 2006"))
	fmt.Fprintf(w, "The blade switch carried the web servers' packets of %d of them straight to Tomcat;\n", story.Leaked())
	fmt.Fprintln(w, "only Tomcat's replies of those crossed the firewall.")

	for _, strict := range []bool{true, false} {
		cfgText, line := synth.Story1Config(strict)
		failed := make(map[uint16]bool) // client port -> some packet of the login dropped
		pickedUp := 0                   // connections created from a reply (loose mode)
		observe := func(_ int64, p *packet.Parsed, d *firewall.Decision) {
			if d.Created && d.Conn.Dir == conntrack.Reply {
				pickedUp++
			}
			if d.Dropped() && p.Proto == packet.ProtoTCP {
				port := p.SrcPort
				if p.SrcPort == story.Tomcat.Port() {
					port = p.DstPort
				}
				failed[port] = true
			}
		}
		name := fmt.Sprintf("story1-require3way-%d.cfg", b2i(strict))
		run, err := replayDemo(dir, name, cfgText, capPath, observe)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\nWith %s in winroute.cfg:\n", line)
		fmt.Fprintf(w, "  %d of %d logins worked, %d failed; keepstate dropped %d of %d packets%s.\n",
			story.Logins-len(failed), story.Logins, len(failed), run.sum.Dropped, run.sum.Packets, reasonList(run.sum))
		if strict {
			misattributed := 0
			for port := range failed {
				if !story.LeakedPorts[port] {
					misattributed++
				}
			}
			fmt.Fprintf(w, "  Every failed login is one the switch leaked (%d of %d; %d others).\n", len(failed)-misattributed, story.Leaked(), misattributed)
			fmt.Fprintln(w, "  The firewall saw Tomcat answer requests it never saw: the requests reached Tomcat another way.")
			fmt.Fprintln(w, "  The debug log says so, one line per dropped reply, e.g.:")
			printLines(w, pickLines(run.logs, "27779", 3))
			printDemoInsights(w, run.insights)
		} else {
			fmt.Fprintf(w, "  keepstate picked up %d connections from Tomcat's replies, checked them against the rules\n", pickedUp)
			fmt.Fprintf(w, "  in the direction they were opened ('Web servers to Tomcat'), and let them pass.\n")
			fmt.Fprintln(w, "  This is a stop-gap, as in the story: fix the switch, then set it back to 1.")
			if len(run.logs) > 0 {
				printLines(w, run.logs[:min(3, len(run.logs))])
			}
		}
	}
	return nil
}

func demoStory2(w io.Writer, dir string) error {
	capPath := filepath.Join(dir, "story2.pcapng")
	f, err := os.Create(capPath)
	if err != nil {
		return err
	}
	story, err := synth.WriteStory2(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "== Story 2: database keep-alives against an idle timeout ==")
	fmt.Fprintf(w, "%d pooled connections from the application server (10.0.1.10) to Oracle (10.0.2.20:1521),\n", story.Conns)
	fmt.Fprintf(w, "busy from %s to %s, then idle. The database probes them with TCP keep-alives every %s\n",
		story.Start.Format("15:04"), story.LastQuery.Format("15:04"), story.Interval)
	fmt.Fprintf(w, "(at %s and %s); at %s the application uses the pool again.\n",
		story.KeepAlives[0].Format("15:04"), story.KeepAlives[1].Format("15:04"), story.Reuse.Format("15:04"))

	for _, timeout := range []int{3600, 9000} {
		cfgText, line := synth.Story2Config(timeout)
		var probesDropped, probes, reuseDropped int
		observe := func(t int64, p *packet.Parsed, d *firewall.Decision) {
			isProbe := p.Proto == packet.ProtoTCP && p.SrcPort == 1521 && p.PayloadLen == 0 && p.TCPFlags == packet.ACK &&
				!time.Unix(0, t).Before(story.KeepAlives[0])
			if isProbe {
				probes++
				if d.Dropped() {
					probesDropped++
				}
			}
			if !time.Unix(0, t).Before(story.Reuse) && d.Dropped() {
				reuseDropped++
			}
		}
		run, err := replayDemo(dir, fmt.Sprintf("story2-timeout-%d.cfg", timeout), cfgText, capPath, observe)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\nWith %s:\n", line)
		expired := run.sum.DropsByReason[reason.StateExpired.String()]
		if probesDropped > 0 {
			fmt.Fprintf(w, "  %d of %d keep-alive probes were dropped: the connections had been idle %s, longer than\n",
				probesDropped, probes, story.Interval)
			fmt.Fprintf(w, "  the %d s timeout, so keepstate had already forgotten them (%d packets dropped as state_expired,\n", timeout, expired)
			fmt.Fprintf(w, "  %d of them when the application reused the pool). The debug log says which timeout did it:\n", reuseDropped)
			printLines(w, pickLines(run.logs, "state expired", 2))
			fmt.Fprintln(w, "  The connection log shows when each connection was forgotten:")
			printLines(w, pickLines(run.logs, "[ID]", 1))
			printDemoInsights(w, run.insights)
		} else {
			fmt.Fprintf(w, "  all %d keep-alive probes and the reuse passed: %d packets dropped of %d.\n", probes, run.sum.Dropped, run.sum.Packets)
			fmt.Fprintf(w, "  A %d s timeout outlasts the %s keep-alive interval; RFC 5382 asks for at least 7440 s.\n", timeout, story.Interval)
		}
	}
	return nil
}

// printDemoInsights says what keepstate's detectors concluded, with the narrowest
// fix and its diff: what the story's administrator needed to read.
func printDemoInsights(w io.Writer, ins []insight.Insight) {
	if len(ins) == 0 {
		fmt.Fprintln(w, "  keepstate's insights: none")
		return
	}
	for _, in := range ins {
		fmt.Fprintf(w, "  keepstate's insight (%s, %s):\n", in.Kind, in.Severity)
		for _, l := range wrapText(in.Summary, 90) {
			fmt.Fprintf(w, "    %s\n", l)
		}
		if len(in.Fix) > 0 {
			f := in.Fix[0]
			fmt.Fprintf(w, "  its narrowest fix, %s (%s), as a change of winroute.cfg:\n", f.Title, f.Scope)
			for _, l := range strings.Split(strings.TrimRight(f.Diff, "\n"), "\n") {
				if (strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-") || strings.HasPrefix(l, "@@")) && !strings.HasPrefix(l, "+++") && !strings.HasPrefix(l, "---") {
					fmt.Fprintf(w, "    %s\n", l)
				}
			}
		}
	}
}

// wrapText cuts s into lines of at most width columns at spaces.
func wrapText(s string, width int) []string {
	var out []string
	cur := ""
	for _, word := range strings.Fields(s) {
		if cur != "" && len(cur)+1+len(word) > width {
			out = append(out, cur)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += word
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// reasonList formats a summary's drops by reason as " (N reason, ...)".
func reasonList(s *replay.Summary) string {
	if len(s.DropsByReason) == 0 {
		return ""
	}
	var parts []string
	for _, r := range reason.All() {
		if n := s.DropsByReason[r.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, r))
		}
	}
	return ": " + strings.Join(parts, ", ")
}

// pickLines returns up to n lines containing want, preferring them over the rest.
func pickLines(lines []string, want string, n int) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, want) {
			out = append(out, l)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

func printLines(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintf(w, "    %s\n", l)
	}
}
