package conntrack

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
)

// Snapshot format, version 1. Little endian throughout.
//
//	header    "KSCT" magic, uint16 version, uint16 reserved (0)
//	records   each a type byte and a fixed-size body:
//	  1 entry       key (37) sf (1) dflags (2) tcp end/maxend/maxwin x 2 (24)
//	                rule (4) meta flags (1) age (8) idle (8) packets x 2 (16) bytes x 2 (16)
//	  2 tombstone   key (37) state (1) cause (1) idle (8) ended-ago (8) timeout (8) id (8)
//	  0 end         entry count (8) tombstone count (8) CRC-32 IEEE of all bytes before it (4)
//
// Times are stored as ages relative to the snapshot's now (age = now - created,
// idle = now - last seen) and rebased onto the reader's now, so a restored
// connection has exactly the time left that it had when it was saved. Connection
// ids are not kept: restored connections get fresh ones.
const (
	snapMagic   = "KSCT"
	snapVersion = 1
	recEnd      = 0
	recEntry    = 1
	recTomb     = 2
	entryRecLen = 37 + 1 + 2 + 24 + 4 + 1 + 8 + 8 + 16 + 16
	tombRecLen  = 37 + 1 + 1 + 8 + 8 + 8 + 8
	endRecLen   = 8 + 8 + 4
)

// Snapshot errors; ReadSnapshot wraps them with detail.
var (
	ErrSnapshotMagic     = errors.New("conntrack snapshot: bad magic (not a keepstate connection snapshot)")
	ErrSnapshotVersion   = errors.New("conntrack snapshot: unsupported version")
	ErrSnapshotTruncated = errors.New("conntrack snapshot: truncated")
	ErrSnapshotCorrupt   = errors.New("conntrack snapshot: corrupt")
)

// snapshotHold bounds the work WriteSnapshot does per hold of a shard's lock:
// snapshotHold blocks of entries (1024 connections, some tens of µs), or as many
// tombstone slots, so that the packets of that shard wait no longer than that.
var snapshotHold = 64 // a variable for BenchmarkTrackDuringSnapshot's comparison

// WriteSnapshot writes every connection and tombstone. It walks each shard a few
// blocks of entries at a time, each under the shard's lock for some tens of µs,
// so the table keeps working meanwhile: the snapshot is consistent per
// connection, not across the whole table (a connection that lives through the
// walk is written once; one created or ended meanwhile may or may not be).
func (t *Table) WriteSnapshot(w io.Writer, now int64) error {
	crc := crc32.NewIEEE()
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 64<<10)
	hdr := append([]byte(snapMagic), 0, 0, 0, 0)
	binary.LittleEndian.PutUint16(hdr[4:], snapVersion)
	if _, err := bw.Write(hdr); err != nil {
		return err
	}
	var entries, tombs uint64
	var buf []byte
	s := t.cfg.Load()
	for _, sh := range t.shards {
		for from := 0; ; from += snapshotHold {
			buf = buf[:0]
			sh.mu.Lock()
			if from >= len(sh.blocks) {
				sh.mu.Unlock()
				break
			}
			for _, first := range sh.blocks[from:min(from+snapshotHold, len(sh.blocks))] {
				for i := first; i < first+blockLen; i++ {
					// Free and never used entries are zero: state NONE.
					if e := sh.at(i); e.state() != StateNone {
						t.refreshLocked(sh, i, s) // a connection the fast path holds: its windows, last-seen time and counters
						buf = appendEntryLocked(buf, sh, e, now)
						entries++
					}
				}
			}
			sh.mu.Unlock()
			if _, err := bw.Write(buf); err != nil {
				return err
			}
		}
		for from := 0; ; from += snapshotHold * blockLen {
			buf = buf[:0]
			sh.mu.Lock()
			if from >= len(sh.tombs.slots) {
				sh.mu.Unlock()
				break
			}
			for n := from; n < min(from+snapshotHold*blockLen, len(sh.tombs.slots)); n++ {
				if tb := &sh.tombs.slots[n]; sh.tombs.tags[n] != 0 {
					buf = appendTomb(buf, tb, now)
					tombs++
				}
			}
			sh.mu.Unlock()
			if _, err := bw.Write(buf); err != nil {
				return err
			}
		}
	}
	end := []byte{recEnd}
	end = binary.LittleEndian.AppendUint64(end, entries)
	end = binary.LittleEndian.AppendUint64(end, tombs)
	if _, err := bw.Write(end); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
	return err
}

