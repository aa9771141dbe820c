package nfqueue

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"
)

// kernelPacketMsg builds an NFQNL_MSG_PACKET datagram the way the kernel does
// (nfqnl_build_packet_message): nlmsghdr, nfgenmsg, then attributes.
func kernelPacketMsg(id uint32, hook uint8, inDev, outDev uint32, payload []byte, capLen uint32, skbInfo uint32) []byte {
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	var attrs []byte
	hdr := append(be32(id), 0x08, 0x00, hook) // id, hw_protocol 0x0800, hook
	attrs = appendAttr(attrs, attrPacketHdr, hdr)
	attrs = appendAttr(attrs, 3, be32(0)) // NFQA_MARK, ignored
	if inDev != 0 {
		attrs = appendAttr(attrs, attrIfInDev, be32(inDev))
	}
	if outDev != 0 {
		attrs = appendAttr(attrs, attrIfOutDev, be32(outDev))
	}
	if skbInfo != 0 {
		attrs = appendAttr(attrs, attrSkbInfo, be32(skbInfo))
	}
	if capLen != 0 {
		attrs = appendAttr(attrs, attrCapLen, be32(capLen))
	}
	attrs = appendAttr(attrs, attrPayload, payload)
	var b []byte
	b = appendHeader(b, msgPacket, 0, 0, 0, len(attrs))
	b[16] = 2 // AF_INET in nfgenmsg, as the kernel sends it
	return append(b, attrs...)
}

func TestParsePacket(t *testing.T) {
	payload := []byte{0x45, 0, 0, 20, 1, 2, 3} // odd length: padded attribute
	d := kernelPacketMsg(0x01020304, 2, 7, 9, payload, 65000, skbInfoGSO)
	m, rest, ok, err := nextMsg(d)
	if !ok || err != nil || rest != nil || m.Type != msgPacket {
		t.Fatalf("nextMsg = %+v rest %d ok %v err %v", m, len(rest), ok, err)
	}
	var pm packetMsg
	if err := parsePacket(m.Body, &pm); err != nil {
		t.Fatal(err)
	}
	want := packetMsg{ID: 0x01020304, Hook: 2, HasID: true, InDev: 7, OutDev: 9, Payload: payload, CapLen: 65000, GSO: true}
	if pm.ID != want.ID || pm.Hook != want.Hook || !pm.HasID || pm.InDev != 7 || pm.OutDev != 9 ||
		!bytes.Equal(pm.Payload, payload) || pm.CapLen != 65000 || !pm.GSO {
		t.Errorf("parsed %+v, want %+v", pm, want)
	}
	// The payload aliases the buffer: no copy.
	if &pm.Payload[0] != &m.Body[len(m.Body)-8] {
		t.Errorf("payload does not alias the receive buffer")
	}
}

func TestParsePacketErrors(t *testing.T) {
	withID := appendAttr(make([]byte, nfgenLen), attrPacketHdr, []byte{0, 0, 0, 9, 8, 0, 1})
	overlong := append(append([]byte{}, withID...), 100, 0, attrPayload, 0, 1, 2, 3, 4) // nla_len 100, 4 bytes follow
	noHdr := appendAttr(make([]byte, nfgenLen), attrPayload, []byte{1, 2, 3, 4})
	tests := []struct {
		name  string
		body  []byte
		hasID bool
	}{
		{"empty", nil, false},
		{"nfgenmsg only", make([]byte, nfgenLen), false},
		{"no packet header", noHdr, false},
		{"attribute longer than message", overlong, true},
		{"short packet header", appendAttr(make([]byte, nfgenLen), attrPacketHdr, []byte{0, 0, 0, 1}), false},
		{"short ifindex after id", appendAttr(append([]byte{}, withID...), attrIfInDev, []byte{1}), true},
	}
	for _, tc := range tests {
		var pm packetMsg
		err := parsePacket(tc.body, &pm)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
		}
		if pm.HasID != tc.hasID {
			t.Errorf("%s: HasID = %v, want %v", tc.name, pm.HasID, tc.hasID)
		}
	}
}

