package insight

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"keepstate/config"
	"keepstate/policy"
)

// fixSpec is a fix as a detector proposes it: a change to the configuration, or an
// operation.
type fixSpec struct {
	scope   string // "rule", "global" or "operation"
	title   string
	cost    string
	change  change // zero for an operation
	command string
}

// change is one edit of winroute.cfg: a setting, a rule's option, or a rule
// moved before another.
type change struct {
	setting, value string // a setting of the tables, by its name in the file
	ruleID         int    // with option or before: the rule (its configuration id)
	option         string // a rule's field: its state options, or Enabled
	before         int    // move the rule to just before the rule with this id
}

func (c change) isZero() bool { return c.setting == "" && c.option == "" && c.before == 0 }

// Fix scopes.
const (
	scopeRule      = "rule"
	scopeGlobal    = "global"
	scopeOperation = "operation"
)

// errNoRuleOptions: the configuration model has no per-rule option of that name.
var errNoRuleOptions = errors.New("this configuration has no such per-rule option")

// apply makes the change on c, which it modifies.
func (ch change) apply(c *config.Config) error {
	if ch.setting != "" {
		return c.SetSetting(ch.setting, ch.value)
	}
	rules := c.Policy.Rules
	at := slices.IndexFunc(rules, func(r policy.Rule) bool { return r.ID == ch.ruleID })
	if at < 0 {
		return fmt.Errorf("no rule with id %d in the configuration in force", ch.ruleID)
	}
	if ch.before != 0 {
		to := slices.IndexFunc(rules, func(r policy.Rule) bool { return r.ID == ch.before })
		if to < 0 || to > at {
			return fmt.Errorf("no rule with id %d before rule %d", ch.before, ch.ruleID)
		}
		r := rules[at]
		c.Policy.Rules = slices.Insert(slices.Delete(rules, at, at+1), to, r)
		return nil
	}
	return setRuleOption(&rules[at], ch.option, ch.value)
}

// Changed returns a copy of cfg with the change made: the configuration the fix
// would put in force. The copy goes through the file format, so that it is the
// configuration an import of the diff would give.
func (ch change) changed(cfg *config.Config) (*config.Config, error) {
	c, err := config.Parse("winroute.cfg", config.Marshal(cfg))
	if err != nil {
		return nil, err
	}
	if err := ch.apply(c); err != nil {
		return nil, err
	}
	// What the import would check: the result must load and compile.
	out := config.Marshal(c)
	c2, err := config.Parse("winroute.cfg", out)
	if err != nil {
		return nil, err
	}
	if _, err := c2.Compile(); err != nil {
		return nil, err
	}
	return c2, nil
}

// cfgHeading picks the lines that say where a change of winroute.cfg is: the
// table or list, or the name of the item (a rule's, for a rule option).
func cfgHeading(line string) bool {
	l := strings.TrimSpace(line)
	return strings.HasPrefix(l, "<table name=") || strings.HasPrefix(l, `<variable name="Name">`)
}

// renderFixes writes each proposed fix against the configuration in force. A
// change that cannot be made on it (a rule that is gone, an option this
// configuration lacks, a value it has already) is left out: every change listed
// can be applied. kept are the specs of the fixes returned, in order.
func (v *env) renderFixes(specs []fixSpec) (out []Fix, kept []fixSpec) {
	out = []Fix{}
	for _, s := range specs {
		f := Fix{Scope: s.scope, Title: s.title, Cost: s.cost, Command: s.command}
		if !s.change.isZero() {
			if v.cfg == nil {
				continue
			}
			after, err := s.change.changed(v.cfg)
			if err != nil {
				continue
			}
			f.Diff = unifiedDiff(string(config.Marshal(v.cfg)), string(config.Marshal(after)),
				"winroute.cfg (in force)", "winroute.cfg (with this fix)", cfgHeading)
			if f.Diff == "" {
				continue
			}
			f.Applicable = true
		}
		out = append(out, f)
		kept = append(kept, s)
	}
	return out, kept
}

// FixedConfig returns the configuration that fix n (from 1, as the insight lists
// them; 0: the first that is a configuration change) of an open insight would put
// in force, made against the configuration in force now, and that fix.
func (m *Monitor) FixedConfig(id string, n int) (*config.Config, Fix, error) {
	m.mu.Lock()
	defer m.unlock()
	r := m.byID(id)
	if r == nil {
		return nil, Fix{}, fmt.Errorf("no insight %q", id)
	}
	if !r.open {
		return nil, Fix{}, fmt.Errorf("insight %s is closed: its evidence stopped, so its fix is no longer proposed", id)
	}
	if m.env.cfg == nil {
		return nil, Fix{}, errors.New("no configuration in force")
	}
	fixes, specs := m.env.renderFixes(r.g.describe(&m.env).fixes)
	if n == 0 {
		for i := range fixes {
			if fixes[i].Applicable {
				n = i + 1
				break
			}
		}
		if n == 0 {
			return nil, Fix{}, fmt.Errorf("insight %s proposes no configuration change", id)
		}
	}
	if n < 1 || n > len(fixes) {
		return nil, Fix{}, fmt.Errorf("insight %s lists %d fix(es); there is no fix %d", id, len(fixes), n)
	}
	f := fixes[n-1]
	if !f.Applicable {
		return nil, f, fmt.Errorf("fix %d of insight %s is an operation, not a configuration change: run %s", n, id, f.Command)
	}
	after, err := specs[n-1].change.changed(m.env.cfg)
	if err != nil {
		return nil, f, err
	}
	return after, f, nil
}