func appendEntryLocked(b []byte, sh *shard, e *entry, now int64) []byte {
	le := binary.LittleEndian
	b = append(b, recEntry)
	b = appendKey(b, &e.key)
	b = append(b, e.sf, e.dflags[0], e.dflags[1])
	for d := range e.tcp {
		b = le.AppendUint32(b, e.tcp[d].end)
		b = le.AppendUint32(b, e.tcp[d].maxend)
		b = le.AppendUint32(b, e.tcp[d].maxwin)
	}
	m := sh.metas[e.metaIndex()]
	b = le.AppendUint32(b, m.Rule)
	b = append(b, m.Flags)
	b = le.AppendUint64(b, uint64(now-int64(e.created)*1e9))
	b = le.AppendUint64(b, uint64(now-e.lastSeen))
	for d := range Dir(2) {
		b = le.AppendUint64(b, e.packets(d))
	}
	for d := range Dir(2) {
		b = le.AppendUint64(b, e.bytes(d))
	}
	return b
}

func appendTomb(b []byte, tb *tombstone, now int64) []byte {
	le := binary.LittleEndian
	b = append(b, recTomb)
	b = appendKey(b, &tb.key)
	b = append(b, uint8(tb.state), uint8(tb.cause))
	b = le.AppendUint64(b, uint64(now-tb.lastSeen))
	b = le.AppendUint64(b, uint64(now-tb.endedAt))
	b = le.AppendUint64(b, uint64(tb.timeout()))
	b = le.AppendUint64(b, tb.connID()) // its list and Meta index mean nothing elsewhere
	return b
}

func appendKey(b []byte, k *Key) []byte {
	b = append(b, k.Src[:]...)
	b = append(b, k.Dst[:]...)
	b = append(b, k.SrcPort[:]...)
	b = append(b, k.DstPort[:]...)
	return append(b, k.Proto)
}

func readKey(b []byte) Key {
	var k Key
	copy(k.Src[:], b[0:16])
	copy(k.Dst[:], b[16:32])
	copy(k.SrcPort[:], b[32:34])
	copy(k.DstPort[:], b[34:36])
	k.Proto = b[36]
	return k
}

// snapEntry is a decoded entry record, staged until the whole snapshot verified.
type snapEntry struct {
	e      entry
	meta   Meta
	age    int64
	idle   int64
	counts [2][2]uint64 // packets, bytes per direction
}

// ReadSnapshot adds the connections and tombstones of a snapshot written by
// WriteSnapshot, with their times rebased onto now. Nothing is added unless the
// whole snapshot is valid. Connections already in the table are kept as they are;
// restored ones count against the per-source limits but not against MaxConns, which
// applies to new connections.
func (t *Table) ReadSnapshot(r io.Reader, now int64) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	entries, tombs, err := parseSnapshot(data)
	if err != nil {
		return err
	}
	s := t.cfg.Load()
	// The class lists must be in last-seen order (see sliceShiftFor): oldest first.
	slices.SortStableFunc(entries, func(a, b snapEntry) int { return cmp.Compare(b.idle, a.idle) })
	merging := t.Len() > 0
	for n := range entries {
		t.restoreEntry(s, &entries[n], now)
	}
	if merging && len(entries) > 0 {
		// Restored connections went to the lists' tails, behind connections
		// that may have been seen after them: put every list back in order.
		for _, sh := range t.shards {
			sh.mu.Lock()
			sh.sortListsLocked()
			sh.mu.Unlock()
		}
	}
	for n := range tombs {
		tb := tombs[n]
		tb.lastSeen, tb.endedAt = now-tb.lastSeen, now-tb.endedAt // stored as ages
		h := tb.key.hash(&t.seed)
		sh := t.shardOf(h)
		sh.mu.Lock()
		if s.tombCap > 0 {
			sh.tombs.insert(s, len(t.shards), &tb.key, h, tb)
		}
		sh.mu.Unlock()
	}
	return nil
}

