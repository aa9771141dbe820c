package nfqueue

import (
	"encoding/binary"
	"errors"
)

// The nfnetlink_queue wire format (include/uapi/linux/netfilter/nfnetlink_queue.h),
// encoded and decoded here without allocating. Netlink headers are in host byte
// order; nfqueue attribute values are big-endian.

const (
	nlmsgHdrLen = 16 // struct nlmsghdr
	nfgenLen    = 4  // struct nfgenmsg
	nlaHdrLen   = 4  // struct nlattr

	nlmsgNoop  = 1
	nlmsgError = 2
	nlmsgDone  = 3

	nlmFRequest = 0x1
	nlmFAck     = 0x4

	nfnlSubsysQueue = 3
	nfnetlinkV0     = 0

	msgPacket       = nfnlSubsysQueue << 8   // NFQNL_MSG_PACKET: kernel -> us
	msgVerdict      = nfnlSubsysQueue<<8 | 1 // NFQNL_MSG_VERDICT: one packet
	msgConfig       = nfnlSubsysQueue<<8 | 2 // NFQNL_MSG_CONFIG
	msgVerdictBatch = nfnlSubsysQueue<<8 | 3 // NFQNL_MSG_VERDICT_BATCH: every packet up to an id

	// Packet attributes (enum nfqnl_attr_type).
	attrPacketHdr  = 1
	attrVerdictHdr = 2
	attrMark       = 3
	attrIfInDev    = 5
	attrIfOutDev   = 6
	attrPayload    = 10
	attrCapLen     = 13
	attrSkbInfo    = 14

	// Config attributes (enum nfqnl_attr_config).
	attrCfgCmd         = 1
	attrCfgParams      = 2
	attrCfgQueueMaxLen = 3
	attrCfgMask        = 4
	attrCfgFlags       = 5

	cfgCmdBind = 1 // NFQNL_CFG_CMD_BIND

	copyPacket = 2 // NFQNL_COPY_PACKET

	// NFQA_CFG_F_* queue flags.
	cfgFlagFailOpen = 1 << 0 // accept instead of drop when the queue is full
	cfgFlagGSO      = 1 << 2 // queue GSO/GRO packets whole instead of segmenting them

	skbInfoGSO = 1 << 1 // NFQA_SKB_GSO: the packet is a GSO super-packet

	nfDrop   = 0
	nfAccept = 1

	nlaTypeMask = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
)

var ne = binary.NativeEndian

func nlAlign(n int) int { return (n + 3) &^ 3 }

// packetMsg is what keepstate uses of one NFQNL_MSG_PACKET. Payload aliases the
// receive buffer.
type packetMsg struct {
	ID      uint32
	Hook    uint8
	HasID   bool
	InDev   uint32 // ingress ifindex; 0 when none (locally generated)
	OutDev  uint32
	Mark    uint32 // the skb mark; 0 when none
	Payload []byte // raw IP packet, cut to the copy range
	CapLen  uint32 // original length when Payload was cut; 0 when whole
	GSO     bool   // a GSO/GRO super-packet, given whole
}

var (
	errShortMsg   = errors.New("nfqueue: netlink message too short")
	errBadAttr    = errors.New("nfqueue: malformed netlink attribute")
	errNoPacketID = errors.New("nfqueue: packet message without packet header")
)

// parsePacket decodes the body of an NFQNL_MSG_PACKET (after the nlmsghdr). When
// an error is returned HasID still says whether the packet id was read, so the
// packet can be dropped rather than left in the queue.
func parsePacket(body []byte, m *packetMsg) error {
	*m = packetMsg{}
	if len(body) < nfgenLen {
		return errShortMsg
	}
	b := body[nfgenLen:]
	for len(b) >= nlaHdrLen {
		alen := int(ne.Uint16(b[0:2]))
		typ := ne.Uint16(b[2:4]) & nlaTypeMask
		if alen < nlaHdrLen || alen > len(b) {
			return errBadAttr
		}
		v := b[nlaHdrLen:alen]
		switch typ {
		case attrPacketHdr: // struct nfqnl_msg_packet_hdr: be32 id, be16 hw_protocol, u8 hook
			if len(v) < 7 {
				return errBadAttr
			}
			m.ID = binary.BigEndian.Uint32(v[0:4])
			m.Hook = v[6]
			m.HasID = true
		case attrIfInDev:
			if len(v) < 4 {
				return errBadAttr
			}
			m.InDev = binary.BigEndian.Uint32(v)
		case attrIfOutDev:
			if len(v) < 4 {
				return errBadAttr
			}
			m.OutDev = binary.BigEndian.Uint32(v)
		case attrMark:
			if len(v) < 4 {
				return errBadAttr
			}
			m.Mark = binary.BigEndian.Uint32(v)
		case attrPayload:
			m.Payload = v
		case attrCapLen:
			if len(v) < 4 {
				return errBadAttr
			}
			m.CapLen = binary.BigEndian.Uint32(v)
		case attrSkbInfo:
			if len(v) < 4 {
				return errBadAttr
			}
			m.GSO = binary.BigEndian.Uint32(v)&skbInfoGSO != 0
		}
		n := nlAlign(alen)
		if n >= len(b) {
			break
		}
		b = b[n:]
	}
	if !m.HasID {
		return errNoPacketID
	}
	return nil
}

