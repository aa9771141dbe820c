package capture

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// corpusDir holds the tcpdump test captures: hundreds of real files of every link type,
// many deliberately damaged.
const corpusDir = "/work/shared/corpus/tcpdump"

// TestCorpus reads every capture of the corpus to its end or to a FormatError, checking
// that offsets and records are consistent, and reports how the damaged files end.
func TestCorpus(t *testing.T) {
	names, err := filepath.Glob(filepath.Join(corpusDir, "*.pcap*"))
	if err != nil || len(names) == 0 {
		t.Skipf("no captures in %s (%v): corpus not present on this machine", corpusDir, err)
	}
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
