package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"keepstate/internal/testcorpus"
)

// TestCorpus reads every capture of the corpus to its end or to a FormatError, checking
// that offsets and records are consistent, and reports how the damaged files end.
func TestCorpus(t *testing.T) {
	names := testcorpus.Need(t)
	var files, packets, rejected int
	kinds := map[string][]string{}
	for _, name := range names {
		base := filepath.Base(name)
		n, err := readCorpusFile(name)
		files++
		packets += n
		if err == nil {
			continue
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: error is not a *FormatError: %v", base, err)
			continue
		}
		if strings.Contains(err.Error(), "file header") || strings.Contains(err.Error(), "magic") ||
			strings.Contains(err.Error(), "version") {
			rejected++
		}
		kind := errorKind(fe)
		kinds[kind] = append(kinds[kind], fmt.Sprintf("%s (%d packets): %v", base, n, err))
	}
	var failed int
	var lines []string
	for kind, list := range kinds {
		failed += len(list)
		lines = append(lines, fmt.Sprintf("%-12s %d", kind, len(list)))
		for _, l := range list {
			lines = append(lines, "    "+l)
		}
	}
	sort.Strings(lines)
	t.Logf("%d files, %d packets; %d end with a FormatError (%d rejected at the header):\n%s",
		files, packets, failed, rejected, strings.Join(lines, "\n"))
}

func errorKind(fe *FormatError) string {
	for _, k := range []error{ErrTruncated, ErrTooLarge, ErrCorrupt, ErrUnsupported} {
		if errors.Is(fe, k) {
			return k.Error()
		}
	}
	return "gzip"
}

// readCorpusFile reads one capture and checks the invariants every file must keep: no
// panic, strictly increasing record offsets with room for each record's data, lengths
// that agree with Data, and an error (if any) located after the last record.
func readCorpusFile(name string) (packets int, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic after %d packets: %v", packets, p)
		}
	}()
	r, err := Open(name)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	next := int64(0) // no record may start before this offset
	for {
		p, err := r.Next()
		if err == io.EOF {
			return packets, nil
		}
		if err != nil {
			var fe *FormatError
			if errors.As(err, &fe) && fe.Offset < next {
				return packets, fmt.Errorf("error offset %d precedes the end of the last record (%d): %w", fe.Offset, next, err)
			}
			return packets, err
		}
		if p.Offset < next {
			return packets, fmt.Errorf("record %d at offset %d overlaps the previous one (ends at %d)", packets, p.Offset, next)
		}
		if len(p.Data) != p.CaptureLen || p.CaptureLen > MaxCaptureLen {
			return packets, fmt.Errorf("record %d: %d data bytes, capture length %d", packets, len(p.Data), p.CaptureLen)
		}
		if r.Format() == FormatPcapNG && (p.Iface < 0 || p.Iface >= len(r.Interfaces())) {
			return packets, fmt.Errorf("record %d: interface %d of %d", packets, p.Iface, len(r.Interfaces()))
		}
		next = p.Offset + 16 + int64(p.CaptureLen)
		packets++
	}
}

// TestCorpusCutShort cuts every corpus capture at several points, plain and (for a
// sample) gzip-compressed, and checks that the Reader returns exactly the records
// that fit before the cut, then reports the cut as ErrTruncated at the offset of the
// first record that does not fit (or io.EOF when the cut falls between records of an
// uncompressed file).
func TestCorpusCutShort(t *testing.T) {
	names := testcorpus.Need(t)
	var cuts int
	for i, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		full, err := readAll(r)
		if err != io.EOF {
			continue // damaged already: TestCorpus reports it
		}
		isPcap := r.Format() == FormatPcap
		for _, cut := range []int{len(data) / 3, len(data)/2 + 1, len(data) - 1, len(data) - 5} {
			if cut <= 0 {
				continue
			}
			cuts++
			if err := checkCut(data[:cut], full, isPcap, r.hdrLen); err != nil {
				t.Errorf("%s cut at %d of %d: %v", filepath.Base(name), cut, len(data), err)
			}
			if i%10 == 0 {
				z := gzipBytes(data)
				zcut := z[:len(z)*cut/len(data)]
				if err := checkGzipCut(zcut, full); err != nil {
					t.Errorf("%s gzip cut at %d of %d: %v", filepath.Base(name), len(zcut), len(z), err)
				}
			}
		}
	}
	t.Logf("%d cuts checked", cuts)
}

func checkCut(in []byte, full []Packet, isPcap bool, hdrLen int) error {
	r, err := NewReader(bytes.NewReader(in))
	if err != nil {
		if !errors.Is(err, ErrTruncated) {
			return fmt.Errorf("NewReader: %v, want ErrTruncated", err)
		}
		return nil
	}
	got, err := readAll(r)
	if err := checkPrefix(got, full); err != nil {
		return err
	}
	var fe *FormatError
	if err != io.EOF && (!errors.As(err, &fe) || !errors.Is(err, ErrTruncated)) {
		return fmt.Errorf("ended with %v, want io.EOF or ErrTruncated", err)
	}
	if !isPcap {
		last := int64(-1)
		if len(got) > 0 {
			last = got[len(got)-1].Offset
		}
		if fe != nil && (fe.Offset <= last || fe.Offset >= int64(len(in))) {
			return fmt.Errorf("error offset %d outside the cut tail (last record at %d, cut at %d)", fe.Offset, last, len(in))
		}
		return nil
	}
	// In a pcap file every record's extent is known, so the outcome is exact.
	want := 0
	for want < len(full) && full[want].Offset+int64(hdrLen+full[want].CaptureLen) <= int64(len(in)) {
		want++
	}
	if len(got) != want {
		return fmt.Errorf("%d records returned, %d fit before the cut", len(got), want)
	}
	if want < len(full) || len(in) > int(full[len(full)-1].Offset)+hdrLen+full[len(full)-1].CaptureLen {
		nextOff := int64(len(in)) // trailing bytes after the last record
		if want < len(full) {
			nextOff = full[want].Offset
		}
		if nextOff == int64(len(in)) {
			if err != io.EOF {
				return fmt.Errorf("cut between records ended with %v, want io.EOF", err)
			}
			return nil
		}
		if fe == nil || fe.Offset != nextOff {
			return fmt.Errorf("ended with %v, want ErrTruncated at offset %d", err, nextOff)
		}
	}
	return nil
}

func checkGzipCut(in []byte, full []Packet) error {
	r, err := NewReader(bytes.NewReader(in))
	if err != nil {
		if !errors.Is(err, ErrTruncated) {
			return fmt.Errorf("NewReader: %v, want ErrTruncated", err)
		}
		return nil
	}
	got, err := readAll(r)
	if err := checkPrefix(got, full); err != nil {
		return err
	}
	if !errors.Is(err, ErrTruncated) {
		return fmt.Errorf("ended with %v, want ErrTruncated (a gzip stream without its trailer is cut off)", err)
	}
	return nil
}

func checkPrefix(got, full []Packet) error {
	if len(got) > len(full) {
		return fmt.Errorf("%d records from a cut file, %d from the whole", len(got), len(full))
	}
	for i, p := range got {
		f := full[i]
		if p.Offset != f.Offset || p.Time != f.Time || !bytes.Equal(p.Data, f.Data) {
			return fmt.Errorf("record %d differs from the uncut file's: %+v vs %+v", i, p, f)
		}
	}
	return nil
}
