package diagnose

import (
	"keepstate/config"
	"keepstate/firewall"
	"keepstate/packet"
)

// ExplainFrame walks one frame, arrived on interface in (an index of cfg's
// interfaces, -1 if unknown) at now (Unix ns), through a fresh engine built from
// cfg: what the rules and checks make of it with nothing tracked yet. The web
// administration's "explain this packet" calls it for a drop of the live log.
func ExplainFrame(cfg *config.Config, frame []byte, wireLen int, link packet.LinkType, in int, now int64) (*Explanation, error) {
	eng, err := cfg.NewEngine(firewall.Options{})
	if err != nil {
		return nil, err
	}
	return explainPacket(eng, frame, wireLen, link, in, now), nil
}
