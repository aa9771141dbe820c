package conformance

import (
	"fmt"

	"keepstate/config"
	"keepstate/firewall"
	"keepstate/packet"
	"keepstate/reason"
)

// Mode is the pair of settings compared.
type Mode uint8

const (
	// Strict: Require3WayHandshake=1 against nf_conntrack_tcp_loose=0. Only a SYN
	// opens a connection.
	Strict Mode = iota + 1
	// Loose: Require3WayHandshake=0 against nf_conntrack_tcp_loose=1. A connection
	// may be picked up mid-stream.
	Loose
)

func (m Mode) String() string {
	switch m {
	case Strict:
		return "strict"
	case Loose:
		return "loose"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Modes are both modes, in the order reports list them.
var Modes = []Mode{Strict, Loose}

// Verdict is one side's answer for one frame.
type Verdict struct {
	Pass bool
	// Why a frame did not pass: a keepstate reason, or for the kernel "invalid"
	// (conntrack) or "bridge" (refused before conntrack).
	Why string
}

func (v Verdict) String() string {
	if v.Pass {
		return "pass"
	}
	return "drop (" + v.Why + ")"
}

// Kernel verdict words.
const (
	KernelInvalid = "invalid"
	KernelBridge  = "refused by the bridge before conntrack"
)

// EngineConfig is the keepstate configuration a comparison runs in mode m: the
// built-in permit-all rule, and none of the features the kernel's conntrack has no
// counterpart for (anti-spoofing, per-source limits, adaptive timeouts).
func EngineConfig(m Mode) *config.Config {
	c := config.Default()
	s := &c.Settings
	s.Require3WayHandshake = m == Strict
	s.AntiSpoofing = false
	s.ConnLimitPerSource = 0
	s.NewConnLimitPerSourcePerMinute = 0
	s.AdaptiveStartPercent, s.AdaptiveEndPercent = 0, 0
	return c
}

// clockStep is how far keepstate's clock advances per frame: far below every
// timeout, as the kernel's real time is during a replay.
const clockStep = 1000 // ns

// DecideKeepstate runs the frames of s through a fresh keepstate engine in mode m.
func DecideKeepstate(s *Stream, m Mode) ([]Verdict, error) {
	eng, err := EngineConfig(m).NewEngine(firewall.Options{})
	if err != nil {
		return nil, err
	}
	out := make([]Verdict, len(s.Frames))
	var p packet.Parsed
	var d firewall.Decision
	now := int64(1_700_000_000_000_000_000)
	for i := range s.Frames {
		now += clockStep
		// The frames are whole: their length is their length on the wire.
		f := s.Frames[i].Data
		eng.DecideCutInto(f, len(f), packet.LinkEthernet, -1, now, &p, &d)
		if d.Dropped() {
			out[i] = Verdict{Why: d.Reason.String()}
			if d.Reason == reason.None {
				out[i].Why = d.Action.String()
			}
			continue
		}
		out[i] = Verdict{Pass: true}
	}
	return out, nil
}
