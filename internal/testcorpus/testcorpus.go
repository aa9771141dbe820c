// Package testcorpus finds, for tests, the capture corpus that sits beside the
// project: the tcpdump project's regression captures (pcap and pcapng, many of
// them deliberately malformed), at ../shared/corpus/tcpdump from the project's
// root, on developer machines and in CI. The project never copies it into its own
// tree, so a test that needs it skips, saying where it looked, when it is absent.
package testcorpus

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// rel is the corpus folder relative to the project root.
const rel = "../shared/corpus/tcpdump"

// Where is the path at which the corpus is expected: rel from the project root
// (the nearest directory above the working directory holding go.mod; go test runs
// in the package's directory). It is "" if no project root is found.
func Where() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, filepath.FromSlash(rel))
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Dir returns the corpus folder, or "" when it is absent.
func Dir() string {
	d := Where()
	if d == "" {
		return ""
	}
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		return ""
	}
	return d
}

// Captures returns the path of every capture in the corpus (the .pcap and .pcapng
// files, compressed or not), sorted, or nil when the corpus is absent.
func Captures() []string {
	d := Dir()
	if d == "" {
		return nil
	}
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil
	}
	var paths []string
	for _, e := range ents {
		if !e.IsDir() && strings.Contains(e.Name(), ".pcap") {
			paths = append(paths, filepath.Join(d, e.Name()))
		}
	}
	sort.Strings(paths)
	return paths
}

// Need returns Captures, or skips t with a message saying where the corpus was
// looked for when it holds none.
func Need(t testing.TB) []string {
	t.Helper()
	paths := Captures()
	if len(paths) == 0 {
		t.Skip(Missing())
	}
	return paths
}

// Missing is the message a test gives when the corpus is absent.
func Missing() string {
	where := Where()
	if where == "" {
		where = rel + " from the project root (no go.mod found above the working directory)"
	}
	return "capture corpus not present at " + where + " (" + rel + " from the project root; it sits beside the repository, not in it)"
}
