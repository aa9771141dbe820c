//go:build linux

package nfqueue

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// conn is one netlink socket bound to one NFQUEUE queue. The socket is
// non-blocking and registered with the Go runtime's poller through an os.File, so
// a worker parks without holding a thread and Close or a deadline wakes it.
type conn struct {
	queue  uint16
	file   *os.File
	raw    syscall.RawConn
	seq    uint32
	closed atomic.Bool
	// early holds ids of packets that arrived while the queue was being configured:
	// they are dropped (fail closed) by the worker's first verdict.
	early []uint32
}

// configTimeout bounds each configuration exchange with the kernel.
const configTimeout = 5 * time.Second

// openConn opens a socket, binds it to queue and configures the queue. It fails
// (EPERM) when another socket is bound to the queue.
func openConn(queue uint16, qc queueConfig, rcvbuf int) (*conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("nfqueue socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nfqueue bind socket: %w", err)
	}
	// A large receive buffer absorbs bursts; FORCE passes net.core.rmem_max (we
	// need CAP_NET_ADMIN anyway). The kernel reports an overflow with ENOBUFS,
	// which the worker counts: NETLINK_NO_ENOBUFS is deliberately not set.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("nfqueue-%d", queue))
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	c := &conn{queue: queue, file: f, raw: raw}
	if err := c.request(appendBind(nil, queue, c.nextSeq())); err != nil {
		f.Close()
		// The kernel answers EPERM when another socket owns the queue
		// (nfqnl_recv_config checks the owner before the command).
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("nfqueue: queue %d is in use by another program: %w", queue, err)
		}
		return nil, fmt.Errorf("nfqueue: bind queue %d: %w", queue, err)
	}
	if err := c.request(appendParams(nil, queue, c.nextSeq(), qc)); err != nil {
		f.Close()
		return nil, fmt.Errorf("nfqueue: configure queue %d: %w", queue, err)
	}
	return c, nil
}

func (c *conn) nextSeq() uint32 {
	c.seq++
	return c.seq
}

// request sends one configuration message and waits for its acknowledgement.
func (c *conn) request(msg []byte) error {
	seq := ne.Uint32(msg[8:12])
	if err := c.send(msg); err != nil {
		return err
	}
	if err := c.file.SetReadDeadline(time.Now().Add(configTimeout)); err != nil {
		return err
	}
	defer c.file.SetReadDeadline(time.Time{})
	buf := make([]byte, 1<<16)
	for {
		n, err := c.recv(buf)
		if err != nil {
			return err
		}
		d := buf[:n]
		for {
			m, rest, ok, err := nextMsg(d)
			if err != nil || !ok {
				break
			}
			d = rest
			switch m.Type {
			case nlmsgError:
				if m.Seq != seq {
					continue
				}
				code, ok := errorCode(m.Body)
				if !ok {
					return errShortMsg
				}
				if code != 0 {
					return syscall.Errno(-code)
				}
				return nil
			case msgPacket:
				var pm packetMsg
				if parsePacket(m.Body, &pm); pm.HasID {
					c.early = append(c.early, pm.ID)
				}
			}
		}
	}
}

func (c *conn) recv(buf []byte) (int, error) {
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// send writes one datagram (one or more netlink messages) to the kernel. Messages
// to the kernel are processed synchronously in the call, so it never waits.
func (c *conn) send(b []byte) error {
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), b)
		return werr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return werr
}

// mmsghdr is struct mmsghdr; Go pads it like C does on every architecture.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// recvBatch is the reusable state of batched receives: one buffer per message.
type recvBatch struct {
	bufs [][]byte
	iovs []unix.Iovec
	msgs []mmsghdr

	// Results of the last readFn call; readFn is built once so that receiving
	// does not allocate a closure per call.
	n      int
	err    error
	readFn func(fd uintptr) bool
}

func newRecvBatch(count, size int) *recvBatch {
	b := &recvBatch{
		bufs: make([][]byte, count),
		iovs: make([]unix.Iovec, count),
		msgs: make([]mmsghdr, count),
	}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, size)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(size)
		b.msgs[i].hdr.Iov = &b.iovs[i]
		b.msgs[i].hdr.SetIovlen(1)
	}
	b.readFn = func(fd uintptr) bool {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(len(b.msgs)), 0, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		b.n, b.err = int(r), nil
		if e != 0 {
			b.n, b.err = 0, e
		}
		return true
	}
	return b
}

// datagram returns the i-th received datagram and whether it was cut short.
func (b *recvBatch) datagram(i int) ([]byte, bool) {
	n := min(int(b.msgs[i].len), len(b.bufs[i]))
	return b.bufs[i][:n], b.msgs[i].hdr.Flags&unix.MSG_TRUNC != 0
}

// recvBatch receives every datagram that is ready, up to the batch size, waiting
// for the first one: the batch is whatever the kernel queued while the worker
// was busy with the previous one.
func (c *conn) recvBatch(b *recvBatch) (int, error) {
	if err := c.raw.Read(b.readFn); err != nil {
		return 0, err
	}
	return b.n, b.err
}

// close closes the socket; a worker blocked on it returns. (The raw connection
// reports a closed file with an error os.ErrClosed does not match, hence the flag.)
func (c *conn) close() error {
	c.closed.Store(true)
	return c.file.Close()
}

// isClosed reports whether close was called.
func (c *conn) isClosed() bool { return c.closed.Load() }
