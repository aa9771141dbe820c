//go:build linux

package ebpf

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"keepstate/packet"
	"keepstate/synth"
)

// FuzzProgram feeds arbitrary packets to the program and the engine after a
// connection was handed over in a state the fuzzer chooses (its window, the data
// each side sent before, whether SACK and window scaling were offered): the
// fast path must never accept what the engine drops, and must leave the engine
// deciding exactly as before whatever it gives up.
func FuzzProgram(f *testing.F) {
	c := synth.NewConv(netip.MustParseAddrPort("10.1.0.2:40000"), netip.MustParseAddrPort("10.2.0.2:443"), 1)
	f.Add(uint16(502), uint16(100), uint16(0), c.Segment(synth.FromClient, packet.ACK, 10))
	f.Add(uint16(0), uint16(0), uint16(1400), c.Segment(synth.FromServer, packet.ACK|packet.PSH, 1000))
	f.Add(uint16(65535), uint16(1), uint16(1), c.Segment(synth.FromServer, packet.FIN|packet.ACK, 0))
	f.Fuzz(func(t *testing.T, window, clientData, serverData uint16, ip []byte) {
		pr := newPair(t)
		seed := binary.LittleEndian.Uint32(append(append([]byte(nil), ip...), 0, 0, 0, 0))
		conv := synth.NewConv(netip.MustParseAddrPort("10.1.0.2:40000"), netip.MustParseAddrPort("10.2.0.2:443"), seed)
		conv.Window = window
		pr.feed(conv.Segment(synth.FromClient, packet.SYN, 0))
		pr.feed(conv.Segment(synth.FromServer, packet.SYN|packet.ACK, 0))
		pr.feed(conv.Segment(synth.FromClient, packet.ACK, 0))
		pr.feed(conv.Segment(synth.FromClient, packet.ACK|packet.PSH, int(clientData%3000)))
		pr.feed(conv.Segment(synth.FromServer, packet.ACK|packet.PSH, int(serverData%3000)))
		pr.feed(ip)
		pr.feed(conv.Segment(synth.FromClient, packet.ACK, 0))
	})
}
