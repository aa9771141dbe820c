package config

import (
	"archive/tar"
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParse: no input panics; every error carries a line; every accepted file
// compiles and survives export -> import -> export byte for byte.
func FuzzParse(f *testing.F) {
	f.Add(readFile(f, "testdata/story1.cfg"))
	f.Add(readFile(f, "testdata/default.cfg"))
	f.Add([]byte(`<config><table name="SecuritySettings"><variable name="Require3WayHandshake">0</variable></table></config>`))
	f.Add([]byte(`<config><list name="IpAccessList"><listitem><variable name="Name">A</variable><variable name="Value">group:A</variable></listitem></list></config>`))
	f.Add([]byte(`<config><list name="TrafficRules_v2"><listitem><variable name="Name">r</variable><variable name="Action">Drop</variable><variable name="Src">range:10.0.0.1-10.0.0.2;ifgroup:VPN</variable></listitem></list></config>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.cfg", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if e.File != "f.cfg" || e.Line < 1 {
					t.Fatalf("error without a position: %#v", e)
				}
			}
			return
		}
		if _, err := c.Compile(); err != nil {
			t.Fatalf("accepted config does not compile: %v", err)
		}
		first := Marshal(c)
		c2, err := Parse("first", first)
		if err != nil {
			t.Fatalf("exported config does not parse: %v\n%s", err, first)
		}
		if second := Marshal(c2); !bytes.Equal(first, second) {
			t.Fatalf("export -> import -> export differs:\n%s\n---\n%s", first, second)
		}
	})
}

// FuzzReadBundle: no archive panics the reader; an accepted bundle exports to bytes
// that read back and export identically.
func FuzzReadBundle(f *testing.F) {
	f.Add(bundleBytes(f, storyBundle(f)))
	f.Add(makeTgz(f, entry{name: "winroute.cfg", body: minimalCfg}))
	f.Add(makeTgz(f, entry{name: "./", typ: tar.TypeDir}, entry{name: "./version", body: "1\n"}, entry{name: "./host.cfg", body: `<config><table name="Host"><variable name="Hostname">x</variable></table></config>`}, entry{name: "./winroute.cfg", body: minimalCfg}))
	f.Add(makeTgz(f, entry{name: "../x", body: "x"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ReadBundle("f.tgz", bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.tgz") {
				t.Fatalf("error does not name the bundle: %v", err)
			}
			return
		}
		var first bytes.Buffer
		if err := WriteBundle(&first, b); err != nil {
			t.Fatal(err)
		}
		b2, err := ReadBundle("first", bytes.NewReader(first.Bytes()))
		if err != nil {
			t.Fatalf("exported bundle does not read: %v", err)
		}
		var second bytes.Buffer
		WriteBundle(&second, b2)
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatal("export -> import -> export differs")
		}
	})
}
