package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"keepstate/lab"
)

func init() {
	register(&command{
		name:    "lab",
		summary: "replay the stories with real TCP through keepstate run in network namespaces (root)",
		run:     runLab,
	})
}

const labUsage = `lab [--keep DIR] [--list] [--fault-binary PATH] [SCENARIO ...]

Builds network namespaces (client, firewall, server), runs keepstate run in the
firewall namespace and replays each scenario with real TCP connections, then
removes everything (also on Ctrl-C). Without SCENARIO: all of them. The panic
scenario needs a faultinject build of keepstate (make demo builds
bin/keepstate-faultinject; by default it is looked for next to this binary).`

func runLab(e *env, args []string) int {
	fs := newFlagSet(e, "lab", labUsage)
	keep := fs.String("keep", "", "keep each scenario's configurations and logs in DIR/SCENARIO")
	list := fs.Bool("list", false, "list the scenarios and exit")
	faults := fs.String("fault-binary", "", "a faultinject build of keepstate, for the panic scenario (default: keepstate-faultinject next to this binary, if there)")
	names, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if *list {
		for _, sc := range lab.Scenarios() {
			fmt.Fprintf(e.stdout, "%-10s %s\n", sc.Name, sc.Title)
		}
		return exitOK
	}
	var scenarios []lab.Scenario
	for _, name := range names {
		sc, ok := lab.Find(name)
		if !ok {
			e.errorf("lab: no scenario %q (try 'keepstate lab --list')", name)
			return exitUsage
		}
		scenarios = append(scenarios, sc)
	}
	if len(scenarios) == 0 {
		scenarios = lab.Scenarios()
	}
	if why := lab.Missing(); why != "" {
		e.errorf("lab: %s", why)
		return exitFail
	}
	self, err := os.Executable()
	if err != nil {
		e.errorf("lab: cannot find my own executable to run as the daemon: %v", err)
		return exitFail
	}
	// Ctrl-C ends the scenario in progress; its teardown still runs.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *faults == "" {
		if p := filepath.Join(filepath.Dir(self), "keepstate-faultinject"); isExecutable(p) {
			*faults = p
		}
	}
	env := lab.Env{Binary: self, Dir: *keep, Out: e.stdout, FaultBinary: *faults}
	var results []*lab.Result
	for _, sc := range scenarios {
		if ctx.Err() != nil {
			break
		}
		results = append(results, lab.Run(ctx, env, sc))
		fmt.Fprintln(e.stdout)
	}
	return labSummary(e, results, len(scenarios))
}

// labSummary prints one line per scenario and returns the exit code.
func labSummary(e *env, results []*lab.Result, planned int) int {
	failed := 0
	fmt.Fprintln(e.stdout, "Summary:")
	for _, r := range results {
		word := "PASS"
		switch {
		case r.Skipped != "":
			word = "SKIP"
		case !r.Passed():
			word = "FAIL"
			failed++
		}
		fmt.Fprintf(e.stdout, "  %-4s %-10s %5.1f s  %s\n", word, r.Name, r.Duration.Seconds(), r.Title)
		for _, c := range r.Checks {
			if !c.OK {
				fmt.Fprintf(e.stdout, "         expected: %s\n         saw:      %s\n", c.Want, c.Got)
			}
		}
		if r.Err != nil {
			fmt.Fprintf(e.stdout, "         %v\n", r.Err)
			if out := strings.TrimSpace(r.DaemonOutput); out != "" && !r.Passed() {
				fmt.Fprintf(e.stdout, "         keepstate run said:\n%s\n", indent(out, "           "))
			}
		}
		if r.Skipped != "" {
			fmt.Fprintf(e.stdout, "         skipped: %s\n", r.Skipped)
		}
		if r.Dir != "" {
			fmt.Fprintf(e.stdout, "         files: %s\n", r.Dir)
		}
	}
	if len(results) < planned {
		fmt.Fprintf(e.stdout, "  interrupted: %d of %d scenario(s) not run\n", planned-len(results), planned)
		return exitFail
	}
	if failed > 0 {
		fmt.Fprintf(e.stdout, "%d of %d scenario(s) failed\n", failed, len(results))
		return exitFail
	}
	fmt.Fprintf(e.stdout, "all %d scenario(s) passed\n", len(results))
	return exitOK
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
