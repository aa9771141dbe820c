//go:build linux

package ebpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"keepstate/conntrack"
	"keepstate/packet"
)

// Marks the program puts on packets of connections in its map (skb->mark).
const (
	MarkAccept = 0x4b530002 // accepted in the kernel: the NFQUEUE hooks let it pass
	MarkPassed = 0x4b530003 // a held connection's packet given up to the engine (for captures and counting)
)

// DefaultMaxConns is the map's size when Options.MaxConns is 0.
const DefaultMaxConns = 262144

// Options configure a FastPath.
type Options struct {
	Table *conntrack.Table
	// MaxConns bounds the connections held in the kernel at once; past it,
	// connections stay on the NFQUEUE path.
	MaxConns int
	// Interfaces to attach to; empty: every interface of the network namespace
	// but loopback.
	Interfaces []string
}

// FastPath is the loaded program and its map, attached or not. It implements
// conntrack.Offloader; the NFQUEUE workers call Offer.
type FastPath struct {
	table *conntrack.Table
	objs  fastpathObjects
	want  []string

	mu     sync.Mutex
	links  []link.Link
	ifaces []string
	// pending is the ingress ifindex of each direction, as the engine accepted
	// the connection's packets, kept until it ends (for hand-overs after a take-back).
	pending map[fastpathKsKey][2]uint32
	held    map[fastpathKsKey]struct{}
	closed  bool

	handed, takenBack, mapFull, errs atomic.Uint64
}

// Load loads the program and creates its map, without attaching it anywhere. An
// error says why the kernel refused (no BPF, no BTF, not allowed...).
func Load(o Options) (*FastPath, error) {
	if o.Table == nil {
		return nil, errors.New("fast path: Options.Table is nil")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("fast path: memlock limit: %w", err)
	}
	spec, err := loadFastpath()
	if err != nil {
		return nil, fmt.Errorf("fast path: %w", err)
	}
	n := o.MaxConns
	if n <= 0 {
		n = DefaultMaxConns
	}
	spec.Maps[fastpathMapConns].MaxEntries = uint32(n)
	f := &FastPath{table: o.Table, want: o.Interfaces,
		pending: make(map[fastpathKsKey][2]uint32), held: make(map[fastpathKsKey]struct{})}
	if err := spec.LoadAndAssign(&f.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("fast path: the kernel's verifier refused the program: %v", ve)
		}
		return nil, fmt.Errorf("fast path: loading the program: %w", err)
	}
	return f, nil
}

// Attach attaches the program at the ingress of the interfaces and installs f as
// the table's offloader. On error nothing stays attached.
func (f *FastPath) Attach() error {
	names := f.want
	if len(names) == 0 {
		ifs, err := net.Interfaces()
		if err != nil {
			return fmt.Errorf("fast path: interfaces: %w", err)
		}
		for _, ifc := range ifs {
			if ifc.Flags&net.FlagLoopback == 0 {
				names = append(names, ifc.Name)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, name := range names {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			f.detachLocked()
			return fmt.Errorf("fast path: interface %s: %w", name, err)
		}
		l, err := link.AttachTCX(link.TCXOptions{Interface: ifc.Index, Program: f.objs.KeepstateFastpath, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			f.detachLocked()
			return fmt.Errorf("fast path: attaching to %s's ingress (tcx, Linux 6.6 or later): %w", name, err)
		}
		f.links = append(f.links, l)
		f.ifaces = append(f.ifaces, name)
	}
	f.table.SetOffloader(f)
	return nil
}

func (f *FastPath) detachLocked() {
	for _, l := range f.links {
		_ = l.Close()
	}
	f.links, f.ifaces = nil, nil
}

// Close detaches the program, gives every connection it held back to the table
// with its last state, and frees the map. Safe to call more than once.
func (f *FastPath) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.detachLocked() // from here on nothing changes the map's entries
	var keys []conntrack.Key
	for kk := range f.held {
		keys = append(keys, origKeyOf(kk))
	}
	f.mu.Unlock()
	for _, k := range keys {
		f.table.Reclaim(k)
	}
	f.table.SetOffloader(nil)
	return f.objs.Close()
}

// Interfaces are the interfaces the program is attached to.
func (f *FastPath) Interfaces() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ifaces...)
}

