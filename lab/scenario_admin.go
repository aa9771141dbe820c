//go:build linux

package lab

import (
	"fmt"
	"time"
)

// Administration while connections run: a configuration import must not cut
// them (stops and restarts: scenario_stops.go).

func reloadScenario() Scenario {
	return Scenario{
		Name:  "reload",
		Title: "a configuration import during a transfer: the transfer completes, no reset",
		run:   runReload,
	}
}

// The transfer: chunks written at a steady pace for transferTime.
const (
	transferTime  = 3 * time.Second
	transferChunk = 16 << 10
)

func runReload(s *session) error {
	c, err := Dial(s.ctx, s.topo.Client, ServerAddr, PortSink, connectTimeout, nil)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	before, err := s.d.Stats(s.ctx)
	if err != nil {
		return err
	}
	type sent struct {
		n   int64
		err error
	}
	done := make(chan sent, 1)
	go func() {
		var total int64
		buf := make([]byte, transferChunk)
		_ = c.SetWriteDeadline(time.Now().Add(transferTime + 30*time.Second))
		for end := time.Now().Add(transferTime); time.Now().Before(end); {
			n, err := c.Write(buf)
			total += int64(n)
			if err != nil {
				done <- sent{total, err}
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		done <- sent{total, nil}
	}()
	s.say("client sends to the sink for %v", transferTime)
	if err := s.sleep(transferTime / 3); err != nil {
		return err
	}
	if err := s.importConfig("reloaded", map[string]string{"ConnLimitPerSource": "100", "TcpEstablishedTimeout": "3600"}); err != nil {
		return err
	}
	w := <-done
	var count int64
	if w.err == nil {
		count, err = SinkCount(c, 10*time.Second)
	} else {
		err = w.err
	}
	s.check("transfer", "the transfer completes: the server received every byte sent",
		err == nil && count == w.n, fmt.Sprintf("sent %d bytes, server counted %d: %s", w.n, count, Outcome(err)))

	s.checkLog("kept.log", "warning.log", "(0 connection(s) closed, 1 kept)")
	st, err := s.d.Status(s.ctx)
	if err != nil {
		return err
	}
	s.check("generation", "the imported configuration is in force",
		st.Config.Generation == 2, fmt.Sprintf("configuration generation %d (%s)", st.Config.Generation, st.Config.Hash))
	after, err := s.d.Stats(s.ctx)
	if err != nil {
		return err
	}
	s.check("drops", "keepstate dropped nothing",
		after.Dropped == before.Dropped, fmt.Sprintf("%d packets decided, %d dropped during the transfer (%v)",
			after.Packets-before.Packets, after.Dropped-before.Dropped, after.DropsByReason))
	return nil
}
