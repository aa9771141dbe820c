//go:build linux

package conformance

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"keepstate/lab"
)

// NamespacePrefix starts the name of every namespace a Kernel creates:
// PREFIX-PID-N-MODE, so that lab.RemoveStale can remove those of a killed run.
const NamespacePrefix = "kscf"

// KernelOptions shape a Kernel.
type KernelOptions struct {
	// Settle is how long to wait for frames still inside the bridge once a batch
	// has been sent and before the frames not yet seen count as refused (default
	// 100 ms). Frames conntrack sees always come out, marked or not, so this is
	// spent only when the bridge refused some.
	Settle time.Duration
	// DropInvalid makes the forward chain drop what conntrack finds invalid
	// (`ct state invalid drop`) instead of marking it: a frame that does not come
	// out is then "invalid or refused by the bridge", without telling which.
	DropInvalid bool
}

// Kernel is a network namespace whose bridge passes frames between a client and a
// server port through the kernel's conntrack, set up for one Mode.
type Kernel struct {
	mode Mode
	ns   string
	opts KernelOptions

	fds [2]int // AF_PACKET sockets on the outer ends of the client and server ports
	nl  int    // NETLINK_NETFILTER socket, to flush the conntrack table
	seq uint32

	buf []byte
}

var kernelSeq atomic.Int32

// Missing says why a Kernel cannot be built here ("" when it can): it needs root,
// and the ip, sysctl and nft commands.
func Missing() string {
	if os.Geteuid() != 0 {
		return "the kernel comparison needs root (it builds a network namespace with a bridge and nftables rules)"
	}
	for _, tool := range []string{"ip", "sysctl", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("the kernel comparison needs %q (iproute2, procps, nftables)", tool)
		}
	}
	return ""
}

// The ports: the client side sends on cli, whose peer cli-port is a port of the
// bridge; the server side on srv.
var portNames = [2]string{"cli", "srv"}

// NewKernel builds the namespace for mode m. The caller must Close it.
func NewKernel(ctx context.Context, m Mode, o KernelOptions) (*Kernel, error) {
	if why := Missing(); why != "" {
		return nil, errors.New(why)
	}
	if o.Settle <= 0 {
		o.Settle = 100 * time.Millisecond
	}
	lab.RemoveStale(ctx, NamespacePrefix)
	k := &Kernel{
		mode: m, opts: o, fds: [2]int{-1, -1}, nl: -1,
		ns:  fmt.Sprintf("%s-%d-%d-%s", NamespacePrefix, os.Getpid(), kernelSeq.Add(1), m),
		buf: make([]byte, 1<<17),
	}
	if err := k.build(ctx); err != nil {
		return nil, errors.Join(err, k.Close())
	}
	return k, nil
}

func (k *Kernel) build(ctx context.Context) error {
	ns := k.ns
	loose := "0"
	if k.mode == Loose {
		loose = "1"
	}
	cmds := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		// No IPv6 of the namespace's own (router solicitations, DAD) on the ports;
		// bridged IPv6 frames still go through conntrack.
		{"ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"},
		{"ip", "-n", ns, "link", "add", "br0", "type", "bridge"},
	}
	for _, p := range portNames {
		cmds = append(cmds,
			[]string{"ip", "-n", ns, "link", "add", p, "mtu", "65535", "type", "veth", "peer", "name", p + "-port", "mtu", "65535"},
			[]string{"ip", "-n", ns, "link", "set", p + "-port", "master", "br0"},
			[]string{"ip", "-n", ns, "link", "set", p, "up"},
			[]string{"ip", "-n", ns, "link", "set", p + "-port", "up"},
		)
	}
	cmds = append(cmds,
		[]string{"ip", "-n", ns, "link", "set", "br0", "mtu", "65535", "up"},
		// Bridged frames go through the inet hooks, and so through conntrack
		// (br_netfilter); the conntrack settings are the namespace's own.
		[]string{"ip", "netns", "exec", ns, "sysctl", "-q", "-w",
			"net.bridge.bridge-nf-call-iptables=1",
			"net.bridge.bridge-nf-call-ip6tables=1",
			"net.netfilter.nf_conntrack_tcp_loose=" + loose,
			"net.netfilter.nf_conntrack_tcp_be_liberal=0",
			"net.netfilter.nf_conntrack_checksum=0"},
	)
	for _, args := range cmds {
		if err := run(ctx, nil, args...); err != nil {
			return err
		}
	}
	if err := run(ctx, strings.NewReader(k.ruleset()), "ip", "netns", "exec", ns, "nft", "-f", "-"); err != nil {
		return err
	}
	return lab.Do(ns, k.openSockets)
}

