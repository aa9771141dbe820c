package replay

import (
	"keepstate/capture"
	"keepstate/firewall"
)

// ifaceMap resolves a pcapng capture interface to the firewall interface packets on
// it arrived at: by the configured interface name first ("DMZ"), then by OS device
// ("eth1"). Packets of a pcap file, or of a capture interface no configured
// interface claims, get -1, and the engine infers the ingress from the source
// address.
type ifaceMap struct {
	eng      *firewall.Engine
	resolved []int // per capture interface; -2 not looked up yet
}

func newIfaceMap(eng *firewall.Engine) *ifaceMap { return &ifaceMap{eng: eng} }

func (m *ifaceMap) ingress(rd *capture.Reader, captureIface int) int {
	if captureIface < 0 {
		return -1
	}
	for len(m.resolved) <= captureIface {
		m.resolved = append(m.resolved, -2)
	}
	if v := m.resolved[captureIface]; v != -2 {
		return v
	}
	v := -1
	if ifs := rd.Interfaces(); captureIface < len(ifs) && ifs[captureIface].Name != "" {
		rs := m.eng.Ruleset()
		name := ifs[captureIface].Name
		if v = rs.IfaceByName(name); v < 0 {
			v = rs.IfaceByDevice(name)
		}
	}
	m.resolved[captureIface] = v
	return v
}
