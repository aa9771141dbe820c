//go:build linux

package cli

import (
	"keepstate/daemon"
	"keepstate/dataplane/ebpf"
	"keepstate/firewall"
)

// fastPathAdapter is the eBPF fast path as the daemon and the NFQUEUE plane see it.
type fastPathAdapter struct{ *ebpf.FastPath }

func (a fastPathAdapter) Stats() daemon.FastPathStats {
	s := a.FastPath.Stats()
	return daemon.FastPathStats{Mode: "tc", Interfaces: s.Interfaces, Offloaded: s.Offloaded, Packets: s.Packets,
		Bytes: s.Bytes, Passed: s.Passed, HandedOut: s.HandedOver, TakenBack: s.TakenBack, MapFull: s.MapFull, Errors: s.Errs}
}

// loadFastPath loads the kernel fast path for eng's table.
func loadFastPath(eng *firewall.Engine) (fastPathAdapter, error) {
	f, err := ebpf.Load(ebpf.Options{Table: eng.Table()})
	if err != nil {
		return fastPathAdapter{}, err
	}
	return fastPathAdapter{f}, nil
}