// Offer tells the fast path that the engine accepted p, a packet of an
// established connection travelling in direction dir, which arrived on ifindex
// (0: none, a packet of the host's own). Once both directions have been offered
// with their interfaces the connection is handed over, if the table agrees.
func (f *FastPath) Offer(p *packet.Parsed, dir conntrack.Dir, ifindex uint32, now int64) {
	if ifindex == 0 || (p.Proto != packet.ProtoTCP && p.Proto != packet.ProtoUDP) {
		return
	}
	kk, _ := ksKeyOfPacket(p)
	f.mu.Lock()
	if _, ok := f.held[kk]; ok || f.closed {
		f.mu.Unlock()
		return
	}
	pe := f.pending[kk]
	d := 0
	if dir == conntrack.Reply {
		d = 1
	}
	if pe[d] != ifindex {
		pe[d] = ifindex
		f.pending[kk] = pe
	}
	ready := pe[0] != 0 && pe[1] != 0
	f.mu.Unlock()
	if ready {
		f.table.Offload(p, now)
	}
}

// Put implements conntrack.Offloader.
func (f *FastPath) Put(st *conntrack.OffloadState) bool {
	kk, origIsA := ksKeyOf(st.Key)
	f.mu.Lock()
	defer f.mu.Unlock()
	pe, ok := f.pending[kk]
	if !ok || f.closed {
		return false
	}
	var v fastpathKsConn
	if origIsA {
		v.OrigIsA = 1
	}
	if !isV4Mapped(st.Key.Src) {
		v.V6 = 1
	}
	v.LastSeen = unixToBoot(st.LastSeen)
	v.Timeout, v.UnackedTimeout = uint64(st.Timeout), uint64(st.UnackedTimeout)
	for d := range 2 {
		sd := &st.Dirs[d]
		vd := &v.Dir[d]
		vd.End, vd.Maxend, vd.Maxwin, vd.Ifindex = sd.End, sd.MaxEnd, sd.MaxWin, pe[d]
		vd.Packets, vd.Bytes, vd.Scale = sd.Packets, sd.Bytes, sd.Scale
		vd.Sack, vd.Unacked = b2u(sd.SACK), b2u(sd.Unacked)
	}
	if err := f.objs.Conns.Update(&kk, &v, ebpf.UpdateNoExist); err != nil {
		if errors.Is(err, unix.E2BIG) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.ENOMEM) {
			f.mapFull.Add(1)
		} else {
			f.errs.Add(1)
		}
		return false
	}
	f.held[kk] = struct{}{}
	f.handed.Add(1)
	return true
}

// Peek implements conntrack.Offloader.
func (f *FastPath) Peek(k *conntrack.Key, st *conntrack.OffloadState) bool {
	kk, _ := ksKeyOf(*k)
	f.mu.Lock()
	_, ok := f.held[kk]
	f.mu.Unlock()
	if !ok {
		return false
	}
	var v fastpathKsConn
	if err := f.objs.Conns.LookupWithFlags(&kk, &v, ebpf.LookupLock); err != nil {
		f.errs.Add(1)
		return false
	}
	fill(st, *k, &v)
	return true
}

// Take implements conntrack.Offloader.
func (f *FastPath) Take(k *conntrack.Key, st *conntrack.OffloadState, ended bool) bool {
	kk, _ := ksKeyOf(*k)
	f.mu.Lock()
	if ended {
		delete(f.pending, kk)
	}
	_, ok := f.held[kk]
	delete(f.held, kk)
	f.mu.Unlock()
	if !ok {
		return false
	}
	var v fastpathKsConn
	if err := f.objs.Conns.LookupAndDeleteWithFlags(&kk, &v, ebpf.LookupLock); err != nil {
		f.errs.Add(1)
		return false
	}
	f.takenBack.Add(1)
	fill(st, *k, &v)
	return true
}

