package capture

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"keepstate/internal/testcorpus"
	"keepstate/packet"
)

// Cross-checks against Wireshark's reader: same packet count, same timestamps to the
// nanosecond, and comments written by NgWriter visible to tshark. Skipped when tshark
// is not installed.

func needTshark(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install -y tshark)")
	}
	return path
}

// tsharkFields runs tshark on file and returns one row of tab-separated fields per
// packet.
func tsharkFields(t *testing.T, tshark, file string, fields ...string) ([][]string, error) {
	t.Helper()
	args := []string{"-r", file, "-T", "fields"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(tshark, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: stderr.Bytes()}
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows, nil
}

// parseEpoch turns tshark's frame.time_epoch ("1700000000.123456789") into Unix
// nanoseconds without going through a float. A record whose fraction field is out of
// range (a microsecond count of 1000000 or more) comes out unnormalised, as
// "1418145370.1000000000": ten digits of nanoseconds, added as they are.
func parseEpoch(s string) (int64, error) {
	sec, frac, _ := strings.Cut(s, ".")
	v, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, err
	}
	if len(frac) < 9 {
		frac += strings.Repeat("0", 9-len(frac))
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, err
	}
	return v*1e9 + f, nil
}

func TestTsharkAgreesOnTimestamps(t *testing.T) {
	tshark := needTshark(t)
	dir := t.TempDir()
	files := map[string]string{}
	corpus := testcorpus.Dir()
	for _, name := range []string{
		"afs.pcap",                // the largest of the corpus, little-endian microseconds
		"ipoib.pcap",              // big-endian
		"tcp-handshake-nano.pcap", // nanosecond magic
		"of13_ericsson.pcapng",    // pcapng, default resolution
		"vsock-1.pcapng",          // pcapng, if_tsresol 9
		"time_2107.pcapng",        // seconds past 2^32
	} {
		if path := filepath.Join(corpus, name); corpus != "" && fileExists(path) {
			files[name] = path
		}
	}
	if len(files) == 0 {
		t.Log("corpus absent: checking generated captures only")
	}
	// The multi-section capture without its Simple Packet Block, which carries no
	// timestamp (tshark shows 0 where the Reader repeats the previous packet's).
	multi, _, _ := multiSectionCapture()
	files["multi-section.pcapng"] = writeTemp(t, dir, "multi.pcapng", withoutSimplePackets(t, multi))
	files["multi-section.pcapng.gz"] = writeTemp(t, dir, "multi.pcapng.gz", gzipBytes(withoutSimplePackets(t, multi)))
	files["writer.pcap"] = writeTemp(t, dir, "writer.pcap", pcapFromWriter(t, false))
	files["writer-nanos.pcap"] = writeTemp(t, dir, "writer-nanos.pcap", pcapFromWriter(t, true))

	for name, path := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // tshark takes a second or two just to start
			rows, err := tsharkFields(t, tshark, path, "frame.time_epoch")
			if err != nil {
				t.Fatalf("tshark: %v %s", err, err.(*exec.ExitError).Stderr)
			}
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			pkts, err := readAll(r)
			if err.Error() != "EOF" {
				t.Fatalf("reader stopped with %v", err)
			}
			if len(pkts) != len(rows) {
				t.Fatalf("%d packets, tshark sees %d", len(pkts), len(rows))
			}
			for i, row := range rows {
				want, err := parseEpoch(row[0])
				if err != nil {
					t.Fatalf("tshark time %q: %v", row[0], err)
				}
				if pkts[i].Time != want {
					t.Fatalf("packet %d: time %d, tshark says %s", i, pkts[i].Time, row[0])
				}
			}
			t.Logf("%d packets agree", len(rows))
		})
	}
}

func TestTsharkShowsComments(t *testing.T) {
	tshark := needTshark(t)
	var buf bytes.Buffer
	w, err := NewNgWriter(&buf, []Interface{{Name: "eth0", Link: packet.LinkEthernet}, {Name: "nfq", Link: packet.LinkRaw}})
	if err != nil {
		t.Fatal(err)
	}
	ip := []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	comments := []string{"out_of_window", "", `handshake_not_completed rule "Block \ all"`, "state_expired"}
	for i, c := range comments {
		if err := w.WritePacket(i%2, 1_700_000_000_000_000_000+int64(i), ip, len(ip), c); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := writeTemp(t, t.TempDir(), "drops.pcapng", buf.Bytes())
	// Wireshark renamed the field over the years; take whichever this tshark knows.
	var rows [][]string
	for _, field := range []string{"frame.comment", "pkt_comment"} {
		if rows, err = tsharkFields(t, tshark, path, field, "frame.interface_name"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	if len(rows) != len(comments) {
		t.Fatalf("tshark sees %d packets, want %d", len(rows), len(comments))
	}
	for i, row := range rows {
		// tshark escapes backslashes and quotes in field output.
		got := strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(row[0])
		wantIface := []string{"eth0", "nfq"}[i%2]
		if got != comments[i] || len(row) < 2 || row[1] != wantIface {
			t.Errorf("packet %d: tshark shows comment %q on %v, want %q on %s", i, row[0], row[1:], comments[i], wantIface)
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func writeTemp(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// withoutSimplePackets re-reads a little-endian-first pcapng and drops its Simple
// Packet Blocks, keeping every other byte as it was.
func withoutSimplePackets(t *testing.T, in []byte) []byte {
	t.Helper()
	r, err := NewReader(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	last := int64(0)
	for {
		p, err := r.Next()
		if err != nil {
			break
		}
		if len(p.Data) == 6 && p.Data[0] == 6 { // the SPB of multiSectionCapture
			blen := int64(16 + pad4(len(p.Data)))
			out = append(out, in[last:p.Offset]...)
			last = p.Offset + blen
		}
	}
	return append(out, in[last:]...)
}

func pcapFromWriter(t *testing.T, nanos bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewPcapWriter(&buf, packet.LinkRaw, 0, nanos)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		w.WritePacket(1_700_000_000_000_000_000+int64(i)*1_234_567, []byte{0x45, 0, 0, 20, byte(i)}, 20)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
