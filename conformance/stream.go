package conformance

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"keepstate/capture"
	"keepstate/packet"
)

// Side is the port a frame enters the bridge on.
type Side uint8

const (
	ClientSide Side = iota // the sender of a connection's first packet
	ServerSide
)

func (s Side) String() string {
	if s == ClientSide {
		return "client"
	}
	return "server"
}

// Frame is one TCP packet of a capture as both sides replay it.
type Frame struct {
	Record int   // 1-based number of the packet in the capture
	Offset int64 // byte offset of its record in the (decompressed) capture
	Time   int64 // capture timestamp, Unix ns
	Side   Side
	Tag    uint32 // in the IPv4 identification or the IPv6 flow label
	Data   []byte // untagged Ethernet frame
	Padded bool   // the capture cut the payload; zeros stand in for it
}

// Stream is the comparable part of one capture.
type Stream struct {
	Path    string
	Records int // packets in the capture
	TCP     int // of which TCP over IP
	Frames  []Frame
	// Skipped counts TCP packets left out, by cause.
	Skipped map[string]int
	// ReadErr is where the capture stopped being readable, if it did; the frames
	// before it are compared.
	ReadErr error
}

// Skip causes.
const (
	SkipFragment  = "fragment"
	SkipCutHeader = "headers cut by the snapshot length"
	SkipTooLong   = "longer than an IP packet can be"
)

// The bridge learns these on their ports; the stream's frames carry them.
var (
	clientMAC = [6]byte{0x02, 0x6b, 0x73, 0x63, 0x00, 0x01}
	serverMAC = [6]byte{0x02, 0x6b, 0x73, 0x63, 0x00, 0x02}
)

// tagBits is how many bits of a tag fit both the IPv4 identification and the IPv6
// flow label. Tags repeat every 65536 frames; the kernel side never has that many
// in flight.
const tagBits = 16

// ReadStream reads the capture at path and prepares its TCP packets.
func ReadStream(path string) (*Stream, error) {
	rd, err := capture.Open(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	s := &Stream{Path: path, Skipped: map[string]int{}}
	sides := map[connKey]netip.AddrPort{}
	var p packet.Parsed
	for {
		pkt, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.ReadErr = err
			}
			return s, nil
		}
		s.Records++
		f, why := frameOf(&p, &pkt)
		if f == nil {
			if why != "" {
				s.TCP++
				s.Skipped[why]++
			}
			continue
		}
		s.TCP++
		f.Record, f.Offset, f.Time = s.Records, pkt.Offset, pkt.Time
		src := netip.AddrPortFrom(p.Src, p.SrcPort)
		k := keyOf(&p)
		client, seen := sides[k]
		if !seen {
			client = src
			sides[k] = src
		}
		if src != client {
			f.Side = ServerSide
		}
		f.Tag = uint32(len(s.Frames)) & (1<<tagBits - 1)
		setTag(f.Data[14:], f.Tag)
		if f.Side == ClientSide {
			copy(f.Data[0:6], serverMAC[:])
			copy(f.Data[6:12], clientMAC[:])
		} else {
			copy(f.Data[0:6], clientMAC[:])
			copy(f.Data[6:12], serverMAC[:])
		}
		s.Frames = append(s.Frames, *f)
	}
}

// connKey names a connection whichever way round its packet goes.
type connKey struct {
	a, b netip.AddrPort
}

func keyOf(p *packet.Parsed) connKey {
	a, b := netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort)
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return connKey{a, b}
}

// frameOf re-frames a captured TCP packet as an Ethernet frame whose MAC addresses
// and tag are filled in later. It returns nil and a skip cause for a TCP packet
// that cannot be replayed, and nil and "" for anything that is not TCP.
func frameOf(p *packet.Parsed, pkt *capture.Packet) (*Frame, string) {
	err := p.DecodeWire(pkt.Data, pkt.Link, pkt.OrigLen)
	if p.IPVersion == 0 || p.Proto != packet.ProtoTCP {
		return nil, ""
	}
	if p.Frag != packet.NotFragment {
		return nil, SkipFragment
	}
	b := pkt.Data
	ipStart := p.IPOffset
	minHeader := 20
	if p.IPVersion == 6 {
		minHeader = 40
	}
	have := len(b) - ipStart
	if have < minHeader {
		return nil, SkipCutHeader
	}
	if p.IPLen > 65535 {
		return nil, SkipTooLong
	}
	cut := pkt.CaptureLen < pkt.OrigLen
	if err != nil && cut && headersCut(p, b) {
		return nil, SkipCutHeader
	}
	// A malformed packet the capture did not cut is replayed as it was: both sides
	// must refuse it. One the snapshot length cut keeps the length its header
	// states, up to what the wire carried; Ethernet padding goes.
	want := have
	if p.IPLen >= minHeader {
		if cut {
			want = min(p.IPLen, pkt.OrigLen-ipStart)
		} else {
			want = min(p.IPLen, have)
		}
	}
	data := make([]byte, 14+want)
	binary.BigEndian.PutUint16(data[12:14], etherTypeOf(p.IPVersion))
	n := copy(data[14:], b[ipStart:min(len(b), ipStart+want)])
	ip := data[14:]
	if p.IPLenFromWire {
		setIPLen(ip, p.IPVersion, want)
	}
	clearDSCP(ip)
	return &Frame{Data: data, Padded: n < want}, ""
}