func parseSnapshot(data []byte) ([]snapEntry, []tombstone, error) {
	le := binary.LittleEndian
	if m := data[:min(len(data), 4)]; string(m) != snapMagic[:len(m)] {
		return nil, nil, fmt.Errorf("%w: starts with %q", ErrSnapshotMagic, m)
	}
	if len(data) < 8 {
		return nil, nil, fmt.Errorf("%w: %d bytes, the header needs 8", ErrSnapshotTruncated, len(data))
	}
	if v := le.Uint16(data[4:]); v != snapVersion {
		return nil, nil, fmt.Errorf("%w: version %d, this keepstate reads version %d", ErrSnapshotVersion, v, snapVersion)
	}
	var entries []snapEntry
	var tombs []tombstone
	off := 8
	for {
		if off >= len(data) {
			return nil, nil, fmt.Errorf("%w: no end record after %d entries", ErrSnapshotTruncated, len(entries))
		}
		typ := data[off]
		off++
		var n int
		switch typ {
		case recEnd:
			n = endRecLen
		case recEntry:
			n = entryRecLen
		case recTomb:
			n = tombRecLen
		default:
			return nil, nil, fmt.Errorf("%w: unknown record type %d at offset %d", ErrSnapshotCorrupt, typ, off-1)
		}
		if len(data)-off < n {
			return nil, nil, fmt.Errorf("%w: record at offset %d needs %d bytes, %d left", ErrSnapshotTruncated, off-1, n, len(data)-off)
		}
		b := data[off : off+n]
		switch typ {
		case recEnd:
			if le.Uint64(b) != uint64(len(entries)) || le.Uint64(b[8:]) != uint64(len(tombs)) {
				return nil, nil, fmt.Errorf("%w: end record counts %d/%d, read %d/%d", ErrSnapshotCorrupt,
					le.Uint64(b), le.Uint64(b[8:]), len(entries), len(tombs))
			}
			if sum, want := crc32.ChecksumIEEE(data[:off+16]), le.Uint32(b[16:]); sum != want {
				return nil, nil, fmt.Errorf("%w: checksum %08x, computed %08x", ErrSnapshotCorrupt, want, sum)
			}
			if off+n != len(data) {
				return nil, nil, fmt.Errorf("%w: %d bytes after the end record", ErrSnapshotCorrupt, len(data)-off-n)
			}
			return entries, tombs, nil
		case recEntry:
			se, err := decodeEntry(b)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: entry at offset %d: %v", ErrSnapshotCorrupt, off-1, err)
			}
			entries = append(entries, se)
		case recTomb:
			// The stored timeout (b[55:63]) is endedAt-lastSeen for timed-out
			// connections and 0 otherwise; it is derived again, not read.
			tb := tombstone{key: readKey(b), state: State(b[37]), cause: EndCause(b[38]),
				lastSeen: int64(le.Uint64(b[39:])), endedAt: int64(le.Uint64(b[47:])), id: le.Uint64(b[63:])}
			if tb.state >= numStates || tb.cause < EndExpired || tb.cause > EndReopened {
				return nil, nil, fmt.Errorf("%w: tombstone at offset %d: state %d cause %d", ErrSnapshotCorrupt, off-1, tb.state, tb.cause)
			}
			tombs = append(tombs, tb)
		}
		off += n
	}
}

func decodeEntry(b []byte) (snapEntry, error) {
	le := binary.LittleEndian
	var se snapEntry
	e := &se.e
	e.key = readKey(b)
	e.sf, e.dflags[0], e.dflags[1] = b[37], b[38], b[39]
	if e.state() == StateNone || e.state() >= numStates {
		return se, fmt.Errorf("state %d", e.state())
	}
	if e.state().IsTCP() != (e.key.Proto == 6) {
		return se, fmt.Errorf("state %v for protocol %d", e.state(), e.key.Proto)
	}
	for d := range 2 {
		if e.dflags[d]&0x0f > 14 {
			return se, fmt.Errorf("direction flags %#x", e.dflags[d])
		}
		o := 40 + 12*d
		e.tcp[d] = tcpDir{end: le.Uint32(b[o:]), maxend: le.Uint32(b[o+4:]), maxwin: le.Uint32(b[o+8:])}
	}
	se.meta = Meta{Rule: le.Uint32(b[64:]), Flags: b[68]}
	se.age, se.idle = int64(le.Uint64(b[69:])), int64(le.Uint64(b[77:]))
	if se.idle < 0 || se.age < -1e9 {
		return se, fmt.Errorf("negative age %d or idle %d", se.age, se.idle)
	}
	for d := range 2 {
		se.counts[d][0] = le.Uint64(b[85+8*d:])
		se.counts[d][1] = le.Uint64(b[101+8*d:])
	}
	return se, nil
}

// restoreEntry inserts a staged snapshot entry, unless its tuple is already live.
func (t *Table) restoreEntry(s *settings, se *snapEntry, now int64) {
	k := se.e.key
	h := k.hash(&t.seed)
	sh := t.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.clock = max(sh.clock, now) // what CloseIf, right after a restore, ends with
	if _, _, ok := sh.lookupLocked(&k, h); ok {
		return
	}
	// Packets may have passed while no keepstate watched (fail open, a stop
	// that removed the hooks, the time since a periodic snapshot): the windows
	// are learnt again (relearn). Not those of a connection waiting for its
	// SYN-ACK: had its handshake gone on unseen, the client's next segment would
	// be refused anyway (an ACK in SYN_SENT, as in Linux), and relearning would
	// let in a SYN-ACK acknowledging any number.
	t.insertRecordLocked(sh, s, h, se, now, !se.e.awaitsSynAck())
}

// sortListsLocked puts every class list of sh in last-seen order, relinking it. It is
// for the rare restore into a table that already holds connections: O(n log n).
func (sh *shard) sortListsLocked() {
	var idx []uint32
	sh.forEachListLocked(func(_ uint8, _ class, l *list) {
		idx = idx[:0]
		for i := l.head; i != nilIdx; i = sh.at(i).next {
			idx = append(idx, i)
		}
		slices.SortStableFunc(idx, func(a, b uint32) int { return cmp.Compare(sh.at(a).lastSeen, sh.at(b).lastSeen) })
		for _, i := range idx {
			sh.unlinkFromLocked(l, i)
		}
		for _, i := range idx {
			sh.pushBackOnLocked(l, i)
		}
	})
	sh.republishHeadsLocked()
}
