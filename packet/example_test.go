package packet_test

import (
	"fmt"
	"net/netip"

	"keepstate/packet"
)

func Example() {
	// Build an Ethernet frame with a VLAN tag holding a TCP SYN...
	syn := packet.AppendTCP(nil, packet.TCPSpec{
		Src:     netip.MustParseAddrPort("192.0.2.10:40000"),
		Dst:     netip.MustParseAddrPort("198.51.100.5:1521"),
		Seq:     1,
		Flags:   packet.SYN,
		Window:  64240,
		Options: packet.TCPOptions{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7},
	})
	frame := packet.AppendEthernet(nil, [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}, []uint16{30}, syn)

	// ...and decode it into a reusable Parsed.
	var p packet.Parsed
	if err := p.Decode(frame, packet.LinkEthernet); err != nil {
		fmt.Println("decode:", err)
		return
	}
	fmt.Println(p.Proto, p.Src, p.SrcPort, "->", p.Dst, p.DstPort, "vlan", p.VLAN)
	fmt.Println("mss", p.TCPOpts.MSS, "wscale", p.TCPOpts.WScale, "checksums", p.VerifyChecksums(frame))

	// A frame that is not IP is reported as unsupported, not malformed.
	arp := packet.AppendEthernetType(nil, [6]byte{}, [6]byte{}, nil, packet.EtherTypeARP, make([]byte, 28))
	err := p.Decode(arp, packet.LinkEthernet)
	fmt.Println(err, err.(packet.Error).Unsupported())
	// Output:
	// TCP 192.0.2.10 40000 -> 198.51.100.5 1521 vlan 30
	// mss 1460 wscale 7 checksums <nil>
	// packet: unsupported link payload (not IPv4 or IPv6) true
}
