package config

import (
	"bytes"
	"net/netip"
	"os"
	"reflect"
	"testing"

	"keepstate/policy"
)

// checkGolden compares got with the file, or rewrites the file under -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want := readFile(t, path); !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test -update to accept):\n%s", path, got)
	}
}

func TestMarshalGolden(t *testing.T) {
	checkGolden(t, "testdata/default.cfg", Marshal(Default()))
	c, err := Parse("story1.cfg", readFile(t, "testdata/story1.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/story1.golden.cfg", Marshal(c))
}

func TestMarshalRoundTrip(t *testing.T) {
	tricky := Default()
	tricky.Policy.Rules[0].Description = "a <b> & \"c\" 'd'\n\tline two; ünïcode ✓"
	tricky.Policy.Interfaces[0].Addresses = append(tricky.Policy.Interfaces[0].Addresses,
		netipPrefix("198.51.100.7/24"), netipPrefix("2001:db8::7/64"))
	tricky.Policy.Rules = append(tricky.Policy.Rules, policy.Rule{Name: "No id yet", Action: policy.Drop,
		Source: []policy.Term{policy.Range(netipAddr("10.0.0.1"), netipAddr("10.0.0.9")), policy.IfGroup(policy.VPN)}})
	tricky.Settings.LogDropReasons = nil
	story, err := Parse("story1.cfg", readFile(t, "testdata/story1.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Config{"default": Default(), "tricky": tricky, "story1": story} {
		t.Run(name, func(t *testing.T) {
			first := Marshal(c)
			c2, err := Parse("first", first)
			if err != nil {
				t.Fatalf("%v\n%s", err, first)
			}
			second := Marshal(c2)
			if !bytes.Equal(first, second) {
				t.Errorf("export -> import -> export differs:\n%s\n---\n%s", first, second)
			}
			c3, err := Parse("second", second)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c2, c3) {
				t.Errorf("models differ after a second round trip:\n%+v\n%+v", c2.Policy, c3.Policy)
			}
		})
	}
	// Ids were given to the rule that had none, after the highest.
	c2, _ := Parse("x", Marshal(tricky))
	if got := c2.Policy.Rules[1].ID; got != 2 {
		t.Errorf("new rule got Id %d, want 2", got)
	}
	if got := c2.Policy.Rules[0].Description; got != tricky.Policy.Rules[0].Description {
		t.Errorf("description = %q", got)
	}
}

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func netipAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }
