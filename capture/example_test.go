package capture_test

import (
	"bytes"
	"fmt"
	"io"

	"keepstate/capture"
	"keepstate/packet"
)

// Write two dropped packets with their reasons, then read them back.
func Example() {
	var file bytes.Buffer
	w, err := capture.NewNgWriter(&file, []capture.Interface{{Name: "eth0", Link: packet.LinkEthernet}})
	if err != nil {
		panic(err)
	}
	w.WritePacket(0, 1_700_000_000_000_000_001, []byte{0xde, 0xad}, 60, "out_of_window")
	w.WritePacket(0, 1_700_000_000_000_000_002, []byte{0xbe, 0xef}, 60, "state_expired")
	if err := w.Close(); err != nil {
		panic(err)
	}

	r, err := capture.NewReader(&file)
	if err != nil {
		panic(err)
	}
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err) // a *capture.FormatError says where the file is damaged
		}
		fmt.Printf("%d %s %x/%d %q at offset %d\n", p.Time, r.Interfaces()[p.Iface].Name, p.Data, p.OrigLen,
			p.Comment, p.Offset)
	}
	// Output:
	// 1700000000000000001 eth0 dead/60 "out_of_window" at offset 88
	// 1700000000000000002 eth0 beef/60 "state_expired" at offset 148
}
