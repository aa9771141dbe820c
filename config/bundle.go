package config

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// BundleVersion is the bundle format this keepstate writes and the newest it reads.
const BundleVersion = 1

// Bundle members, in archive order (version first, so a reader can refuse a newer
// format before reading anything else).
const (
	MemberVersion    = "version"      // bundle format version, one number
	MemberHardware   = "hardware"     // GOOS/GOARCH of the exporting machine (informational)
	MemberHost       = "host.cfg"     // hostname and admin-socket settings
	MemberInterfaces = "interfaces"   // OS network devices at export time, one per line
	MemberLogs       = "logs.cfg"     // log files, rotation, JSON and syslog switches
	MemberUsers      = "UserDB.cfg"   // Unix users allowed on the admin socket
	MemberWinroute   = "winroute.cfg" // everything that decides verdicts
)

// Members lists the bundle members in archive order.
var Members = []string{MemberVersion, MemberHardware, MemberHost, MemberInterfaces, MemberLogs, MemberUsers, MemberWinroute}

// Limits on what a bundle may hold; anything larger is refused, not truncated.
const (
	maxMembers        = 64              // archive entries, directories included
	maxBundleUnpacked = 4 * MaxFileSize // bytes after decompression, in total
)

// bundleTime is the modification time of every member: fixed so that exporting the
// same configuration twice gives the same bytes.
var bundleTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Bundle is an exported configuration: winroute.cfg and its companions.
type Bundle struct {
	Version    int    // format version read (BundleVersion when written)
	Hardware   string // "linux/amd64": the machine that exported
	Host       HostSettings
	Interfaces []string // OS devices of the exporting machine, to spot renamed devices
	Logs       LogSettings
	Users      []User
	Config     *Config
}

// NewBundle wraps c with default companions and this machine's hardware.
func NewBundle(c *Config) *Bundle {
	return &Bundle{
		Version:  BundleVersion,
		Hardware: runtime.GOOS + "/" + runtime.GOARCH,
		Host:     DefaultHost(),
		Logs:     DefaultLogs(),
		Users:    DefaultUsers(),
		Config:   c,
	}
}

// Files returns the contents of every member, keyed by member name.
func (b *Bundle) Files() map[string][]byte {
	ifaces := ""
	if len(b.Interfaces) > 0 {
		ifaces = strings.Join(b.Interfaces, "\n") + "\n"
	}
	return map[string][]byte{
		MemberVersion:    []byte(strconv.Itoa(BundleVersion) + "\n"),
		MemberHardware:   []byte(b.Hardware + "\n"),
		MemberHost:       marshalTable(tableHost, hostDefs, &b.Host),
		MemberInterfaces: []byte(ifaces),
		MemberLogs:       marshalTable(tableLogs, logDefs, &b.Logs),
		MemberUsers:      marshalUsers(b.Users),
		MemberWinroute:   Marshal(b.Config),
	}
}

// WriteBundle writes b as a gzipped tar. The archive is deterministic: fixed member
// order, modification time, owner and mode, and no gzip name or time.
func WriteBundle(w io.Writer, b *Bundle) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	files := b.Files()
	for _, name := range Members {
		data := files[name]
		mode := int64(0o644)
		if name == MemberUsers {
			mode = 0o600
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: mode,
			ModTime: bundleTime, Uname: "root", Gname: "root", Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// ReadBundle reads a gzipped tar bundle. name is used in messages and error
// positions ("name/winroute.cfg:12: ..."). It refuses, with a message that says
// which: a corrupt or truncated archive, members that are links, devices or in
// sub-folders, paths that escape (absolute, ".."), unknown or repeated members,
// oversized members, and a bundle format newer than BundleVersion.
func ReadBundle(name string, r io.Reader) (*Bundle, error) {
	files, err := readArchive(name, r)
	if err != nil {
		return nil, err
	}
	return decodeBundle(name, files)
}

func readArchive(name string, r io.Reader) (map[string][]byte, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%s: not a gzip archive, or truncated: %v", name, err)
	}
	// Bound the unpacked size so a small archive cannot expand into gigabytes.
	limited := &io.LimitedReader{R: gz, N: maxBundleUnpacked + 1}
	tr := tar.NewReader(limited)
	files := map[string][]byte{}
	folder := "" // the one top-level folder members may share ("bundle/winroute.cfg")
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, corrupt(name, limited, err)
		}
		if n >= maxMembers {
			return nil, fmt.Errorf("%s: more than %d archive entries; a bundle holds %s", name, maxMembers, strings.Join(Members, ", "))
		}
		member, dir, err := memberName(hdr)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		if folder == "" && dir != "" {
			folder = dir
		}
		if dir != folder {
			return nil, fmt.Errorf("%s: member %q is outside folder %q: a bundle holds its files in one place", name, hdr.Name, folder)
		}
		if member == "" { // the folder itself
			continue
		}
		if strings.HasPrefix(member, "._") {
			// AppleDouble metadata that macOS tar adds next to each file when an
			// administrator re-packs a bundle on a Mac: not ours, not harmful.
			continue
		}
		if !isMember(member) {
			return nil, fmt.Errorf("%s: unexpected member %q; a bundle holds %s", name, hdr.Name, strings.Join(Members, ", "))
		}
		if _, dup := files[member]; dup {
			return nil, fmt.Errorf("%s: member %q appears twice", name, member)
		}
		if hdr.Size > MaxFileSize {
			return nil, fmt.Errorf("%s: member %q is %d bytes, more than the %d allowed", name, member, hdr.Size, MaxFileSize)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, corrupt(name, limited, err)
		}
		files[member] = data
	}
	// Read to the end of the gzip stream so its checksum is verified.
	if _, err := io.Copy(io.Discard, limited); err != nil {
		return nil, corrupt(name, limited, err)
	}
	if limited.N <= 0 {
		return nil, fmt.Errorf("%s: unpacks to more than %d bytes", name, maxBundleUnpacked)
	}
	return files, nil
}

