package capture

import (
	"bytes"
	"io"
	"testing"

	"keepstate/packet"
)

// Interfaces declared after packets were written must be read back with their own
// link type and name, and packets must keep pointing at the right one.
func TestNgWriterAddInterface(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewNgWriter(&buf, []Interface{{Name: "first", Link: packet.LinkEthernet}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(0, 1e9, []byte{1, 2, 3}, 3, ""); err != nil {
		t.Fatal(err)
	}
	idx, err := w.AddInterface(Interface{Name: "DMZ", Link: packet.LinkRaw})
	if err != nil || idx != 1 {
		t.Fatalf("AddInterface = %d, %v; want 1, nil", idx, err)
	}
	if err := w.WritePacket(idx, 2e9, []byte{0x45, 0}, 2, "handshake_not_completed"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		iface   int
		link    packet.LinkType
		name    string
		comment string
	}{{0, packet.LinkEthernet, "first", ""}, {1, packet.LinkRaw, "DMZ", "handshake_not_completed"}}
	for i, w := range want {
		p, err := r.Next()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		ifs := r.Interfaces()
		if p.Iface != w.iface || p.Link != w.link || ifs[p.Iface].Name != w.name || string(p.Comment) != w.comment {
			t.Errorf("packet %d: iface %d link %d name %q comment %q; want %+v", i, p.Iface, p.Link, ifs[p.Iface].Name, p.Comment, w)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last packet: %v, want EOF", err)
	}
}
