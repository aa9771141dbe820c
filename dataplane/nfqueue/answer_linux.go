//go:build linux

package nfqueue

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// answerSockets send the RSTs and ICMP errors of Deny rules: raw sockets with the
// IP header included (IPPROTO_RAW implies IP_HDRINCL, and IPV6_HDRINCL for IPv6),
// marked so that the firewall's own OUTPUT hooks let them pass untracked.
type answerSockets struct {
	fd4, fd6 int // -1 when that family could not be opened
}

func openAnswerSockets() (*answerSockets, error) {
	a := &answerSockets{fd4: -1, fd6: -1}
	var errs []error
	for _, fam := range []struct {
		domain int
		fd     *int
	}{{unix.AF_INET, &a.fd4}, {unix.AF_INET6, &a.fd6}} {
		fd, err := unix.Socket(fam.domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, answerMark); err != nil {
			unix.Close(fd)
			errs = append(errs, err)
			continue
		}
		*fam.fd = fd
	}
	if a.fd4 < 0 {
		// IPv4 is required: its socket also resolves interface names.
		a.close()
		return nil, fmt.Errorf("nfqueue: raw socket for answers: %w", errors.Join(errs...))
	}
	return a, nil
}

// send sends pkt, a complete IP packet, to dst.
func (a *answerSockets) send(pkt []byte, dst netip.Addr) error {
	if dst.Is4() {
		return unix.Sendto(a.fd4, pkt, 0, &unix.SockaddrInet4{Addr: dst.As4()})
	}
	if a.fd6 < 0 {
		return errors.New("nfqueue: no IPv6 raw socket")
	}
	return unix.Sendto(a.fd6, pkt, 0, &unix.SockaddrInet6{Addr: dst.As16()})
}

func (a *answerSockets) close() {
	for _, fd := range []int{a.fd4, a.fd6} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	a.fd4, a.fd6 = -1, -1
}
