package insight

import (
	"keepstate/config"
	"keepstate/dataplane/replay"
	"keepstate/firewall"
	"keepstate/packet"
)

// WatchReplay has a replay feed m on the capture's clock: every dropped packet,
// placed in its capture for the evidence's explain commands, and a tick at every
// expiry sweep. cfg is the configuration the replay's engine was built from; it
// is given to m at the first tick, so that an insight about it (a shadowed rule)
// dates from the capture's start. The engine's OnConnEnd should call m.ConnEnd.
func WatchReplay(o *replay.Options, m *Monitor, cfg *config.Config) {
	eng := o.Engine
	configured := false
	o.Tick = func(now int64) {
		if !configured {
			m.SetConfig(cfg, eng.Ruleset(), now)
			configured = true
		}
		m.Tick(now, TableOf(eng))
	}
	o.ObserveDrop = func(t int64, path string, n int64, p *packet.Parsed, d *firewall.Decision) {
		ev := DropOf(t, p, d)
		ev.Capture, ev.Packet = path, n
		m.Drop(&ev)
	}
}

// ConnEnd gives the detectors a connection the engine's table ended: an
// OnConnEnd hook.
func (m *Monitor) ConnEnd(e firewall.ConnEnd) {
	ie := EndOf(e)
	m.End(&ie)
}
