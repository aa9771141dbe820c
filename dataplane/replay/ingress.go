package replay

import (
	"encoding/binary"

	"keepstate/capture"
	"keepstate/firewall"
	"keepstate/packet"
)

// Ingress works out which firewall interface a captured packet arrived at, from
// what the capture says:
//
//   - a pcapng capture interface, by the configured interface name first ("DMZ"),
//     then by OS device ("eth1");
//   - a Linux cooked v2 (SLL2, `tcpdump -i any`) header's interface index, through
//     the index-to-name map the user gives (`--ifindex 3=LAN`): an index means
//     nothing without the list of the machine that captured, and guessing from this
//     machine's interfaces would put packets on the wrong interface and fail them
//     on anti-spoofing.
//
// Anything else gives -1, and the engine infers the ingress from the source address.
type Ingress struct {
	eng      *firewall.Engine
	ifindex  map[int32]string // SLL2 interface index -> interface name or device
	resolved []int            // per capture interface; -2 not looked up yet
	byIndex  map[int32]int    // SLL2 interface index -> engine interface
}

// NewIngress resolves against eng's interfaces; ifindex may be nil.
func NewIngress(eng *firewall.Engine, ifindex map[int32]string) *Ingress {
	return &Ingress{eng: eng, ifindex: ifindex}
}

// Of returns the engine interface index pkt arrived at, or -1.
func (m *Ingress) Of(rd *capture.Reader, pkt *capture.Packet) int {
	if pkt.Iface >= 0 {
		if in := m.captureIface(rd, pkt.Iface); in >= 0 {
			return in
		}
	}
	if pkt.Link == packet.LinkLinuxSLL2 && len(m.ifindex) > 0 && len(pkt.Data) >= 8 {
		return m.sll2(int32(binary.BigEndian.Uint32(pkt.Data[4:8])))
	}
	return -1
}

func (m *Ingress) captureIface(rd *capture.Reader, captureIface int) int {
	for len(m.resolved) <= captureIface {
		m.resolved = append(m.resolved, -2)
	}
	if v := m.resolved[captureIface]; v != -2 {
		return v
	}
	v := -1
	if ifs := rd.Interfaces(); captureIface < len(ifs) {
		v = m.byName(ifs[captureIface].Name)
	}
	m.resolved[captureIface] = v
	return v
}

func (m *Ingress) sll2(index int32) int {
	if v, ok := m.byIndex[index]; ok {
		return v
	}
	if m.byIndex == nil {
		m.byIndex = make(map[int32]int)
	}
	v := m.byName(m.ifindex[index])
	m.byIndex[index] = v
	return v
}

func (m *Ingress) byName(name string) int {
	if name == "" {
		return -1
	}
	rs := m.eng.Ruleset()
	if v := rs.IfaceByName(name); v >= 0 {
		return v
	}
	return rs.IfaceByDevice(name)
}
