package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"keepstate/synth"
)

func init() {
	register(&command{
		name:    "synth",
		summary: "write a generated capture: traffic (a busy link), story1, story2, behaviours (the conformance conversations)",
		run:     runSynth,
	})
}

const synthUsage = "synth traffic|story1|story2 -o FILE [--flows N] [--packets M] [--seed S] | synth behaviours -o DIR"

func runSynth(e *env, args []string) int {
	if len(args) == 0 {
		e.errorf("usage: keepstate %s", synthUsage)
		return exitUsage
	}
	kind := args[0]
	fs := newFlagSet(e, "synth", synthUsage)
	out := fs.String("o", "", "output capture file")
	flows := fs.Int("flows", 10000, "traffic: concurrent connections")
	packets := fs.Int("packets", 10_000_000, "traffic: data packets")
	seed := fs.Uint64("seed", 1, "traffic: seed of the interleaving")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return exitUsage
	}
	if *out == "" {
		e.errorf("synth: -o FILE is required")
		return exitUsage
	}
	var gen func(w io.Writer) (string, error)
	switch kind {
	case "traffic":
		gen = func(w io.Writer) (string, error) {
			n, err := synth.WriteTraffic(w, synth.NewTraffic(*flows, *packets, *seed), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			return fmt.Sprintf("%d packets of %d TCP connections (pcap, Ethernet, headers only)", n, *flows), err
		}
	case "story1":
		gen = func(w io.Writer) (string, error) {
			s, err := synth.WriteStory1(w)
			return fmt.Sprintf("story 1: %d logins, %d leaked around the firewall (pcapng)", s.Logins, s.Leaked()), err
		}
	case "story2":
		gen = func(w io.Writer) (string, error) {
			s, err := synth.WriteStory2(w)
			return fmt.Sprintf("story 2: %d pooled connections, keep-alives every %s (pcapng)", s.Conns, s.Interval), err
		}
	case "behaviours":
	default:
		e.errorf("synth: unknown capture %q (traffic, story1, story2, behaviours)", kind)
		return exitUsage
	}
	if gen == nil { // behaviours: one capture per conversation into the folder *out
		return writeBehaviours(e, *out)
	}
	f, err := os.Create(*out)
	if err != nil {
		e.errorf("synth: %v", err)
		return exitFail
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	what, err := gen(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		e.errorf("synth: %v", err)
		return exitFail
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", *out, what)
	return exitOK
}

// writeBehaviours writes each of synth's conformance conversations as DIR/NAME.pcapng.
func writeBehaviours(e *env, dir string) int {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.errorf("synth: %v", err)
		return exitFail
	}
	for _, b := range append(synth.Behaviours(), synth.RepliesOnly()) {
		path := filepath.Join(dir, b.Name+".pcapng")
		err := writeFileWith(path, func(w io.Writer) error { return synth.WriteBehaviour(w, b) })
		if err != nil {
			e.errorf("synth: %v", err)
			return exitFail
		}
		fmt.Fprintf(e.stdout, "%s: %s (%d packets)\n", path, b.Title, len(b.Packets))
	}
	return exitOK
}