func TestNextMsgSplitsDatagram(t *testing.T) {
	a := appendVerdict(nil, 1, 10, nfDrop, false)
	b := appendVerdict(nil, 1, 11, nfAccept, true)
	d := append(append([]byte{}, a...), b...)
	var types []uint16
	for {
		m, rest, ok, err := nextMsg(d)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		types = append(types, m.Type)
		d = rest
	}
	if len(types) != 2 || types[0] != msgVerdict || types[1] != msgVerdictBatch {
		t.Errorf("types = %#x", types)
	}
	if _, _, ok, err := nextMsg([]byte{1, 2, 3}); ok || err == nil {
		t.Errorf("short datagram: ok %v err %v", ok, err)
	}
	bad := append([]byte{}, a...)
	ne.PutUint32(bad, 200) // longer than the datagram
	if _, _, ok, err := nextMsg(bad); ok || err == nil {
		t.Errorf("overlong message: ok %v err %v", ok, err)
	}
}

// The exact bytes of the messages keepstate sends, checked against the layouts of
// include/uapi/linux/netlink.h and netfilter/nfnetlink_queue.h (host order here is
// little-endian; the test is skipped elsewhere).
func TestMessageBytes(t *testing.T) {
	if ne.Uint16([]byte{1, 0}) != 1 {
		t.Skip("golden bytes are little-endian")
	}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"drop verdict", appendVerdict(nil, 3, 0x0a0b0c0d, nfDrop, false),
			"20000000" + "0103" + "0100" + "00000000" + "00000000" + // len 32, type 0x0301, flags REQUEST, seq, pid
				"00000003" + // AF_UNSPEC, version 0, res_id 3
				"0c000200" + "00000000" + "0a0b0c0d"}, // NFQA_VERDICT_HDR: NF_DROP, id
		{"batch accept", appendVerdict(nil, 0, 7, nfAccept, true),
			"20000000" + "0303" + "0100" + "00000000" + "00000000" + "00000000" +
				"0c000200" + "00000001" + "00000007"},
		{"bind", appendBind(nil, 2, 1),
			"1c000000" + "0203" + "0500" + "01000000" + "00000000" + "00000002" + // REQUEST|ACK, seq 1
				"08000100" + "01000000"}, // NFQA_CFG_CMD: BIND
		{"params", appendParams(nil, 2, 2, queueConfig{CopyRange: 2048, MaxLen: 4096, Flags: cfgFlagGSO | cfgFlagFailOpen}),
			"38000000" + "0203" + "0500" + "02000000" + "00000000" + "00000002" +
				"09000200" + "00000800" + "02000000" + // NFQA_CFG_PARAMS: range 2048, COPY_PACKET, padded
				"08000300" + "00001000" + // NFQA_CFG_QUEUE_MAXLEN 4096
				"08000400" + "00000005" + // NFQA_CFG_MASK: FAIL_OPEN|GSO
				"08000500" + "00000005"}, // NFQA_CFG_FLAGS
	}
	for _, tc := range tests {
		if got := hex.EncodeToString(tc.got); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	if n := len(appendVerdict(nil, 0, 1, nfDrop, false)); n != verdictMsgLen {
		t.Errorf("verdict message is %d bytes, verdictMsgLen %d", n, verdictMsgLen)
	}
}

func TestErrorCode(t *testing.T) {
	body := make([]byte, 20)
	ne.PutUint32(body, uint32(0xfffffffe)) // -ENOENT
	if c, ok := errorCode(body); !ok || c != -2 {
		t.Errorf("errorCode = %d, %v", c, ok)
	}
	if _, ok := errorCode(body[:3]); ok {
		t.Error("short error message accepted")
	}
}

func FuzzParseDatagram(f *testing.F) {
	f.Add(kernelPacketMsg(1, 2, 3, 4, []byte{0x45, 0, 0, 40}, 0, skbInfoGSO))
	f.Add(append(appendVerdict(nil, 1, 2, nfDrop, false), appendBind(nil, 1, 1)...))
	f.Add([]byte{})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, d []byte) {
		for i := 0; i < 64; i++ {
			m, rest, ok, _ := nextMsg(d)
			if !ok {
				return
			}
			if len(m.Body) > len(d) {
				t.Fatalf("body longer than datagram")
			}
			var pm packetMsg
			if err := parsePacket(m.Body, &pm); err == nil && !pm.HasID {
				t.Fatalf("parsed without a packet id")
			}
			errorCode(m.Body)
			d = rest
		}
	})
}
