package policy

import (
	"net/netip"
	"slices"
)

// ifaceIndex answers the per-packet interface questions: which interface owns an
// address (longest prefix over every interface's addresses and networks) and
// whether a source may arrive on an interface.
type ifaceIndex struct {
	list     []Interface
	byName   map[string]int
	byDevice map[string]int
	nets     [][]netip.Prefix // per interface: masked Addresses, then Networks
	own4     intervals        // value: owning interface + 1, 0 for nobody
	own6     intervals
	internet int // first Internet-group interface, -1 if none
}

func (c *compiler) buildInterfaces(list []Interface) ifaceIndex {
	x := ifaceIndex{byName: map[string]int{}, byDevice: map[string]int{}, internet: -1}
	type owned struct{ iface, bits int }
	var prefixes []owned
	var spans4, spans6 []span
	for j, ifc := range list {
		if err := CheckName(ifc.Name); err != nil {
			c.errorf("interface %d: %v", j+1, err)
		}
		if _, dup := x.byName[ifc.Name]; dup {
			c.errorf("interface %q defined twice", ifc.Name)
		}
		x.byName[ifc.Name] = j
		if ifc.Device != "" {
			if k, dup := x.byDevice[ifc.Device]; dup {
				c.errorf("interfaces %q and %q share device %q", list[k].Name, ifc.Name, ifc.Device)
			} else {
				x.byDevice[ifc.Device] = j
			}
		}
		if ifc.Group >= numGroups {
			c.errorf("interface %q: invalid group %d", ifc.Name, ifc.Group)
		}
		if ifc.Group == Internet && x.internet < 0 {
			x.internet = j
		}
		cp := ifc
		cp.Addresses = slices.Clone(ifc.Addresses)
		cp.Networks = slices.Clone(ifc.Networks)
		x.list = append(x.list, cp)
		var nets []netip.Prefix
		for _, p := range slices.Concat(ifc.Addresses, ifc.Networks) {
			if !p.IsValid() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
				c.errorf("interface %q: invalid prefix %v", ifc.Name, p)
				continue
			}
			p = p.Masked()
			nets = append(nets, p)
			lo, hi := prefixBounds(p)
			s := span{lo, hi, len(prefixes)}
			prefixes = append(prefixes, owned{j, p.Bits()})
			if p.Addr().Is4() {
				spans4 = append(spans4, s)
			} else {
				spans6 = append(spans6, s)
			}
		}
		x.nets = append(x.nets, nets)
	}
	owner := func(spans []span, max u128) intervals {
		active := make([]bool, len(prefixes))
		return sweep(spans, max, len(prefixes), func(id int, covered bool) { active[id] = covered },
			func() uint32 {
				best, bestBits := -1, -1
				for id, on := range active {
					if on && prefixes[id].bits > bestBits {
						best, bestBits = prefixes[id].iface, prefixes[id].bits
					}
				}
				return uint32(best + 1)
			})
	}
	x.own4 = owner(spans4, maxV4)
	x.own6 = owner(spans6, maxV6)
	return x
}

// Interfaces returns the interfaces in configuration order. The slice is shared:
// callers must not modify it.
func (r *Ruleset) Interfaces() []Interface { return r.ifaces.list }

// IfaceByName returns the index of the interface called name, or -1.
func (r *Ruleset) IfaceByName(name string) int {
	if j, ok := r.ifaces.byName[name]; ok {
		return j
	}
	return -1
}

// IfaceByDevice returns the index of the interface bound to OS device dev, or -1.
func (r *Ruleset) IfaceByDevice(dev string) int {
	if j, ok := r.ifaces.byDevice[dev]; ok {
		return j
	}
	return -1
}

// owner returns the interface whose addresses or networks hold a by longest prefix,
// or -1; it ignores the Internet catch-all.
func (x *ifaceIndex) owner(a netip.Addr) int {
	a = a.Unmap()
	switch {
	case a.Is4():
		if len(x.own4.vals) == 0 {
			return -1
		}
		return int(x.own4.find(addrKey(a))) - 1
	case a.Is6():
		if len(x.own6.vals) == 0 {
			return -1
		}
		return int(x.own6.find(addrKey(a))) - 1
	}
	return -1
}

// IfaceForAddr returns the interface through which a is reached: the longest prefix
// among the interfaces' addresses and networks, else the first Internet-group
// interface, else -1. Replay uses it to guess ingress and egress interfaces.
func (r *Ruleset) IfaceForAddr(a netip.Addr) int {
	if j := r.ifaces.owner(a); j >= 0 {
		return j
	}
	return r.ifaces.internet
}

// SpoofOK reports whether src may arrive on interface iface. The source must belong
// to the interface's own networks; on an Internet-group interface it must belong to
// no other interface's networks. It answers true when it cannot judge: an unknown
// interface, an interface with no addresses or networks configured, and sources that
// are never routed (unspecified, link-local) such as DHCP discovery or IPv6 neighbour
// discovery.
func (r *Ruleset) SpoofOK(iface int, src netip.Addr) bool {
	x := &r.ifaces
	if iface < 0 || iface >= len(x.list) {
		return true
	}
	src = src.Unmap()
	if !src.IsValid() || src.IsUnspecified() || src.IsLinkLocalUnicast() {
		return true
	}
	if x.list[iface].Group == Internet {
		j := x.owner(src)
		return j < 0 || x.list[j].Group == Internet
	}
	nets := x.nets[iface]
	if len(nets) == 0 {
		return true
	}
	for _, p := range nets {
		if p.Contains(src) {
			return true
		}
	}
	return false
}
