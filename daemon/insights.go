package daemon

import (
	"errors"
	"fmt"
	"time"

	"keepstate/config"
	"keepstate/insight"
	"keepstate/logging"
)

// insightTick is how often the detectors look at the table and close the
// insights whose evidence stopped.
const insightTick = time.Second

// newInsights builds the detectors' monitor and feed, for the configuration cfg
// the daemon starts with.
func (d *Daemon) newInsights(cfg *config.Config) {
	mon := insight.New(insight.Options{ExplainConfig: d.o.ConfigPath, OnChange: d.insightChanged})
	mon.SetMemory(d.o.BytesPerConnection)
	mon.SetConfig(cfg, d.eng.Ruleset(), d.now().UnixNano())
	d.insights = insight.NewFeed(mon)
	d.rep.Watch = d.insights
}

// startInsights sets the detectors going on the daemon's clock.
func (d *Daemon) startInsights() {
	d.insights.Start(insightTick, func() (int64, insight.Table) {
		return d.now().UnixNano(), insight.TableOf(d.eng)
	})
}

// insightChanged writes an insight that opens or closes to warning.log and tells
// the operator: the line an engineer on call greps for.
func (d *Daemon) insightChanged(c insight.Change) {
	in := &c.Insight
	var kind, msg string
	switch c.Event {
	case "opened":
		kind = "insight_opened"
		msg = fmt.Sprintf("insight %s opened (%s, %s): %s", in.ID, in.Kind, in.Severity, in.Summary)
		if len(in.Fix) > 0 {
			msg += fmt.Sprintf(" [keepstate insights show %s]", in.ID)
		}
	case "closed":
		kind = "insight_closed"
		msg = fmt.Sprintf("insight %s closed (%s): no new evidence since %s; %d %s from %s",
			in.ID, in.Kind, in.Last.Local().Format(time.DateTime), in.Count, in.CountOf, in.First.Local().Format(time.DateTime))
	default:
		return
	}
	d.logs.logger.Warning(&logging.WarningEvent{Time: d.now(), Kind: kind, Message: msg})
	d.say("%s", msg)
}

// InsightsResult answers CmdInsights: the insights (open ones first, then the
// recently closed) and the changes after the sequence number asked for.
type InsightsResult struct {
	Insights []insight.Insight `json:"insights"`
	Changes  []insight.Change  `json:"changes"`
	Seq      uint64            `json:"seq"` // the latest change: ask with after=Seq for what comes next
	Stats    insight.Stats     `json:"stats"`
}

// Insights returns what the detectors found and the changes since after (0:
// every change kept). The admin socket's `insights` and the web API call it.
func (d *Daemon) Insights(after uint64) *InsightsResult {
	mon := d.insights.Monitor()
	changes, seq := mon.Changes(after)
	return &InsightsResult{Insights: mon.Insights(), Changes: changes, Seq: seq, Stats: mon.Stats()}
}

// Insight returns one insight by id.
func (d *Daemon) Insight(id string) (*insight.Insight, error) {
	in, ok := d.insights.Monitor().Get(id)
	if !ok {
		return nil, fmt.Errorf("no insight %q (keepstate insights lists them)", id)
	}
	return &in, nil
}

// ApplyInsightResult answers CmdInsightApply.
type ApplyInsightResult struct {
	Insight string       `json:"insight"`
	Fix     insight.Fix  `json:"fix"`
	Import  ImportResult `json:"import"`
}

// ApplyInsight puts fix number fix (from 1 as the insight lists them; 0: its
// first configuration change) of an open insight in force, through the path of
// `config import --confirm-within`: the change is made on the configuration in
// force, checked and compiled like any import, and rolls back by itself unless
// `config confirm` comes within confirmWithin, which is required: a fix proposed
// by a detector is never kept without someone confirming it.
func (d *Daemon) ApplyInsight(id string, fix int, confirmWithin time.Duration) (*ApplyInsightResult, error) {
	if confirmWithin <= 0 {
		return nil, errors.New("an insight's fix is applied with a confirmation deadline (confirm_within), then kept by config_confirm")
	}
	cfg, f, err := d.insights.Monitor().FixedConfig(id, fix)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("insight %s fix %q", id, f.Title)
	res, err := d.Import(name, config.Marshal(cfg), confirmWithin)
	if err != nil {
		return nil, err
	}
	d.warn("insight_fix_applied", "insight %s: fix %q in force, rolls back unless confirmed within %v", id, f.Title, confirmWithin)
	return &ApplyInsightResult{Insight: id, Fix: f, Import: *res}, nil
}
