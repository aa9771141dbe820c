// Package cli implements the keepstate command line: one function per subcommand,
// each parsing its own flags and calling into the packages that do the work.
package cli

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// exit codes shared by every subcommand.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed (bad capture, daemon error, ...)
	exitUsage = 2 // bad arguments or an invalid configuration
)

// command is one subcommand. run returns the process exit code.
type command struct {
	name    string
	summary string
	run     func(env *env, args []string) int
}

// env carries the output streams so tests can run commands in-process.
type env struct {
	stdout, stderr io.Writer
}

func (e *env) errorf(format string, a ...any) {
	fmt.Fprintf(e.stderr, "keepstate: "+format+"\n", a...)
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// Main runs the command line args (without the program name) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		e.errorf("unknown command %q (try 'keepstate help')", args[0])
		return exitUsage
	}
	return c.run(e, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: keepstate COMMAND [ARGS]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}

// newFlagSet returns a flag set that reports errors to stderr instead of exiting.
func newFlagSet(e *env, name, usageLine string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: keepstate %s\n", usageLine)
		fs.PrintDefaults()
	}
	return fs
}

// parseNoArgs parses args for a command that takes flags only. On a bad flag or a
// stray argument it has printed the usage and returns false.
func parseNoArgs(fs *flag.FlagSet, args []string) bool {
	rest, err := parseFlags(fs, args)
	if err != nil {
		return false // the flag package printed the usage
	}
	if len(rest) != 0 {
		fs.Usage()
		return false
	}
	return true
}

// parseFlags parses args, allowing flags after positional arguments
// ("replay cap.pcap --json"), where the standard flag package would stop.
// A "--" ends flag parsing: everything after it is positional.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		// The flag package consumes a "--" itself: it stood just before rest.
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// subcommand is one verb of a command group such as `keepstate config`.
type subcommand struct {
	name string
	run  func(e *env, args []string) int
}

// runSubcommands dispatches args to the subcommand it names, in the way every
// command group of keepstate does: usage on no argument, help, and a clear
// refusal naming the known verbs.
func runSubcommands(e *env, group, usage string, subs []subcommand, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(e.stderr, "usage: keepstate %s\n", usage)
		return exitUsage
	}
	names := make([]string, len(subs))
	for i, s := range subs {
		if s.name == args[0] {
			return s.run(e, args[1:])
		}
		names[i] = s.name
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprintf(e.stdout, "usage: keepstate %s\n", usage)
		return exitOK
	}
	e.errorf("%s: unknown subcommand %q (want %s)", group, args[0], strings.Join(names, ", "))
	return exitUsage
}