// headersCut reports whether the capture ends inside the IP or TCP header.
func headersCut(p *packet.Parsed, b []byte) bool {
	if p.L4Offset == 0 || p.L4Offset+20 > len(b) {
		return true
	}
	doff := int(b[p.L4Offset+12]>>4) * 4
	return p.L4Offset+doff > len(b)
}

func etherTypeOf(version uint8) uint16 {
	if version == 6 {
		return packet.EtherTypeIPv6
	}
	return packet.EtherTypeIPv4
}

func setIPLen(ip []byte, version uint8, n int) {
	if version == 4 {
		binary.BigEndian.PutUint16(ip[2:4], uint16(n))
		return
	}
	binary.BigEndian.PutUint16(ip[4:6], uint16(n-40))
}

// clearDSCP zeroes the DSCP bits of the IPv4 TOS or IPv6 traffic class byte, keeping
// ECN. The IPv4 header checksum is recomputed by setTag.
func clearDSCP(ip []byte) {
	if ip[0]>>4 == 4 {
		ip[1] &= 0x03
		return
	}
	ip[0] &= 0xf0
	ip[1] &= 0x3f
}

// dscpOf returns the DSCP of an IP packet.
func dscpOf(ip []byte) uint8 {
	if ip[0]>>4 == 4 {
		return ip[1] >> 2
	}
	return (ip[0]&0x0f)<<2 | ip[1]>>6
}

// setTag writes tag into the IPv4 identification (and recomputes the header
// checksum) or the IPv6 flow label.
func setTag(ip []byte, tag uint32) {
	if ip[0]>>4 == 4 {
		binary.BigEndian.PutUint16(ip[4:6], uint16(tag))
		ihl := int(ip[0]&0x0f) * 4
		ihl = max(20, min(ihl, len(ip)))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:12], packet.Checksum(ip[:ihl]))
		return
	}
	ip[1] = ip[1]&0xf0 | byte(tag>>16)&0x0f
	binary.BigEndian.PutUint16(ip[2:4], uint16(tag))
}

// tagOf reads the tag of an IP packet.
func tagOf(ip []byte) uint32 {
	if ip[0]>>4 == 4 {
		return uint32(binary.BigEndian.Uint16(ip[4:6]))
	}
	return (uint32(ip[1]&0x0f)<<16 | uint32(binary.BigEndian.Uint16(ip[2:4]))) & (1<<tagBits - 1)
}

// Describe is a one-line summary of frame f, as tcpdump would print it.
func (f *Frame) Describe() string {
	var p packet.Parsed
	if err := p.Decode(f.Data, packet.LinkEthernet); err != nil && p.Proto != packet.ProtoTCP {
		return fmt.Sprintf("%d bytes, %v", len(f.Data)-14, err)
	}
	s := fmt.Sprintf("%v > %v [%s] seq %d", netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort), flagWord(p.TCPFlags), p.Seq)
	if p.TCPFlags&packet.ACK != 0 {
		s += fmt.Sprintf(" ack %d", p.Ack)
	}
	s += fmt.Sprintf(" win %d len %d", p.Window, p.PayloadLen)
	if f.Padded {
		s += " (payload cut in the capture)"
	}
	return s
}

func flagWord(f packet.TCPFlags) string {
	const names = "FSRPAUEC"
	var b []byte
	for i := range 8 {
		if f&(1<<i) != 0 {
			b = append(b, names[i])
		}
	}
	if len(b) == 0 {
		return "none"
	}
	return string(b)
}
