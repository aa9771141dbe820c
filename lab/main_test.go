//go:build linux

package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// binary is the keepstate executable TestMain builds once for every test;
// faultBinary the same with the faultinject build tag (it panics on SIGUSR1).
var binary, faultBinary string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if Missing() != "" {
		return m.Run() // every test skips with the reason
	}
	dir, err := os.MkdirTemp("", "kslab-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "keepstate")
	out, err := exec.Command("go", "build", "-o", binary, "keepstate/cmd/keepstate").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build keepstate: %v\n%s", err, out)
		return 1
	}
	faultBinary = filepath.Join(dir, "keepstate-faultinject")
	out, err = exec.Command("go", "build", "-tags", "faultinject", "-o", faultBinary, "keepstate/cmd/keepstate").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build -tags faultinject keepstate: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// needLab skips the test unless the lab can run here.
func needLab(t *testing.T, tools ...string) {
	t.Helper()
	if why := Missing(tools...); why != "" {
		t.Skip(why)
	}
}

// testTopology builds a topology that the test's cleanup removes.
func testTopology(t *testing.T, o Options) *Topology {
	t.Helper()
	topo, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Error(err)
		}
	})
	return topo
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func itoa(n int) string { return fmt.Sprint(n) }