func corrupt(name string, limited *io.LimitedReader, err error) error {
	if limited.N <= 0 {
		return fmt.Errorf("%s: unpacks to more than %d bytes", name, maxBundleUnpacked)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: archive is truncated", name)
	}
	return fmt.Errorf("%s: corrupt archive: %v", name, err)
}

// memberName checks an archive entry and returns its member name and the folder
// it sits in ("" at top level). Only regular files and one folder level are
// accepted.
func memberName(hdr *tar.Header) (member, dir string, err error) {
	raw := hdr.Name
	if strings.HasPrefix(raw, "/") || strings.Contains(raw, "\\") {
		return "", "", fmt.Errorf("member %q has an absolute or Windows path: refused", raw)
	}
	for _, part := range strings.Split(raw, "/") {
		if part == ".." {
			return "", "", fmt.Errorf("member %q escapes the bundle folder: refused", raw)
		}
	}
	clean := path.Clean(raw)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if clean == "." {
			return "", "", nil
		}
		if strings.Contains(clean, "/") {
			return "", "", fmt.Errorf("member %q is a nested folder: refused", raw)
		}
		return "", clean, nil
	case tar.TypeReg:
	case tar.TypeSymlink, tar.TypeLink:
		return "", "", fmt.Errorf("member %q is a link: refused", raw)
	default:
		return "", "", fmt.Errorf("member %q is not a regular file (type %q): refused", raw, hdr.Typeflag)
	}
	dir, member = path.Split(clean)
	dir = strings.TrimSuffix(dir, "/")
	if strings.Contains(dir, "/") {
		return "", "", fmt.Errorf("member %q is in a nested folder: refused", raw)
	}
	return member, dir, nil
}

func isMember(name string) bool {
	for _, m := range Members {
		if m == name {
			return true
		}
	}
	return false
}

// decodeBundle parses the members; a missing companion takes its default, a
// missing version is taken as the current one, winroute.cfg is required. Every
// member's errors are reported together.
func decodeBundle(name string, files map[string][]byte) (*Bundle, error) {
	b := NewBundle(nil)
	b.Hardware = ""
	var errs ErrorList
	where := func(member string) string { return name + "/" + member }
	if v, ok := files[MemberVersion]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(string(v)))
		switch {
		case err != nil || n < 1:
			return nil, fmt.Errorf("%s: version %q is not a bundle format version", where(MemberVersion), clip(string(v)))
		case n > BundleVersion:
			return nil, fmt.Errorf("%s: bundle format version %d is newer than this keepstate reads (%d): upgrade keepstate, or export from the version in use", where(MemberVersion), n, BundleVersion)
		}
		b.Version = n
	}
	if v, ok := files[MemberHardware]; ok {
		b.Hardware = strings.TrimSpace(string(v))
		if strings.ContainsAny(b.Hardware, "\n\x00") || len(b.Hardware) > 64 {
			errs = append(errs, &Error{File: where(MemberHardware), Line: 1, Msg: "want one short line such as linux/amd64"})
		}
	}
	if v, ok := files[MemberInterfaces]; ok {
		for i, line := range strings.Split(string(v), "\n") {
			dev := strings.TrimSpace(line)
			if dev == "" {
				continue
			}
			if err := checkDevice(dev); err != nil {
				errs = append(errs, &Error{File: where(MemberInterfaces), Line: i + 1, Msg: err.Error()})
				continue
			}
			b.Interfaces = append(b.Interfaces, dev)
		}
	}
	if v, ok := files[MemberHost]; ok {
		var e ErrorList
		b.Host, e = parseHost(where(MemberHost), v)
		errs = append(errs, e...)
	}
	if v, ok := files[MemberLogs]; ok {
		var e ErrorList
		b.Logs, e = parseLogs(where(MemberLogs), v)
		errs = append(errs, e...)
	}
	if v, ok := files[MemberUsers]; ok {
		var e ErrorList
		b.Users, e = parseUsers(where(MemberUsers), v)
		errs = append(errs, e...)
	}
	if v, ok := files[MemberWinroute]; ok {
		c, err := Parse(where(MemberWinroute), v)
		var list ErrorList
		if errors.As(err, &list) {
			errs = append(errs, list...)
		} else if err != nil {
			return nil, err
		}
		b.Config = c
	} else {
		errs = append(errs, &Error{File: name, Msg: "no winroute.cfg in the bundle"})
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return b, nil
}

// gzipMagic starts every gzip stream.
var gzipMagic = []byte{0x1f, 0x8b}

func isGzip(data []byte) bool { return bytes.HasPrefix(data, gzipMagic) }
