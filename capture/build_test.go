package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
)

// Hand-built captures for tests: every byte is placed explicitly, in either byte order,
// so that the Reader is checked against the format and not against the writers.

type capBuilder struct {
	bytes.Buffer
	order interface {
		binary.ByteOrder
		binary.AppendByteOrder
	}
}

func newBuilder(bigEndian bool) *capBuilder {
	if bigEndian {
		return &capBuilder{order: binary.BigEndian}
	}
	return &capBuilder{order: binary.LittleEndian}
}

func (b *capBuilder) u16(v uint16) *capBuilder {
	b.Write(b.order.AppendUint16(nil, v))
	return b
}

func (b *capBuilder) u32(v uint32) *capBuilder {
	b.Write(b.order.AppendUint32(nil, v))
	return b
}

func (b *capBuilder) u64(v uint64) *capBuilder {
	b.Write(b.order.AppendUint64(nil, v))
	return b
}

// pcapHeader writes a pcap file header with the given magic.
func (b *capBuilder) pcapHeader(magic uint32, snap, link uint32) *capBuilder {
	return b.u32(magic).u16(2).u16(4).u32(0).u32(0).u32(snap).u32(link)
}

func (b *capBuilder) pcapRecord(sec, frac uint32, data []byte, origLen uint32) *capBuilder {
	b.u32(sec).u32(frac).u32(uint32(len(data))).u32(origLen)
	b.Write(data)
	return b
}

// opt is a pcapng option for a hand-built block.
type opt struct {
	code uint16
	val  []byte
}

func (b *capBuilder) optionBytes(opts []opt) []byte {
	if len(opts) == 0 {
		return nil
	}
	o := &capBuilder{order: b.order}
	for _, op := range opts {
		o.u16(op.code).u16(uint16(len(op.val)))
		o.Write(op.val)
		o.Write(make([]byte, pad4(len(op.val))-len(op.val)))
	}
	o.u32(0)
	return o.Bytes()
}

// ngBlock writes a block with the given body, options appended, lengths at both ends.
func (b *capBuilder) ngBlock(typ uint32, body []byte, opts ...opt) *capBuilder {
	ob := b.optionBytes(opts)
	blen := uint32(12 + len(body) + len(ob))
	b.u32(typ).u32(blen)
	b.Write(body)
	b.Write(ob)
	return b.u32(blen)
}

func (b *capBuilder) body() *capBuilder { return &capBuilder{order: b.order} }

func (b *capBuilder) shb(opts ...opt) *capBuilder {
	body := b.body().u32(byteOrderMagic).u16(1).u16(0).u64(^uint64(0))
	return b.ngBlock(blockSectionHeader, body.Bytes(), opts...)
}

func (b *capBuilder) idb(link uint16, snap uint32, opts ...opt) *capBuilder {
	return b.ngBlock(blockInterface, b.body().u16(link).u16(0).u32(snap).Bytes(), opts...)
}

func (b *capBuilder) epb(iface uint32, ts uint64, data []byte, origLen uint32, opts ...opt) *capBuilder {
	body := b.body().u32(iface).u32(uint32(ts >> 32)).u32(uint32(ts)).u32(uint32(len(data))).u32(origLen)
	body.Write(data)
	body.Write(make([]byte, pad4(len(data))-len(data)))
	return b.ngBlock(blockEnhancedPacket, body.Bytes(), opts...)
}

func (b *capBuilder) pb(iface uint16, ts uint64, data []byte, origLen uint32) *capBuilder {
	body := b.body().u16(iface).u16(0).u32(uint32(ts >> 32)).u32(uint32(ts)).u32(uint32(len(data))).u32(origLen)
	body.Write(data)
	body.Write(make([]byte, pad4(len(data))-len(data)))
	return b.ngBlock(blockPacketObsolete, body.Bytes())
}

func (b *capBuilder) spb(origLen uint32, data []byte) *capBuilder {
	body := b.body().u32(origLen)
	body.Write(data)
	body.Write(make([]byte, pad4(len(data))-len(data)))
	return b.ngBlock(blockSimplePacket, body.Bytes())
}

func u8opt(code uint16, v byte) opt    { return opt{code, []byte{v}} }
func stropt(code uint16, s string) opt { return opt{code, []byte(s)} }

func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// readAll reads every packet, copying Data and Comment, and returns the final error.
func readAll(r *Reader) ([]Packet, error) {
	var pkts []Packet
	for {
		p, err := r.Next()
		if err != nil {
			return pkts, err
		}
		p.Data = bytes.Clone(p.Data)
		p.Comment = bytes.Clone(p.Comment)
		pkts = append(pkts, p)
	}
}
