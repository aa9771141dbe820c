package config

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"keepstate/policy"
)

// storyBundle is the first incident's configuration with fixed companions.
func storyBundle(t testing.TB) *Bundle {
	t.Helper()
	c, err := Parse("story1.cfg", readFile(t, "testdata/story1.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	b := NewBundle(c)
	b.Hardware = "linux/amd64"
	b.Host.Hostname = "fw1.example.net"
	b.Interfaces = []string{"eth0", "eth1", "eth2", "eth3", "lo"}
	b.Logs.JSON = true
	b.Users = append(b.Users, User{ID: 1, Name: "root", Role: RoleAdmin, PasswordHash: testHash},
		User{ID: 2, Name: "tony", Role: RoleReadOnly})
	return b
}

// testHash has the form of a password hash; config checks the form only.
const testHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

func bundleBytes(t testing.TB, b *Bundle) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteBundle(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBundleRoundTrip(t *testing.T) {
	first := bundleBytes(t, storyBundle(t))
	b, err := ReadBundle("b.tgz", bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	if b.Host.Hostname != "fw1.example.net" || !b.Logs.JSON || len(b.Users) != 2 || b.Users[1].Role != RoleReadOnly ||
		b.Hardware != "linux/amd64" || !slices.Equal(b.Interfaces, []string{"eth0", "eth1", "eth2", "eth3", "lo"}) || b.Version != 1 {
		t.Errorf("companions: %+v", b)
	}
	if second := bundleBytes(t, b); !bytes.Equal(first, second) {
		t.Error("export -> import -> export is not byte-identical")
	}

	// The archive itself: fixed order, times, owners and modes.
	gz, err := gzip.NewReader(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	if gz.Name != "" || !gz.ModTime.IsZero() {
		t.Errorf("gzip header carries name %q time %v", gz.Name, gz.ModTime)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
		wantMode := int64(0o644)
		if h.Name == MemberUsers {
			wantMode = 0o600
		}
		if !h.ModTime.Equal(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) || h.Uid != 0 || h.Uname != "root" || h.Mode != wantMode {
			t.Errorf("%s: time %v uid %d uname %q mode %o", h.Name, h.ModTime, h.Uid, h.Uname, h.Mode)
		}
	}
	if !slices.Equal(names, Members) {
		t.Errorf("members %v, want %v", names, Members)
	}
}

// entry is one archive entry for hand-made bundles.
type entry struct {
	name, body string
	typ        byte
	size       int64 // header size when it must lie; 0 = len(body)
}

func makeTgz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if e.typ == tar.TypeSymlink || e.typ == tar.TypeLink {
			h.Linkname, h.Size = "/etc/shadow", 0
		}
		if e.typ == tar.TypeDir {
			h.Size = 0
		}
		if e.size != 0 {
			h.Size = e.size
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body)) // a lying size makes this short: intended
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

const minimalCfg = `<config><table name="SecuritySettings"><variable name="Require3WayHandshake">0</variable></table></config>`

func TestReadBundleAccepts(t *testing.T) {
	tests := map[string][]entry{
		"only winroute.cfg":     {{name: "winroute.cfg", body: minimalCfg}},
		"dot-slash paths":       {{name: "./", typ: tar.TypeDir}, {name: "./version", body: "1\n"}, {name: "./winroute.cfg", body: minimalCfg}},
		"one top-level folder":  {{name: "export/", typ: tar.TypeDir}, {name: "export/winroute.cfg", body: minimalCfg}, {name: "export/hardware", body: "linux/arm64\n"}},
		"macOS metadata":        {{name: "._winroute.cfg", body: "\x00\x05\x16\x07 binary"}, {name: "winroute.cfg", body: minimalCfg}},
		"older version spelled": {{name: "version", body: " 1 \n"}, {name: "winroute.cfg", body: minimalCfg}},
	}
	for name, entries := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := ReadBundle("b.tgz", bytes.NewReader(makeTgz(t, entries...)))
			if err != nil {
				t.Fatal(err)
			}
			if b.Config.Settings.Require3WayHandshake {
				t.Error("winroute.cfg not applied")
			}
			if b.Host != DefaultHost() || b.Logs != DefaultLogs() || !slices.Equal(b.Users, DefaultUsers()) {
				t.Errorf("missing companions did not default: %+v", b)
			}
		})
	}
}

func TestReadBundleRefuses(t *testing.T) {
	valid := bundleBytes(t, storyBundle(t))
	flipped := slices.Clone(valid)
	flipped[len(flipped)/2] ^= 0xff
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"parent path", makeTgz(t, entry{name: "../winroute.cfg", body: minimalCfg}), `b.tgz: member "../winroute.cfg" escapes the bundle folder: refused`},
		{"hidden parent", makeTgz(t, entry{name: "x/../../etc/passwd", body: "x"}), `b.tgz: member "x/../../etc/passwd" escapes the bundle folder: refused`},
		{"absolute path", makeTgz(t, entry{name: "/etc/keepstate/winroute.cfg", body: minimalCfg}), `b.tgz: member "/etc/keepstate/winroute.cfg" has an absolute or Windows path: refused`},
		{"symlink", makeTgz(t, entry{name: "winroute.cfg", typ: tar.TypeSymlink}), `b.tgz: member "winroute.cfg" is a link: refused`},
		{"hard link", makeTgz(t, entry{name: "host.cfg", typ: tar.TypeLink}), `b.tgz: member "host.cfg" is a link: refused`},
		{"device", makeTgz(t, entry{name: "winroute.cfg", typ: tar.TypeChar}), `b.tgz: member "winroute.cfg" is not a regular file (type '3'): refused`},
		{"nested folder", makeTgz(t, entry{name: "a/b/winroute.cfg", body: minimalCfg}), `b.tgz: member "a/b/winroute.cfg" is in a nested folder: refused`},
		{"two folders", makeTgz(t, entry{name: "a/version", body: "1"}, entry{name: "b/winroute.cfg", body: minimalCfg}), `b.tgz: member "b/winroute.cfg" is outside folder "a": a bundle holds its files in one place`},
		{"unknown member", makeTgz(t, entry{name: "winroute.cfg", body: minimalCfg}, entry{name: "evil.sh", body: "rm -rf /"}), `b.tgz: unexpected member "evil.sh"; a bundle holds version, hardware, host.cfg, interfaces, logs.cfg, UserDB.cfg, winroute.cfg`},
		{"duplicate member", makeTgz(t, entry{name: "winroute.cfg", body: minimalCfg}, entry{name: "./winroute.cfg", body: minimalCfg}), `b.tgz: member "winroute.cfg" appears twice`},
		{"oversized member", makeTgz(t, entry{name: "winroute.cfg", body: "<config/>", size: MaxFileSize + 1}), `b.tgz: member "winroute.cfg" is 33554433 bytes, more than the 33554432 allowed`},
		{"newer version", makeTgz(t, entry{name: "version", body: "2\n"}, entry{name: "winroute.cfg", body: minimalCfg}), `b.tgz/version: bundle format version 2 is newer than this keepstate reads (1): upgrade keepstate, or export from the version in use`},
		{"garbage version", makeTgz(t, entry{name: "version", body: "two"}, entry{name: "winroute.cfg", body: minimalCfg}), `b.tgz/version: version "two" is not a bundle format version`},
		{"no winroute.cfg", makeTgz(t, entry{name: "version", body: "1\n"}), `b.tgz: no winroute.cfg in the bundle`},
		{"truncated", valid[:len(valid)/2], `b.tgz: archive is truncated`},
		{"truncated gzip header", valid[:5], `b.tgz: not a gzip archive, or truncated: unexpected EOF`},
		{"not gzip", []byte(minimalCfg), `b.tgz: not a gzip archive, or truncated: gzip: invalid header`},
		{"corrupt", flipped, `b.tgz: corrupt archive: `},
		{"errors in several members", makeTgz(t,
			entry{name: "host.cfg", body: "<config>\n<table name=\"Host\">\n<variable name=\"AdminSockett\">/x</variable>\n</table></config>"},
			entry{name: "interfaces", body: "eth0\nmy device\n"},
			entry{name: "winroute.cfg", body: "<config>\n<table name=\"SecuritySettings\">\n<variable name=\"Require3WayHandshake\">2</variable></table></config>"}),
			"b.tgz/host.cfg:3: unknown setting \"AdminSockett\" (did you mean AdminSocket?)\n" +
				"b.tgz/interfaces:2: \"my device\" is not a Linux interface name (at most 15 characters, no '/', ':' or spaces)\n" +
				"b.tgz/winroute.cfg:3: Require3WayHandshake: want 0 or 1, got \"2\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ReadBundle("b.tgz", bytes.NewReader(tt.data))
			if err == nil {
				t.Fatalf("accepted: %+v", b)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to start with:\n%s", err, tt.want)
			}
		})
	}
}

