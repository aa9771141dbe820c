package testcorpus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A project laid out as on a developer machine: the corpus beside the root, the
// test running two folders deep.
func TestFindsTheCorpusBesideTheProjectRoot(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "project")
	pkg := filepath.Join(root, "a", "b")
	corpus := filepath.Join(top, "shared", "corpus", "tcpdump")
	for _, d := range []string{pkg, corpus} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(root, "go.mod"), filepath.Join(corpus, "b.pcapng"), filepath.Join(corpus, "a.pcap"), filepath.Join(corpus, "c.pcap.gz"), filepath.Join(corpus, "LICENSE")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(pkg)
	got := Captures()
	want := []string{"a.pcap", "b.pcapng", "c.pcap.gz"}
	if len(got) != len(want) {
		t.Fatalf("Captures() = %v, want %v", got, want)
	}
	for i := range want {
		if filepath.Base(got[i]) != want[i] || filepath.Dir(got[i]) != corpus {
			t.Errorf("Captures()[%d] = %s, want %s", i, got[i], filepath.Join(corpus, want[i]))
		}
	}
}

func TestAbsentCorpusSaysWhere(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	if d := Dir(); d != "" {
		t.Errorf("Dir() = %q with no corpus", d)
	}
	if c := Captures(); c != nil {
		t.Errorf("Captures() = %v with no corpus", c)
	}
	msg := Missing()
	if !strings.Contains(msg, filepath.Join(root, "..", "shared", "corpus", "tcpdump")) {
		t.Errorf("Missing() = %q does not name %s", msg, filepath.Join(root, "../shared/corpus/tcpdump"))
	}
}