// dscpInvalid marks, in mark mode, what conntrack found invalid: class selector 7,
// which the stream clears from every frame it sends.
const dscpInvalid = 56

func (k *Kernel) ruleset() string {
	verdict := "ct state invalid counter drop"
	if !k.opts.DropInvalid {
		verdict = "meta nfproto ipv4 ct state invalid counter ip dscp set cs7\n" +
			"    meta nfproto ipv6 ct state invalid counter ip6 dscp set cs7"
	}
	return "table inet keepstate_conformance {\n" +
		"  chain forward {\n" +
		"    type filter hook forward priority filter; policy accept;\n" +
		"    " + verdict + "\n" +
		"  }\n" +
		"}\n"
}

func (k *Kernel) openSockets() error {
	for i, name := range portNames {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		k.fds[i] = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
			return fmt.Errorf("bind packet socket to %s: %w", name, err)
		}
		// Room for a whole batch of the largest frames: a frame the socket has no
		// room for would look refused.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
			return fmt.Errorf("packet socket buffer: %w", err)
		}
	}
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("netfilter netlink socket: %w", err)
	}
	k.nl = nl
	return unix.Bind(nl, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Close deletes the namespace.
func (k *Kernel) Close() error {
	for i, fd := range k.fds {
		if fd >= 0 {
			unix.Close(fd)
			k.fds[i] = -1
		}
	}
	if k.nl >= 0 {
		unix.Close(k.nl)
		k.nl = -1
	}
	if _, err := os.Stat("/run/netns/" + k.ns); err != nil {
		return nil
	}
	return run(context.Background(), nil, "ip", "netns", "del", k.ns)
}

func run(ctx context.Context, stdin *strings.Reader, args ...string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// maxBatch bounds the frames, and batchBytes their bytes, sent before waiting for
// them to come out: well inside the receive buffers and the tag space.
const (
	maxBatch   = 4096
	batchBytes = 16 << 20
)

// Decide replays the frames of s through the namespace, after emptying its
// conntrack table, and returns the kernel's verdict on each.
func (k *Kernel) Decide(s *Stream) ([]Verdict, error) {
	if err := k.flush(); err != nil {
		return nil, err
	}
	out := make([]Verdict, len(s.Frames))
	errc := make(chan error, 1)
	go func() { errc <- k.replayPinned(s, out) }()
	return out, <-errc
}

// replayPinned runs the replay on one locked OS thread bound to one CPU: frames
// sent from one CPU queue up in its receive backlog in the order they were sent,
// whichever port they enter, so conntrack sees them in capture order.
func (k *Kernel) replayPinned(s *Stream, out []Verdict) error {
	runtime.LockOSThread()
	var was unix.CPUSet
	if err := unix.SchedGetaffinity(0, &was); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	cpu := 0
	for cpu < 1024 && !was.IsSet(cpu) {
		cpu++
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	err := k.replay(s, out)
	if unix.SchedSetaffinity(0, &was) == nil {
		runtime.UnlockOSThread()
	} // else the thread stays locked and goes when this goroutine ends
	return err
}

func (k *Kernel) replay(s *Stream, out []Verdict) error {
	k.drain()
	if _, err := k.socketDrops(); err != nil {
		return err
	}
	for start := 0; start < len(s.Frames); {
		end, bytes := start, 0
		for end < len(s.Frames) && end-start < maxBatch && bytes < batchBytes {
			bytes += len(s.Frames[end].Data)
			end++
		}
		pending := make(map[uint32]int, end-start)
		for i := start; i < end; i++ {
			f := &s.Frames[i]
			pending[f.Tag] = i
			out[i] = Verdict{Why: KernelBridge}
			if err := k.send(k.fds[f.Side], f.Data); err != nil {
				if errors.Is(err, unix.EMSGSIZE) {
					continue // too large for the port: refused, as the bridge would
				}
				return fmt.Errorf("send frame %d: %w", f.Record, err)
			}
		}
		if err := k.collect(s, pending, out); err != nil {
			return err
		}
		start = end
	}
	drops, err := k.socketDrops()
	if err != nil {
		return err
	}
	if drops > 0 {
		return fmt.Errorf("the packet sockets dropped %d frames for lack of buffer space: the verdicts would be wrong", drops)
	}
	return nil
}

func (k *Kernel) send(fd int, frame []byte) error {
	for {
		_, err := unix.Write(fd, frame)
		if err != unix.EAGAIN && err != unix.ENOBUFS {
			return err
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(fds, 100); err != nil && err != unix.EINTR {
			return err
		}
	}
}

// collect reads the frames that come out of either port until every frame of
// pending has been seen or nothing has come for the settle time.
func (k *Kernel) collect(s *Stream, pending map[uint32]int, out []Verdict) error {
	fds := []unix.PollFd{{Fd: int32(k.fds[0]), Events: unix.POLLIN}, {Fd: int32(k.fds[1]), Events: unix.POLLIN}}
	quiet := time.Now().Add(k.opts.Settle)
	for len(pending) > 0 {
		wait := time.Until(quiet)
		if wait <= 0 {
			return nil
		}
		n, err := unix.Poll(fds, int(wait.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		for port, fd := range k.fds {
			for {
				got, ok, err := k.receive(fd)
				if err != nil {
					return err
				}
				if !ok {
					break
				}
				if k.match(s, Side(port), got, pending, out) {
					quiet = time.Now().Add(k.opts.Settle)
				}
			}
		}
	}
	return nil
}

// receive reads one frame that arrived on fd from the bridge, if any.
func (k *Kernel) receive(fd int) ([]byte, bool, error) {
	for {
		n, from, err := unix.Recvfrom(fd, k.buf, 0)
		switch {
		case err == unix.EAGAIN:
			return nil, false, nil
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, false, err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		return k.buf[:n], true, nil
	}
}

// match records the verdict of the frame got, which came out of the port of side
// out, and reports whether it was one of pending.
func (k *Kernel) match(s *Stream, outSide Side, got []byte, pending map[uint32]int, out []Verdict) bool {
	if len(got) < 14+20 {
		return false
	}
	et := binary.BigEndian.Uint16(got[12:14])
	if et != 0x0800 && et != 0x86dd {
		return false
	}
	ip := got[14:]
	i, ok := pending[tagOf(ip)]
	if !ok {
		return false
	}
	f := &s.Frames[i]
	if f.Side == outSide || !sameButMarks(f.Data[14:], ip) {
		return false // not that frame: something else of the same tag
	}
	delete(pending, f.Tag)
	if !k.opts.DropInvalid && dscpOf(ip) == dscpInvalid {
		out[i] = Verdict{Why: KernelInvalid}
	} else {
		out[i] = Verdict{Pass: true}
	}
	return true
}

// sameButMarks reports whether IP packet got is sent, but for what marking it may
// change: the DSCP bits and the IPv4 header checksum. The bridge drops Ethernet
// padding, which sent has none of.
func sameButMarks(sent, got []byte) bool {
	if len(got) < len(sent) || len(sent) < 20 {
		return false
	}
	got = got[:len(sent)]
	if sent[0]>>4 == 4 {
		return sent[0] == got[0] && sent[1]&3 == got[1]&3 && bytes.Equal(sent[2:10], got[2:10]) && bytes.Equal(sent[12:], got[12:])
	}
	return sent[0]&0xf0 == got[0]&0xf0 && sent[1]&0x3f == got[1]&0x3f && bytes.Equal(sent[2:], got[2:])
}

// drain discards whatever is waiting on the ports.
func (k *Kernel) drain() {
	for _, fd := range k.fds {
		for {
			if _, ok, err := k.receive(fd); !ok || err != nil {
				break
			}
		}
	}
}

// socketDrops returns the frames the packet sockets dropped since the last call.
func (k *Kernel) socketDrops() (uint32, error) {
	var total uint32
	for _, fd := range k.fds {
		st, err := unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err != nil {
			return 0, err
		}
		total += st.Drops
	}
	return total, nil
}

// flush empties the namespace's conntrack table (IPCTNL_MSG_CT_DELETE without a
// tuple, every family) and waits for the kernel's acknowledgement.
func (k *Kernel) flush() error {
	const ipctnlMsgCtDelete = 2
	k.seq++
	msg := make([]byte, unix.SizeofNlMsghdr+4)
	binary.NativeEndian.PutUint32(msg[0:4], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:6], unix.NFNL_SUBSYS_CTNETLINK<<8|ipctnlMsgCtDelete)
	binary.NativeEndian.PutUint16(msg[6:8], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:12], k.seq)
	// nfgenmsg: family AF_UNSPEC, version 0 (which also means every family), res_id 0.
	if err := unix.Sendto(k.nl, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("conntrack flush: %w", err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(k.nl, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("conntrack flush: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("conntrack flush: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != k.seq || m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if errno := int32(binary.NativeEndian.Uint32(m.Data[0:4])); errno != 0 {
				return fmt.Errorf("conntrack flush: %w", unix.Errno(-errno))
			}
			return nil
		}
	}
}
