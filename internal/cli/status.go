package cli

import (
	"fmt"
	"io"
	"time"

	"keepstate/daemon"
)

func init() {
	register(&command{
		name:    "status",
		summary: "state of the running keepstate: uptime, configuration, backend, connections, pending change",
		run:     runStatus,
	})
}

func runStatus(e *env, args []string) int {
	fs := newFlagSet(e, "status", "status [--socket PATH] [--json]")
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if !parseNoArgs(fs, args) {
		return exitUsage
	}
	var st daemon.Status
	if code := callDaemon(e, *socket, &daemon.Request{Cmd: daemon.CmdStatus}, &st); code != exitOK {
		return code
	}
	if *asJSON {
		return printJSON(e, &st)
	}
	printStatus(e.stdout, &st)
	return exitOK
}

func printJSON(e *env, v any) int {
	if err := writeJSON(e.stdout, v); err != nil {
		e.errorf("%v", err)
		return exitFail
	}
	return exitOK
}

func printStatus(w io.Writer, st *daemon.Status) {
	up := time.Duration(st.UptimeSeconds * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(w, "keepstate running since %s (up %s), pid %d\n", st.Started.Local().Format(time.DateTime), up, st.PID)
	fmt.Fprintf(w, "backend      %s, fail %s\n", st.Backend, st.FailMode)
	c := &st.Config
	fmt.Fprintf(w, "config       %s: hash %s, generation %d, applied %s from %s\n", c.Path, c.Hash, c.Generation,
		c.Applied.Local().Format(time.DateTime), c.Source)
	fmt.Fprintf(w, "             %s\n", c.Summary)
	fmt.Fprintf(w, "connections  %d (%d restored at start)\n", st.Connections, st.Restored)
	if p := st.Pending; p != nil {
		fmt.Fprintf(w, "pending      %s from %s awaits 'keepstate config confirm': rolls back to %s at %s (in %s)\n",
			p.Hash, p.Source, p.RollbackHash, p.Deadline.Local().Format(time.TimeOnly),
			time.Duration(p.SecondsLeft*float64(time.Second)).Round(time.Second))
	} else {
		fmt.Fprintln(w, "pending      none")
	}
	fmt.Fprintf(w, "socket       %s\n", st.Socket)
	fmt.Fprintf(w, "logs         %s\n", st.LogDir)
	if st.StatePath != "" {
		fmt.Fprintf(w, "state        %s\n", st.StatePath)
	}
	if st.MetricsURL != "" {
		fmt.Fprintf(w, "metrics      %s\n", st.MetricsURL)
	}
}
