//go:build linux

package lab

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"keepstate/dist"
)

// exited and signaled are wait statuses as the kernel reports them.
func exited(code int) syscall.WaitStatus           { return syscall.WaitStatus(code << 8) }
func signaled(s syscall.Signal) syscall.WaitStatus { return syscall.WaitStatus(s) }

// TestKeepstateUnit: what systemd does with dist/keepstate.service, read from it.
func TestKeepstateUnit(t *testing.T) {
	u, err := KeepstateUnit()
	if err != nil {
		t.Fatal(err)
	}
	if u.KillSignal != syscall.SIGTERM || u.RestartKillSignal != syscall.SIGUSR2 || u.TimeoutStop != 30*time.Second ||
		u.Restart != "on-failure" || u.RestartDelay != 2*time.Second {
		t.Errorf("unit: %+v", u)
	}
	p := unitPaths{binary: "/tmp/ks", config: "/tmp/cfg", dir: "/tmp/lab"}
	args := strings.Join(u.args(p), " ")
	for _, want := range []string{"run --config /tmp/cfg", "--state /tmp/lab/state/keepstate/conntrack.snap", "--socket /tmp/lab/run/keepstate/admin.sock", "--fail closed"} {
		if !strings.Contains(args, want) {
			t.Errorf("ExecStart %q lacks %q", args, want)
		}
	}
	// Whatever kills it, systemd starts it again, except a configuration that
	// does not load or bad arguments, and a stop asked for.
	for ws, want := range map[syscall.WaitStatus]bool{
		exited(2): true, signaled(syscall.SIGKILL): true, signaled(syscall.SIGSEGV): true, exited(1): true,
		exited(78): false, exited(64): false, exited(0): false, signaled(syscall.SIGTERM): false,
	} {
		if got, why := u.restartsAfter(ws); got != want {
			t.Errorf("after %s: restart %v (%s), want %v", exitWords(ws), got, why, want)
		}
	}
}

// The unit before RestartPreventExitStatus moved off 2 left a keepstate that
// panicked (Go exits with 2) down for good: the check that would have caught it.
func TestUnitThatWouldNotRestartAfterAPanic(t *testing.T) {
	old := strings.Replace(string(dist.Unit), "RestartPreventExitStatus=64 78", "RestartPreventExitStatus=2", 1)
	u, err := ParseUnit([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := u.restartsAfter(exited(2)); ok || !strings.Contains(why, "RestartPreventExitStatus=2 lists 2") {
		t.Errorf("old unit after a panic: restart %v (%s)", ok, why)
	}
}