func TestLoadKindsAndInstall(t *testing.T) {
	dir := t.TempDir()
	b := storyBundle(t)
	tgz := filepath.Join(dir, "export.tgz")
	if err := os.WriteFile(tgz, bundleBytes(t, b), 0o644); err != nil {
		t.Fatal(err)
	}
	want := Marshal(b.Config)

	fromTgz, err := LoadBundle(tgz)
	if err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(dir, "etc", "keepstate")
	if err := InstallBundle(etc, fromTgz); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(etc)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"UserDB.cfg", "hardware", "host.cfg", "interfaces", "logs.cfg", "version", "winroute.cfg"}; !slices.Equal(names, want) {
		t.Errorf("installed %v (staging left behind?), want %v", names, want)
	}
	if fi, _ := os.Stat(filepath.Join(etc, MemberUsers)); fi.Mode().Perm() != 0o600 {
		t.Errorf("UserDB.cfg mode %v", fi.Mode())
	}
	fromDir, err := LoadBundle(etc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bundleBytes(t, fromDir), bundleBytes(t, b)) {
		t.Error("folder does not hold the bundle installed")
	}
	lone, err := Load(filepath.Join(etc, MemberWinroute))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(Marshal(lone), want) {
		t.Error("lone winroute.cfg differs")
	}

	// A bundle that does not load back installs nothing.
	bad := NewBundle(Default())
	bad.Config.Policy.Rules[0].Services = []string{"NoSuchService"}
	before := readFile(t, filepath.Join(etc, MemberWinroute))
	if err := InstallBundle(etc, bad); err == nil || !strings.Contains(err.Error(), `no service "NoSuchService"`) {
		t.Errorf("InstallBundle(bad) = %v", err)
	}
	if after := readFile(t, filepath.Join(etc, MemberWinroute)); !bytes.Equal(before, after) {
		t.Error("a refused bundle changed winroute.cfg")
	}
}

