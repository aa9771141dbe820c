package insight

import (
	"fmt"
	"strings"

	"keepstate/policy"
)

// shadowed reports, each time a configuration is put in force, the enabled rules
// that can never match (policy.Ruleset.Shadowed): every connection they describe
// is decided by rules before them, or they describe none. Such an insight closes
// when a configuration without that shadow is put in force, not by time.
type shadowed struct {
	base
	groups map[string]*shadowGroup
}

func newShadowed() *shadowed { return &shadowed{groups: map[string]*shadowGroup{}} }

func (*shadowed) kind() Kind { return RuleShadowed }

type shadowGroup struct {
	tracked
	rule     ruleRef
	position int // from 1
	of       int // rules in the configuration
	action   policy.Action
	by       []ruleRef
	byAction []policy.Action
	partial  bool // the analysis stopped at its bound: more may be shadowed
}

func (s *shadowed) configured(m *Monitor, now int64) {
	rs := m.env.rules
	var found []policy.Shadow
	complete := true
	if rs != nil {
		found, complete = rs.Shadowed()
	}
	keep := map[string]bool{}
	for _, sh := range found {
		r := rs.Rule(sh.Rule)
		// The same rule (by id and name) shadowed by the same rules stays the
		// same insight across configuration changes.
		var byNames []string
		for _, b := range sh.By {
			byNames = append(byNames, rs.Rule(b).Name)
		}
		key := fmt.Sprintf("%d|%s|%s", r.ID, r.Name, strings.Join(byNames, ";"))
		keep[key] = true
		if s.groups[key] != nil {
			continue
		}
		if len(s.groups) >= maxGroups {
			m.stats.GroupsDropped++
			continue
		}
		g := &shadowGroup{rule: m.env.ruleAt(sh.Rule), position: sh.Rule + 1, of: rs.NumRules(), action: r.Action, partial: !complete}
		for _, b := range sh.By {
			g.by = append(g.by, m.env.ruleAt(b))
			g.byAction = append(g.byAction, rs.Rule(b).Action)
		}
		g.seen(now, 1)
		s.groups[key] = g
		g.rec = m.raise(s, key, g, 0)
	}
	for key, g := range s.groups {
		if !keep[key] && g.rec != nil && g.rec.open {
			m.closeRecord(g.rec, now) // calls forget
		}
	}
}

func (s *shadowed) forget(key string) { delete(s.groups, key) }

func (g *shadowGroup) describe(v *env) description {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Rule '%s' (%s, %d of %d) can never match: ", g.rule.name, g.action, g.position, g.of)
	sev := Info
	switch len(g.by) {
	case 0:
		sb.WriteString("it describes no connection at all (an address group with no enabled address, or sources, destinations and services that exclude each other).")
	case 1:
		fmt.Fprintf(&sb, "rule '%s' (%s) before it decides every connection it describes.", g.by[0].name, g.byAction[0])
	default:
		var names []string
		for _, b := range g.by {
			names = append(names, "'"+b.name+"'")
		}
		fmt.Fprintf(&sb, "rules %s before it together decide every connection it describes.", strings.Join(names, ", "))
	}
	differs := false
	for _, a := range g.byAction {
		differs = differs || a != g.action
	}
	if differs {
		sev = Warning
		sb.WriteString(" What it says is not what happens: those connections get another action than this rule's.")
	} else if len(g.by) > 0 {
		sb.WriteString(" It is redundant: the earlier rules already do what it says.")
	}

	var fixes []fixSpec
	if len(g.by) == 1 && differs {
		fixes = append(fixes, fixSpec{scope: scopeRule, title: fmt.Sprintf("move rule '%s' above rule '%s'", g.rule.name, g.by[0].name),
			change: change{ruleID: g.rule.id, before: g.by[0].id},
			cost: fmt.Sprintf("the connections both rules describe get %s (rule '%s') instead of %s (rule '%s'): check that this is what was meant",
				g.action, g.rule.name, g.byAction[0], g.by[0].name)})
	}
	fixes = append(fixes, fixSpec{scope: scopeRule, title: fmt.Sprintf("disable rule '%s'", g.rule.name),
		change: change{ruleID: g.rule.id, option: "Enabled", value: "0"},
		cost:   "none: it decides nothing now, and the configuration stops saying it does"})
	fixes = v.usableFixes(fixes)
	d := description{
		severity: sev, countOf: "rule", summary: sb.String(), fixes: fixes,
		figures: map[string]float64{"rule_id": float64(g.rule.id), "position": float64(g.position), "shadowed_by": float64(len(g.by))},
	}
	for i, b := range g.by {
		d.hosts = append(d.hosts, Host{Addr: fmt.Sprintf("rule '%s'", b.name), Role: "shadowed by", Note: g.byAction[i].String()})
	}
	d.notes = append(d.notes, "Found by comparing the compiled rules, with sources, destinations (addresses or interfaces) and services taken as independent: a rule reported here matches nothing first whatever the traffic.")
	if g.partial {
		d.notes = append(d.notes, "The analysis stopped at its work bound: other rules may be shadowed too.")
	}
	return d
}
