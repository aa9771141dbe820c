//go:build linux

package lab

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// Rules and limits: a Deny rule answers, a per-host limit refuses the excess.

func denyScenario() Scenario {
	return Scenario{
		Name:  "deny",
		Title: "a Deny rule answers with a TCP RST: the client fails fast; Drop stays silent",
		run:   runDeny,
	}
}

// fastRefusal bounds how long a refused connect may take: one round trip through
// the firewall, well under the 1 s of a SYN retransmission.
const fastRefusal = time.Second

func runDeny(s *session) error {
	t0 := time.Now()
	c, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortDeny, connectTimeout, nil)
	took := time.Since(t0)
	if c != nil {
		c.Close()
	}
	s.check("deny.refused", "a connection to the denied service is refused at once (RST)",
		Outcome(err) == "refused" && took < fastRefusal,
		fmt.Sprintf("connect to %s:%d: %s after %.3f s", ServerAddr, PortDeny, Outcome(err), took.Seconds()))
	s.checkLog("deny.log", "debug.log", "packet dropped: Traffic rule: Refused service")

	const dropPort = 8082 // no rule: the default rule drops
	t0 = time.Now()
	c, err = Dial(s.ctx, s.topo.Client, ServerAddr, dropPort, 2*time.Second, nil)
	took = time.Since(t0)
	if c != nil {
		c.Close()
	}
	s.check("drop.silent", "a connection the default rule drops gets no answer",
		Outcome(err) == "timeout", fmt.Sprintf("connect to %s:%d: %s after %.1f s", ServerAddr, dropPort, Outcome(err), took.Seconds()))
	st, err := s.d.Stats(s.ctx)
	if err != nil {
		return err
	}
	s.check("answers", "keepstate sent an answer for the Deny and none for the Drop",
		st.Plane.Answers >= 1 && st.DropsByReason["default_rule"] >= 1,
		fmt.Sprintf("%d answer(s) sent; drops by reason %v", st.Plane.Answers, st.DropsByReason))
	return nil
}

const labConnLimit = 20

func limitScenario() Scenario {
	return Scenario{
		Name:  "limit",
		Title: fmt.Sprintf("many concurrent connections from one host against ConnLimitPerSource=%d", labConnLimit),
		// Only the concurrent limit: the per-minute one (600) is not in play.
		Settings: map[string]string{"ConnLimitPerSource": fmt.Sprint(labConnLimit), "NewConnLimitPerSourcePerMinute": "0"},
		run:      runLimit,
	}
}

func runLimit(s *session) error {
	const attempts = labConnLimit + 10
	var (
		mu       sync.Mutex
		conns    []net.Conn
		outcomes = map[string]int{}
		wg       sync.WaitGroup
	)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortEcho, 4*time.Second, nil)
			if err == nil {
				err = RoundTrip(c, "hello", connectTimeout)
			}
			mu.Lock()
			defer mu.Unlock()
			outcomes[Outcome(err)]++
			if c != nil {
				conns = append(conns, c)
			}
		}()
	}
	wg.Wait()
	s.say("client opened %d connections at once and keeps them open", attempts)
	s.check("limit.outcomes", fmt.Sprintf("%d connections work, the other %d get no answer", labConnLimit, attempts-labConnLimit),
		outcomes["ok"] == labConnLimit && outcomes["timeout"] == attempts-labConnLimit,
		fmt.Sprintf("%d ok, %d timeout, %d other (%v)", outcomes["ok"], outcomes["timeout"], attempts-outcomes["ok"]-outcomes["timeout"], outcomes))
	s.checkLog("limit.warning", "warning.log", fmt.Sprintf("Connection limit for source address '%s' reached (limit: %d)", ClientAddr, labConnLimit))
	st, err := s.d.Stats(s.ctx)
	if err != nil {
		return err
	}
	s.check("limit.counter", "the drops are counted as connection_limit",
		st.DropsByReason["connection_limit"] >= uint64(attempts-labConnLimit),
		fmt.Sprintf("drops by reason %v", st.DropsByReason))
	return nil
}
