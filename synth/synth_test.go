package synth

import (
	"bytes"
	"io"
	"testing"
	"time"

	"keepstate/capture"
	"keepstate/packet"
)

// The generators are deterministic: the demo's output and the tests' numbers rest
// on it.
func TestDeterministic(t *testing.T) {
	for name, gen := range map[string]func(io.Writer) error{
		"story1": func(w io.Writer) error { _, err := WriteStory1(w); return err },
		"story2": func(w io.Writer) error { _, err := WriteStory2(w); return err },
		"behaviours": func(w io.Writer) error {
			for _, b := range append(Behaviours(), RepliesOnly()) {
				if err := WriteBehaviour(w, b); err != nil {
					return err
				}
			}
			return nil
		},
		"traffic": func(w io.Writer) error {
			_, err := WriteTraffic(w, NewTraffic(50, 500, 7), time.Unix(0, 0))
			return err
		},
	} {
		var a, b bytes.Buffer
		if err := gen(&a); err != nil {
			t.Fatal(name, err)
		}
		if err := gen(&b); err != nil {
			t.Fatal(name, err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) || a.Len() == 0 {
			t.Errorf("%s: two runs differ (%d and %d bytes)", name, a.Len(), b.Len())
		}
	}
}

// Every packet of a traffic capture decodes, and the count is what the phases make.
func TestTrafficCapture(t *testing.T) {
	var buf bytes.Buffer
	const flows, data = 40, 1000
	n, err := WriteTraffic(&buf, NewTraffic(flows, data, 1), time.Unix(1e9, 0))
	if err != nil {
		t.Fatal(err)
	}
	if want := flows*(1+2+3) + data; n != want {
		t.Fatalf("wrote %d packets, want %d", n, want)
	}
	r, err := capture.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var p packet.Parsed
	got := 0
	for {
		pkt, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Decode(pkt.Data, pkt.Link); err != nil || p.Proto != packet.ProtoTCP {
			t.Fatalf("packet %d: %v", got, err)
		}
		if pkt.OrigLen != 14+p.IPLen {
			t.Fatalf("packet %d: original length %d, IP says %d", got, pkt.OrigLen, p.IPLen)
		}
		got++
	}
	if got != n {
		t.Errorf("read %d packets, wrote %d", got, n)
	}
}
