package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestParseFlagsInterleaved(t *testing.T) {
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &out}
	fs := newFlagSet(e, "x", "x")
	j := fs.Bool("json", false, "")
	c := fs.String("config", "", "")
	pos, err := parseFlags(fs, []string{"a.pcap", "--json", "b.pcap", "--config", "f.cfg", "c.pcap"})
	if err != nil {
		t.Fatal(err)
	}
	if !*j || *c != "f.cfg" {
		t.Errorf("flags not parsed: json=%v config=%q", *j, *c)
	}
	if want := []string{"a.pcap", "b.pcap", "c.pcap"}; !reflect.DeepEqual(pos, want) {
		t.Errorf("positionals = %v, want %v", pos, want)
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"nope"}, &out, &errb); code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
	if !bytes.Contains(errb.Bytes(), []byte("unknown command")) {
		t.Errorf("stderr = %q", errb.String())
	}
}

// Everything after "--" is positional, even what looks like a flag.
func TestParseFlagsTerminator(t *testing.T) {
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &out}
	fs := newFlagSet(e, "x", "x")
	j := fs.Bool("json", false, "")
	pos, err := parseFlags(fs, []string{"a", "--json", "--", "-weird-name.pcap", "--json"})
	if err != nil {
		t.Fatal(err)
	}
	if !*j || !reflect.DeepEqual(pos, []string{"a", "-weird-name.pcap", "--json"}) {
		t.Errorf("json=%v positionals %q", *j, pos)
	}
}

func TestSubcommandDispatch(t *testing.T) {
	code, _, errOut := run("conntrack", "lsit")
	if code != exitUsage || !strings.Contains(errOut, `conntrack: unknown subcommand "lsit" (want list, flush)`) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if code, out, _ := run("config", "--help"); code != exitOK || !strings.Contains(out, "usage: keepstate config") {
		t.Errorf("config --help: exit %d, %q", code, out)
	}
	if code, _, errOut := run("bench"); code != exitUsage || !strings.Contains(errOut, "usage: keepstate bench engine") {
		t.Errorf("bench: exit %d, %q", code, errOut)
	}
}
