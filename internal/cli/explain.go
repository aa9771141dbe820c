package cli

import (
	"strings"
	"time"

	"keepstate/diagnose"
)

func init() {
	register(&command{
		name:    "explain",
		summary: "walk one packet through the pipeline and say what each step did",
		run:     runExplain,
	})
}

const explainUsage = "explain [--config PATH] [--json] 'tcp 10.1.0.2:41234 > 10.2.0.2:8080 flags S [iface LAN]'\n" +
	"       keepstate explain [--config PATH] [--json] --capture FILE --packet N"

func runExplain(e *env, args []string) int {
	fs := newFlagSet(e, "explain", explainUsage)
	cfgPath := fs.String("config", "", "configuration: bundle .tgz, folder or winroute.cfg (default: built-in)")
	asJSON := fs.Bool("json", false, "print the explanation as one JSON object")
	capturePath := fs.String("capture", "", "explain a packet of this capture, after replaying the packets before it")
	n := fs.Int("packet", 0, "with --capture: the packet's number, from 1 as Wireshark counts")
	words, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	fromCapture := *capturePath != ""
	if fromCapture == (len(words) > 0) || (fromCapture && *n < 1) {
		fs.Usage()
		return exitUsage
	}
	pol, code := loadPolicy(e, *cfgPath)
	if pol == nil {
		return code
	}
	var x *diagnose.Explanation
	if fromCapture {
		x, err = diagnose.ExplainCapture(pol, *capturePath, *n)
		if err != nil {
			e.errorf("explain: %v", err)
			return exitFail
		}
	} else {
		// The packet may come as one quoted argument or as several words.
		sp, err := diagnose.ParseSpec(strings.Join(words, " "))
		if err != nil {
			e.errorf("explain: %v", err)
			return exitUsage
		}
		if x, err = diagnose.ExplainSpec(pol, sp, time.Now().UnixNano()); err != nil {
			e.errorf("explain: %v", err)
			return exitUsage
		}
	}
	if *asJSON {
		err = writeJSON(e.stdout, x)
	} else {
		err = x.WriteText(e.stdout)
	}
	if err != nil {
		return exitFail
	}
	return exitOK
}
