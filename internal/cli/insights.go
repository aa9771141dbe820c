package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"keepstate/daemon"
	"keepstate/insight"
)

func init() {
	register(&command{
		name:    "insights",
		summary: "what the running keepstate concluded from its drops: findings with evidence and a fix; apply a fix",
		run:     runInsights,
	})
}

const insightsUsage = "insights [--socket PATH] [--json] [--follow]\n" +
	"       keepstate insights show ID [--socket PATH] [--json]\n" +
	"       keepstate insights apply ID [--fix N] [--confirm-within 5m] [--socket PATH]"

func runInsights(e *env, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "show":
			return runInsightShow(e, args[1:])
		case "apply":
			return runInsightApply(e, args[1:])
		case "-h", "--help", "help":
			fmt.Fprintf(e.stdout, "usage: keepstate %s\n", insightsUsage)
			return exitOK
		}
	}
	fs := newFlagSet(e, "insights", insightsUsage)
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the insights as JSON (with --follow: one change per line)")
	follow := fs.Bool("follow", false, "keep printing insights as they open, change and close, until interrupted")
	if !parseNoArgs(fs, args) {
		return exitUsage
	}
	if *follow {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return followInsights(ctx, e, *socket, *asJSON, time.Second)
	}
	var res daemon.InsightsResult
	if code := callDaemon(e, *socket, &daemon.Request{Cmd: daemon.CmdInsights}, &res); code != exitOK {
		return code
	}
	if *asJSON {
		return printJSON(e, &res)
	}
	printInsightList(e.stdout, res.Insights, &res.Stats)
	return exitOK
}

// printInsightList writes the open insights in full and the closed ones a line
// each.
func printInsightList(w io.Writer, ins []insight.Insight, st *insight.Stats) {
	var open, closed []insight.Insight
	for _, in := range ins {
		if in.Open {
			open = append(open, in)
		} else {
			closed = append(closed, in)
		}
	}
	if len(open) == 0 {
		fmt.Fprintln(w, "no open insight: nothing keepstate sees points at a problem")
	} else {
		fmt.Fprintf(w, "%d open insight(s), most severe first:\n\n", len(open))
		insight.WriteText(w, open, insight.TextOptions{ApplyHint: true})
	}
	if len(closed) > 0 {
		fmt.Fprintf(w, "\nrecently closed (%d; keepstate insights show ID for one in full):\n", len(closed))
		insight.WriteText(w, closed, insight.TextOptions{Brief: true})
	}
	if st != nil && (st.Lost > 0 || st.GroupsDropped > 0) {
		fmt.Fprintf(w, "\nnote: the detectors left out %d event(s) (queue full) and %d candidate finding(s) (every slot busy): figures are lower bounds\n",
			st.Lost, st.GroupsDropped)
	}
}

// followInsights prints the open insights, then every change as it comes, polling
// the daemon every interval, until ctx ends. A daemon that goes away ends it with
// a failure; one that restarts is followed from its first change.
func followInsights(ctx context.Context, e *env, socket string, asJSON bool, every time.Duration) int {
	var res daemon.InsightsResult
	if code := callDaemon(e, socket, &daemon.Request{Cmd: daemon.CmdInsights}, &res); code != exitOK {
		return code
	}
	enc := json.NewEncoder(e.stdout)
	if !asJSON {
		printInsightList(e.stdout, res.Insights, nil)
		fmt.Fprintln(e.stdout, "\nfollowing (Ctrl-C ends):")
	}
	seq := res.Seq
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return exitOK
		case <-t.C:
		}
		var next daemon.InsightsResult
		cctx, cancel := context.WithTimeout(ctx, adminTimeout)
		err := daemon.Call(cctx, socket, &daemon.Request{Cmd: daemon.CmdInsights, After: seq}, &next)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return exitOK
			}
			var remote *daemon.RemoteError
			if errors.As(err, &remote) {
				e.errorf("%s", remote.Msg)
			} else {
				e.errorf("keepstate stopped answering on %s: %v", socket, err)
			}
			return exitFail
		}
		if next.Seq < seq {
			seq = 0 // the daemon restarted: its numbering did too
			continue
		}
		for _, c := range next.Changes {
			if asJSON {
				enc.Encode(c)
				continue
			}
			printChange(e.stdout, &c)
		}
		seq = next.Seq
	}
}

// printChange writes one change of an insight: a line, and for an insight that
// opens its summary and fixes too.
func printChange(w io.Writer, c *insight.Change) {
	in := &c.Insight
	at := in.Last
	if c.Event == "closed" {
		at = in.Closed
	}
	fmt.Fprintf(w, "%s %-7s ", at.Local().Format(time.TimeOnly), c.Event)
	insight.WriteText(w, []insight.Insight{*in}, insight.TextOptions{Brief: true})
	if c.Event == "opened" {
		insight.WriteText(w, []insight.Insight{*in}, insight.TextOptions{ApplyHint: true})
		fmt.Fprintln(w)
	}
}

func runInsightShow(e *env, args []string) int {
	fs := newFlagSet(e, "insights show", "insights show ID [--socket PATH] [--json]")
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the insight as JSON")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(rest) != 1 {
		fs.Usage()
		return exitUsage
	}
	var in insight.Insight
	if code := callDaemon(e, *socket, &daemon.Request{Cmd: daemon.CmdInsights, ID: rest[0]}, &in); code != exitOK {
		return code
	}
	if *asJSON {
		return printJSON(e, &in)
	}
	insight.WriteText(e.stdout, []insight.Insight{in}, insight.TextOptions{ApplyHint: true})
	return exitOK
}

func runInsightApply(e *env, args []string) int {
	fs := newFlagSet(e, "insights apply", "insights apply ID [--fix N] [--confirm-within 5m] [--socket PATH]")
	socket := socketFlag(fs)
	fix := fs.Int("fix", 0, "the fix to apply, numbered as `keepstate insights show ID` lists them (default: the first configuration change, the narrowest)")
	within := fs.Duration("confirm-within", 5*time.Minute, "roll the change back unless `keepstate config confirm` comes within this time")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(rest) != 1 || *fix < 0 || *within <= 0 {
		fs.Usage()
		return exitUsage
	}
	var res daemon.ApplyInsightResult
	req := &daemon.Request{Cmd: daemon.CmdInsightApply, ID: rest[0], Fix: *fix, ConfirmWithin: within.String()}
	if code := callDaemon(e, *socket, req, &res); code != exitOK {
		return code
	}
	w := e.stdout
	fmt.Fprintf(w, "insight %s: %s (%s) is in force as configuration %s\n", res.Insight, res.Fix.Title, res.Fix.Scope, res.Import.Config.Hash)
	fmt.Fprintf(w, "  cost: %s\n", res.Fix.Cost)
	for _, l := range res.Import.Warnings {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintf(w, "  %d connection(s) closed by the change, %d kept\n", res.Import.Closed, res.Import.Kept)
	if p := res.Import.Pending; p != nil {
		fmt.Fprintf(w, "it rolls back to %s at %s unless you run: keepstate config confirm\n", p.RollbackHash, p.Deadline.Local().Format(time.TimeOnly))
	}
	return exitOK
}
