package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDistSampleChecks keeps dist/winroute.cfg.sample loadable, and the systemd
// unit in step with the flags `keepstate run` has.
func TestDistSampleChecks(t *testing.T) {
	sample := filepath.Join("..", "..", "dist", "winroute.cfg.sample")
	code, out, errs := runCLI("config", "check", sample)
	if code != exitOK || errs != "" || !strings.HasPrefix(out, "ok: "+sample+": 3 interface(s), 4 rule(s) (4 enabled)") {
		t.Errorf("config check: exit %d\n%s%s", code, out, errs)
	}

	unit, err := os.ReadFile(filepath.Join("..", "..", "dist", "keepstate.service"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	// The flags of `run`, read from its usage text rather than duplicated here.
	for _, f := range strings.Fields(runUsage) {
		if strings.HasPrefix(f, "[--") {
			known[strings.Trim(f, "[]")] = true
		}
	}
	if len(known) != 17 {
		t.Fatalf("read %d flags from runUsage: %v", len(known), known)
	}
	for _, line := range strings.Split(string(unit), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), "\\"))
		if !strings.HasPrefix(line, "--") || strings.HasPrefix(line, "#") {
			continue
		}
		flag := strings.Fields(line)[0]
		if !known[flag] {
			t.Errorf("keepstate.service passes %s, which `keepstate run` does not have", flag)
		}
	}
	for _, want := range []string{"ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "CAP_NET_ADMIN CAP_NET_RAW", "StateDirectory=keepstate", "RestartPreventExitStatus=64 78"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("keepstate.service lacks %q", want)
		}
	}
}