func TestLoadFolderRefusesLinks(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret.cfg")
	os.WriteFile(outside, []byte(minimalCfg), 0o644)
	if err := os.Symlink(outside, filepath.Join(dir, MemberWinroute)); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || err.Error() != filepath.Join(dir, MemberWinroute)+" is a symbolic link: refused" {
		t.Errorf("Load = %v", err)
	}
	empty := t.TempDir()
	if _, err := Load(empty); err == nil || !strings.Contains(err.Error(), "no bundle files") {
		t.Errorf("Load(empty) = %v", err)
	}
}

func TestDefaultPermitsEverything(t *testing.T) {
	rs, err := Default().Compile()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []policy.Query{
		{Src: netipAddr("10.0.0.1"), Dst: netipAddr("8.8.8.8"), Proto: 6, DstPort: 443, InIface: -1, OutIface: -1},
		{Src: netipAddr("2001:db8::1"), Dst: netipAddr("2001:db8::2"), Proto: 132, InIface: 0, OutIface: 0},
	} {
		if r, a := rs.Match(&q); r != 0 || a != policy.Permit {
			t.Errorf("Match(%v) = %d %v", q, r, a)
		}
	}
	if got := rs.IfaceForAddr(netipAddr("192.0.2.1")); got != 0 {
		t.Errorf("IfaceForAddr = %d, want the Internet interface 0", got)
	}
	if !rs.SpoofOK(0, netipAddr("192.0.2.1")) {
		t.Error("default anti-spoofing refuses a source")
	}
}