// nlMsg is one netlink message inside a received datagram.
type nlMsg struct {
	Type  uint16
	Flags uint16
	Seq   uint32
	Body  []byte // after the nlmsghdr
}

// nextMsg splits the first netlink message off datagram d and returns the rest.
// ok is false when d holds no complete message; err reports a malformed header.
func nextMsg(d []byte) (m nlMsg, rest []byte, ok bool, err error) {
	if len(d) < nlmsgHdrLen {
		if len(d) > 0 {
			err = errShortMsg
		}
		return m, nil, false, err
	}
	l := int(ne.Uint32(d[0:4]))
	if l < nlmsgHdrLen || l > len(d) {
		return m, nil, false, errShortMsg
	}
	m = nlMsg{Type: ne.Uint16(d[4:6]), Flags: ne.Uint16(d[6:8]), Seq: ne.Uint32(d[8:12]), Body: d[nlmsgHdrLen:l]}
	if n := nlAlign(l); n < len(d) {
		rest = d[n:]
	}
	return m, rest, true, nil
}

// errorCode returns the errno of an NLMSG_ERROR body (0 for an acknowledgement).
func errorCode(body []byte) (int32, bool) {
	if len(body) < 4 {
		return 0, false
	}
	return int32(ne.Uint32(body[0:4])), true
}

// appendHeader appends an nlmsghdr and nfgenmsg for a message of attrLen attribute
// bytes addressed to queue (res_id).
func appendHeader(b []byte, typ, flags uint16, seq uint32, queue uint16, attrLen int) []byte {
	var h [nlmsgHdrLen + nfgenLen]byte
	ne.PutUint32(h[0:], uint32(nlmsgHdrLen+nfgenLen+attrLen))
	ne.PutUint16(h[4:], typ)
	ne.PutUint16(h[6:], flags)
	ne.PutUint32(h[8:], seq)
	// h[12:16] pid 0: to the kernel
	h[16] = 0 // AF_UNSPEC: nfqueue takes the family from the queue
	h[17] = nfnetlinkV0
	binary.BigEndian.PutUint16(h[18:], queue)
	return append(b, h[:]...)
}

func appendAttr(b []byte, typ uint16, v []byte) []byte {
	var h [nlaHdrLen]byte
	ne.PutUint16(h[0:], uint16(nlaHdrLen+len(v)))
	ne.PutUint16(h[2:], typ)
	b = append(b, h[:]...)
	b = append(b, v...)
	for i := len(v); i%4 != 0; i++ {
		b = append(b, 0)
	}
	return b
}

// verdictMsgLen is the size of one verdict message: header, nfgenmsg and the
// NFQA_VERDICT_HDR attribute (be32 verdict, be32 id).
const verdictMsgLen = nlmsgHdrLen + nfgenLen + nlaHdrLen + 8

// appendVerdict appends a verdict for packet id, or with batch for every packet of
// the queue up to and including id. No acknowledgement is asked for: the kernel
// answers only failures, which the reader counts.
func appendVerdict(b []byte, queue uint16, id uint32, verdict uint32, batch bool) []byte {
	typ := uint16(msgVerdict)
	if batch {
		typ = msgVerdictBatch
	}
	b = appendHeader(b, typ, nlmFRequest, 0, queue, nlaHdrLen+8)
	var v [8]byte
	binary.BigEndian.PutUint32(v[0:], verdict)
	binary.BigEndian.PutUint32(v[4:], id)
	return appendAttr(b, attrVerdictHdr, v[:])
}

// queueConfig is how a queue is set up.
type queueConfig struct {
	CopyRange uint32
	MaxLen    uint32
	Flags     uint32 // NFQA_CFG_F_*; every flag keepstate knows is set or cleared
}

// appendBind appends the command binding this socket to queue.
func appendBind(b []byte, queue uint16, seq uint32) []byte {
	cmd := []byte{cfgCmdBind, 0, 0, 0} // command, pad, be16 pf (unused since Linux 3.8)
	b = appendHeader(b, msgConfig, nlmFRequest|nlmFAck, seq, queue, nlaHdrLen+len(cmd))
	return appendAttr(b, attrCfgCmd, cmd)
}

// appendParams appends the copy mode, queue length and flags of queue.
func appendParams(b []byte, queue uint16, seq uint32, c queueConfig) []byte {
	params := make([]byte, 5) // struct nfqnl_msg_config_params: be32 copy_range, u8 copy_mode (packed)
	binary.BigEndian.PutUint32(params, c.CopyRange)
	params[4] = copyPacket
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	var attrs []byte
	attrs = appendAttr(attrs, attrCfgParams, params)
	attrs = appendAttr(attrs, attrCfgQueueMaxLen, be32(c.MaxLen))
	attrs = appendAttr(attrs, attrCfgMask, be32(cfgFlagFailOpen|cfgFlagGSO))
	attrs = appendAttr(attrs, attrCfgFlags, be32(c.Flags))
	b = appendHeader(b, msgConfig, nlmFRequest|nlmFAck, seq, queue, len(attrs))
	return append(b, attrs...)
}
