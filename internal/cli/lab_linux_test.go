package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"keepstate/lab"
)

func TestLabList(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"lab", "--list"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var names []string
	for line := range strings.Lines(out.String()) {
		names = append(names, strings.Fields(line)[0])
	}
	want := []string{"handshake", "handshake-rule", "keepalive", "rule-timeout", "reload", "deny", "limit", "sigterm", "restart", "systemctl", "sigkill", "panic"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("scenarios %v, want %v", names, want)
	}
}

func TestLabUnknownScenario(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"lab", "handshake", "nosuch"}, &out, &errb); code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	if got := errb.String(); got != "keepstate: lab: no scenario \"nosuch\" (try 'keepstate lab --list')\n" {
		t.Errorf("stderr %q", got)
	}
	if out.Len() != 0 {
		t.Errorf("nothing should run: stdout %q", out.String())
	}
}

func TestLabSummary(t *testing.T) {
	pass := &lab.Result{Name: "deny", Title: "a Deny rule", Duration: 2600 * time.Millisecond,
		Checks: []lab.Check{{ID: "a", Want: "refused", Got: "refused", OK: true}}}
	fail := &lab.Result{Name: "limit", Title: "many connections", Duration: 3 * time.Second, Dir: "/tmp/x/limit",
		Checks: []lab.Check{{ID: "b", Want: "20 ok", Got: "19 ok", OK: false}}}
	broken := &lab.Result{Name: "restart", Title: "a restart", Err: errors.New("keepstate run exited at start"),
		DaemonOutput: "keepstate: run: no NFQUEUE"}

	for _, tc := range []struct {
		results []*lab.Result
		planned int
		code    int
		want    string
	}{
		{[]*lab.Result{pass}, 1, exitOK, "Summary:\n  PASS deny         2.6 s  a Deny rule\nall 1 scenario(s) passed\n"},
		{[]*lab.Result{pass, fail}, 2, exitFail, "Summary:\n  PASS deny         2.6 s  a Deny rule\n" +
			"  FAIL limit        3.0 s  many connections\n         expected: 20 ok\n         saw:      19 ok\n         files: /tmp/x/limit\n" +
			"1 of 2 scenario(s) failed\n"},
		{[]*lab.Result{broken}, 3, exitFail, "Summary:\n  FAIL restart      0.0 s  a restart\n         keepstate run exited at start\n" +
			"         keepstate run said:\n           keepstate: run: no NFQUEUE\n  interrupted: 2 of 3 scenario(s) not run\n"},
	} {
		var out bytes.Buffer
		if code := labSummary(&env{stdout: &out, stderr: &out}, tc.results, tc.planned); code != tc.code {
			t.Errorf("exit %d, want %d", code, tc.code)
		}
		if out.String() != tc.want {
			t.Errorf("summary:\n%s\nwant:\n%s", out.String(), tc.want)
		}
	}
}
