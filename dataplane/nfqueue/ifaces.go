//go:build linux

package nfqueue

import (
	"time"

	"golang.org/x/sys/unix"

	"keepstate/firewall"
	"keepstate/policy"
)

// ifaceRefresh is how long a resolved ifindex is trusted: interfaces come and go
// (a VPN device, a renamed NIC) and their indexes are reused.
const ifaceRefresh = int64(10 * time.Second)

// maxCachedIfindex bounds the per-worker table; larger indexes are looked up
// every time (they are rare: indexes are allocated from 1 upwards).
const maxCachedIfindex = 4096

// ifaceMap resolves NFQUEUE's ingress ifindex to the engine's interface index:
// ifindex -> OS device name -> Ruleset().IfaceByDevice. Each worker owns one, so
// the hot path takes no lock.
//
// Names are resolved with SIOCGIFNAME on a socket opened in the plane's network
// namespace, not with net.InterfaceByIndex: that opens a route socket in the
// namespace of whatever thread the worker runs on, which is not necessarily the
// plane's.
type ifaceMap struct {
	eng     *firewall.Engine
	fd      int // any socket of the plane's namespace
	rs      *policy.Ruleset
	cache   []int32 // ifindex -> engine index + 2; 0 not resolved yet
	expires int64
}

func newIfaceMap(eng *firewall.Engine, fd int) *ifaceMap {
	return &ifaceMap{eng: eng, fd: fd}
}

// ingress returns the engine interface of ifindex, -1 when unknown (the engine
// then infers it from the source address).
func (m *ifaceMap) ingress(ifindex uint32, now int64) int {
	if ifindex == 0 {
		return -1
	}
	if rs := m.eng.Ruleset(); rs != m.rs || now >= m.expires {
		// A new ruleset may name devices differently; stale indexes expire.
		m.rs = rs
		m.expires = now + ifaceRefresh
		clear(m.cache)
	}
	if ifindex >= maxCachedIfindex {
		return m.resolve(ifindex)
	}
	if int(ifindex) >= len(m.cache) {
		m.cache = append(m.cache, make([]int32, int(ifindex)+1-len(m.cache))...)
	}
	if v := m.cache[ifindex]; v != 0 {
		return int(v) - 2
	}
	v := m.resolve(ifindex)
	m.cache[ifindex] = int32(v + 2)
	return v
}

func (m *ifaceMap) resolve(ifindex uint32) int {
	name, ok := ifName(m.fd, ifindex)
	if !ok {
		return -1
	}
	return m.rs.IfaceByDevice(name)
}

// ifName returns the device name of ifindex in the namespace of socket fd.
func ifName(fd int, ifindex uint32) (string, bool) {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return "", false
	}
	ifr.SetUint32(ifindex)
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFNAME, ifr); err != nil {
		return "", false
	}
	return ifr.Name(), true
}