// fill converts a map value back: its directions are the connection's, as the
// table's key k gives them.
func fill(st *conntrack.OffloadState, k conntrack.Key, v *fastpathKsConn) {
	*st = conntrack.OffloadState{Key: k, LastSeen: bootToUnix(v.LastSeen),
		Timeout: int64(v.Timeout), UnackedTimeout: int64(v.UnackedTimeout)}
	for d := range 2 {
		vd := &v.Dir[d]
		st.Dirs[d] = conntrack.OffloadDir{End: vd.End, MaxEnd: vd.Maxend, MaxWin: vd.Maxwin, Scale: vd.Scale,
			SACK: vd.Sack != 0, Unacked: vd.Unacked != 0, Packets: vd.Packets, Bytes: vd.Bytes}
	}
}

// Stats are the fast path's counters.
type Stats struct {
	Interfaces                           []string
	Offloaded                            int
	Packets, Bytes, Passed               uint64
	HandedOver, TakenBack, MapFull, Errs uint64
}

// Stats returns the counters so far.
func (f *FastPath) Stats() Stats {
	f.mu.Lock()
	s := Stats{Interfaces: append([]string(nil), f.ifaces...), Offloaded: len(f.held)}
	closed := f.closed
	f.mu.Unlock()
	s.HandedOver, s.TakenBack, s.MapFull, s.Errs = f.handed.Load(), f.takenBack.Load(), f.mapFull.Load(), f.errs.Load()
	if closed {
		return s
	}
	for i, dst := range []*uint64{&s.Packets, &s.Bytes, &s.Passed} {
		var per []uint64
		if err := f.objs.Stats.Lookup(uint32(i), &per); err == nil {
			for _, n := range per {
				*dst += n
			}
		}
	}
	return s
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func isV4Mapped(a [16]byte) bool {
	return a[10] == 0xff && a[11] == 0xff && bytes.Equal(a[:10], make([]byte, 10))
}

// ksKeyOf is the map key of connection k and whether k's source is endpoint a.
func ksKeyOf(k conntrack.Key) (fastpathKsKey, bool) {
	return ksKey(k.Src, k.Dst, k.SrcPort, k.DstPort, k.Proto)
}

func ksKeyOfPacket(p *packet.Parsed) (fastpathKsKey, bool) {
	return ksKeyOf(conntrack.KeyOf(p))
}

// ksKey orders the endpoints as the program does: the lesser address first, and
// on equal addresses the lesser port.
func ksKey(src, dst [16]byte, sport, dport [2]byte, proto uint8) (fastpathKsKey, bool) {
	c := bytes.Compare(src[:], dst[:])
	if c == 0 {
		c = int(binary.BigEndian.Uint16(sport[:])) - int(binary.BigEndian.Uint16(dport[:]))
	}
	srcIsA := c <= 0
	k := fastpathKsKey{Proto: proto}
	if srcIsA {
		k.A, k.B, k.Aport, k.Bport = src, dst, binary.NativeEndian.Uint16(sport[:]), binary.NativeEndian.Uint16(dport[:])
	} else {
		k.A, k.B, k.Aport, k.Bport = dst, src, binary.NativeEndian.Uint16(dport[:]), binary.NativeEndian.Uint16(sport[:])
	}
	return k, srcIsA
}

// origKeyOf turns a map key back into a table key (either direction will do:
// the table finds a connection by either).
func origKeyOf(k fastpathKsKey) conntrack.Key {
	var ck conntrack.Key
	ck.Src, ck.Dst, ck.Proto = k.A, k.B, k.Proto
	binary.NativeEndian.PutUint16(ck.SrcPort[:], k.Aport)
	binary.NativeEndian.PutUint16(ck.DstPort[:], k.Bport)
	return ck
}

// The program's clock is CLOCK_BOOTTIME; the engine's, Unix time.
func clockOffset() int64 {
	var b, r unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &b)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &r)
	return r.Nano() - b.Nano()
}

func unixToBoot(t int64) uint64 { return uint64(max(t-clockOffset(), 0)) }
func bootToUnix(t uint64) int64 { return int64(t) + clockOffset() }

// AcceptMark is the mark of packets accepted in the kernel (nfqueue.FastPath).
func (f *FastPath) AcceptMark() uint32 { return MarkAccept }
