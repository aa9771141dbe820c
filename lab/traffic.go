//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Ports of the lab's services (the lab configuration's rules name them).
const (
	PortEcho  = 8080 // Permit: echoes every byte back
	PortSink  = 8090 // Permit: counts bytes until EOF, answers the count
	PortDeny  = 8081 // Deny: refused with a TCP RST
	PortBench = 5201 // Permit, TCP and UDP: throughput (iperf3's port)
)

// Server is a set of TCP services listening in the server namespace.
type Server struct {
	mu    sync.Mutex
	lns   []net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// StartServer listens on ServerAddr in namespace ns: an echo service on
// PortEcho and a byte sink on PortSink.
func StartServer(ns string) (*Server, error) {
	s := &Server{conns: map[net.Conn]struct{}{}}
	for port, handle := range map[int]func(net.Conn){PortEcho: echo, PortSink: sink} {
		var ln net.Listener
		err := Do(ns, func() (err error) {
			ln, err = net.Listen("tcp4", netip.AddrPortFrom(ServerAddr, uint16(port)).String())
			return err
		})
		if err != nil {
			s.Close()
			return nil, err
		}
		s.lns = append(s.lns, ln)
		s.wg.Add(1)
		go s.accept(ln, handle)
	}
	return s, nil
}

func (s *Server) accept(ln net.Listener, handle func(net.Conn)) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			handle(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops listening, closes every open connection and waits for the handlers.
func (s *Server) Close() {
	s.mu.Lock()
	for _, ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func echo(c net.Conn) { _, _ = io.Copy(c, c) }

// sink reads until the client half-closes, then answers the byte count.
func sink(c net.Conn) {
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		return
	}
	fmt.Fprintf(c, "%d\n", n)
}

// KeepAlive is the client's TCP keep-alive: first probe after Idle, then every
// Interval, Count unanswered probes end the connection (TCP_KEEPIDLE,
// TCP_KEEPINTVL, TCP_KEEPCNT).
type KeepAlive struct {
	Idle, Interval time.Duration
	Count          int
}

// Dial connects from namespace ns to addr:port with a timeout, and keep-alives
// when ka is not nil. The connection is closed when ctx ends, so that nothing
// of a scenario stays blocked on it after Ctrl-C.
func Dial(ctx context.Context, ns string, addr netip.Addr, port int, timeout time.Duration, ka *KeepAlive) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	if ka != nil {
		d.KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: ka.Idle, Interval: ka.Interval, Count: ka.Count}
	}
	var c net.Conn
	err := Do(ns, func() (err error) {
		c, err = d.DialContext(ctx, "tcp4", netip.AddrPortFrom(addr, uint16(port)).String())
		return err
	})
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { c.Close() })
	return c, nil
}

// Outcome names what a client saw in the words of the lab's reports:
// "ok", "refused" (an RST answered the SYN), "reset", "timeout" (our own
// deadline: nothing came back), "timed out" (the kernel gave up: retransmissions
// or keep-alive probes unanswered), or the error's text.
func Outcome(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, syscall.ETIMEDOUT):
		return "timed out"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF):
		return "closed by the server"
	}
	return err.Error()
}

// RoundTrip writes msg on c and reads the same number of bytes back within
// timeout: one exchange with the echo service.
func RoundTrip(c net.Conn, msg string, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echo answered %q, want %q", buf, msg)
	}
	return nil
}

// SinkCount half-closes c (a connection to the sink service) and reads the byte
// count the server answers.
func SinkCount(c net.Conn, timeout time.Duration) (int64, error) {
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, err
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}
