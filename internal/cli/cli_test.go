package cli

import (
	"bytes"
	"flag"
	"reflect"
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
	_ = flag.ErrHelp
}
