package logging

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"keepstate/packet"
	"keepstate/reason"
)

// FuzzFormats feeds arbitrary names, reasons and packet fields to every formatter:
// none may panic, every text output is exactly one line and every JSON output one
// valid object on one line.
func FuzzFormats(f *testing.F) {
	f.Add("DMZ", "Local traffic", "ESTABLISHED", uint8(4), uint8(6), uint8(0x18), uint8(0), uint8(1), []byte{10, 2, 0, 2, 10, 1, 0, 2}, int32(92), int32(52), int64(7200e9), int64(0))
	f.Add("WAN", "", "", uint8(6), uint8(58), uint8(0), uint8(2), uint8(200), bytes.Repeat([]byte{0x20, 0x01, 0x0d, 0xb8}, 8), int32(-1), int32(-7), int64(-1), int64(-1<<62))
	f.Add("a\nb\"c\xff", "r\r\x00\u2028", "\\", uint8(0), uint8(17), uint8(0xff), uint8(1), uint8(3), []byte{}, int32(0), int32(0), int64(1), int64(1<<62))
	f.Fuzz(func(t *testing.T, iface, rule, state string, ver, proto, flags, frag, why uint8, addrs []byte, ipLen, payload int32, idle, when int64) {
		p := &packet.Parsed{
			IPVersion: ver, Proto: packet.Proto(proto), TCPFlags: packet.TCPFlags(flags),
			Frag: packet.FragKind(frag % 4), IPLen: int(ipLen), PayloadLen: int(payload), Length: int(payload),
			ICMPType: flags, ICMPCode: proto, EtherType: uint16(ipLen),
		}
		if len(addrs) >= 32 {
			p.Src = netip.AddrFrom16([16]byte(addrs[:16]))
			p.Dst = netip.AddrFrom16([16]byte(addrs[16:32]))
		} else if len(addrs) >= 8 {
			p.Src = netip.AddrFrom4([4]byte(addrs[:4]))
			p.Dst = netip.AddrFrom4([4]byte(addrs[4:8]))
		}
		ev := &PacketEvent{
			Time: time.Unix(0, when), Iface: iface, Outbound: flags&1 != 0, P: p,
			Reason: reason.Reason(why), Rule: rule, Action: state, ConnState: state,
			Idle: time.Duration(idle), Timeout: time.Duration(-idle), TimeoutName: rule,
		}
		conn := &ConnEvent{
			ID: uint64(idle), Rule: rule, Service: iface, Proto: state,
			Src: netip.AddrPortFrom(p.Src, uint16(ipLen)), Dst: netip.AddrPortFrom(p.Dst, uint16(payload)),
			Start: time.Unix(0, idle), End: time.Unix(0, when),
			Bytes: [2]uint64{uint64(idle), uint64(when)}, Cause: rule,
		}
		warn := &WarningEvent{Time: ev.Time, Kind: state, Message: iface, Addr: p.Src, Limit: int(ipLen)}
		for _, text := range [][]byte{
			AppendDrop(nil, time.UTC, ev),
			AppendFilter(nil, time.UTC, ev),
			AppendConnection(nil, time.UTC, conn),
			AppendWarning(nil, time.UTC, warn),
			AppendMessage(nil, time.UTC, ev.Time, rule),
		} {
			if bytes.IndexByte(text, '\n') != len(text)-1 {
				t.Fatalf("text is not one line: %q", text)
			}
		}
		for _, js := range [][]byte{
			AppendDropJSON(nil, time.UTC, ev),
			AppendFilterJSON(nil, time.UTC, ev),
			AppendConnectionJSON(nil, time.UTC, conn),
			AppendWarningJSON(nil, time.UTC, warn),
			AppendMessageJSON(nil, time.UTC, ev.Time, "error", rule),
		} {
			if bytes.IndexByte(js, '\n') != len(js)-1 || !json.Valid(js) {
				t.Fatalf("not one valid JSON line: %q", js)
			}
		}
	})
}
