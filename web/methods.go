package web

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"keepstate/config"
	"keepstate/daemon"
	"keepstate/policy"
)

// methods is the API. Names are Kerio Control's where it has them.
var methods map[string]method

func init() {
	methods = map[string]method{
		"Session.login":              {fn: (*call).login},
		"Session.logout":             {fn: (*call).logout},
		"Session.whoAmI":             {fn: (*call).whoAmI},
		"Session.getConfigTimestamp": {fn: (*call).getConfigTimestamp},
		"Session.confirmConfig":      {write: true, fn: (*call).confirmConfig},

		"ProductInfo.get": {fn: (*call).productInfo},
		"Statistics.get":  {fn: (*call).statistics},

		"SecuritySettings.get": {fn: tableGetter("SecuritySettings")},
		"SecuritySettings.set": {write: true, fn: tableSetter("SecuritySettings")},
		"ConnTrack.get":        {fn: (*call).connTrackGet},
		"ConnTrack.set":        {write: true, fn: tableSetter("ConnTrack")},
		"Logging.get":          {fn: tableGetter("Logging")},
		"Logging.set":          {write: true, fn: tableSetter("Logging")},

		"TrafficPolicy.get":   {fn: (*call).trafficPolicyGet},
		"TrafficPolicy.set":   {write: true, fn: (*call).trafficPolicySet},
		"IpAddressGroups.get": {fn: (*call).groupsGet},
		"IpAddressGroups.set": {write: true, fn: (*call).groupsSet},
		"IpServices.get":      {fn: (*call).servicesGet},
		"IpServices.set":      {write: true, fn: (*call).servicesSet},
		"Interfaces.get":      {fn: (*call).interfacesGet},
		"Interfaces.set":      {write: true, fn: (*call).interfacesSet},

		"ActiveConnections.get":          {fn: (*call).connectionsGet},
		"ActiveConnections.kill":         {write: true, fn: (*call).connectionsKill},
		"ActiveConnections.killMatching": {write: true, fn: (*call).connectionsKillMatching},

		"Logs.get":     {fn: (*call).logsGet},
		"Logs.drops":   {fn: (*call).logsDrops},
		"Logs.explain": {fn: (*call).logsExplain},

		"Configuration.exportConfig":  {write: true, fn: (*call).exportConfig}, // it holds the password hashes
		"Configuration.upload":        {write: true, fn: (*call).upload},
		"Configuration.getImportInfo": {write: true, fn: (*call).importInfo},
		"Configuration.apply":         {write: true, fn: (*call).importApply},

		"Insights.get":   {fn: (*call).insightsGet},
		"Insights.apply": {write: true, fn: (*call).insightsApply},

		"Users.get": {fn: (*call).usersGet},
	}
}

// ---- Session ----

type loginParams struct {
	UserName    string `json:"userName"`
	Password    string `json:"password"`
	Application any    `json:"application,omitempty"` // Kerio's client description; logged, not used
}

type loginResult struct {
	Token string `json:"token"`
	User  string `json:"user"`
	Role  string `json:"role"`
}

func (c *call) login() (any, error) {
	var p loginParams
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	s, err := c.s.login(c.r, p.UserName, p.Password)
	if err != nil {
		return nil, err
	}
	setSessionCookie(c.w, s.token, c.s.o.IdleTimeout)
	u, _ := c.s.user(s.user)
	return loginResult{Token: s.token, User: s.user, Role: u.Role}, nil
}

func (c *call) logout() (any, error) {
	c.s.ss.remove(c.sess.token)
	clearSessionCookie(c.w)
	c.s.d.SecurityLog("web_logout", remoteAddr(c.r), "web administration: %s logged out from %s", c.sess.user, remoteAddr(c.r))
	return struct{}{}, nil
}

func (c *call) whoAmI() (any, error) {
	return map[string]string{"user": c.sess.user, "role": c.role()}, nil
}

// Timestamp is Kerio's clientTimestampList element: the configuration's
// generation, which a confirmation must name.
type Timestamp struct {
	Name      string `json:"name"`
	Timestamp uint64 `json:"timestamp"`
}

func (c *call) getConfigTimestamp() (any, error) {
	st := c.s.d.Status()
	return map[string]any{
		"clientTimestampList": []Timestamp{{Name: "config", Timestamp: st.Config.Generation}},
		"pending":             st.Pending,
	}, nil
}

// confirmConfig keeps the change awaiting confirmation. It must name the
// generation it confirms (from getConfigTimestamp), and arrive on a TCP
// connection opened after the change was applied: only a new connection shows
// that the firewall, under the new configuration, still lets its administrator
// in. A confirmation that cannot be sent lets the change roll back.
func (c *call) confirmConfig() (any, error) {
	var p struct {
		ClientTimestampList []Timestamp `json:"clientTimestampList"`
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	st := c.s.d.Status()
	if st.Pending == nil {
		return nil, errorf(codeFailed, "no change awaits confirmation (in force: %s, generation %d)", st.Config.Hash, st.Config.Generation)
	}
	if !slices.Contains(p.ClientTimestampList, Timestamp{Name: "config", Timestamp: st.Config.Generation}) {
		return nil, errorf(codeBadParams, "clientTimestampList does not name the change awaiting confirmation (config generation %d): call Session.getConfigTimestamp", st.Config.Generation)
	}
	if !connStart(c.r).After(st.Config.Applied) {
		c.w.Header().Set("Connection", "close")
		return nil, errorf(codeFailed, "confirmation refused: it came on a connection opened before the change, which does not show that a new one gets through; send it again (this connection is closed now)")
	}
	res, err := c.s.d.Confirm()
	if err != nil {
		return nil, err
	}
	return map[string]any{"confirmed": true, "config": res.Config}, nil
}

// ---- status, statistics ----

func (c *call) productInfo() (any, error) { return c.s.d.Status(), nil }

func (c *call) statistics() (any, error) {
	return map[string]any{"stats": c.s.d.Stats(), "history": c.s.d.History()}, nil
}

// ---- settings tables ----

// settingValue is a setting as JSON: a switch is a bool, a number is a number
// (seconds for durations), anything else is the file's text.
func settingValue(info config.SettingInfo, text string) any {
	switch {
	case info.Unit == "" && (info.Default == "0" || info.Default == "1"):
		return text == "1"
	case info.Unit != "":
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return n
		}
	}
	return text
}

// settingText is the file form of a JSON value for the setting.
func settingText(info config.SettingInfo, raw json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch x := v.(type) {
	case bool:
		if x {
			return "1", nil
		}
		return "0", nil
	case float64:
		if x != float64(int64(x)) {
			return "", fmt.Errorf("%s: want a whole number, got %v", info.Name, x)
		}
		return strconv.FormatInt(int64(x), 10), nil
	case string:
		return x, nil
	case []any: // LogDropReasons as a list
		parts := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("%s: want strings", info.Name)
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("%s: unsupported value %s", info.Name, raw)
}

func tableSettings(table string) []config.SettingInfo {
	var out []config.SettingInfo
	for _, s := range config.AllSettings() {
		if s.Table == table {
			out = append(out, s)
		}
	}
	return out
}

// SettingDoc describes one setting for the page.
type SettingDoc struct {
	Name    string `json:"name"`
	Value   any    `json:"value"`
	Default any    `json:"default"`
	Unit    string `json:"unit,omitempty"`
	Doc     string `json:"doc"`
}

func (c *call) table(table string) (map[string]any, []SettingDoc, error) {
	b, err := c.s.d.Bundle()
	if err != nil {
		return nil, nil, err
	}
	vals := map[string]any{}
	var docs []SettingDoc
	for _, info := range tableSettings(table) {
		text, _ := b.Config.Setting(info.Name)
		v := settingValue(info, text)
		vals[info.Name] = v
		docs = append(docs, SettingDoc{Name: info.Name, Value: v, Default: settingValue(info, info.Default), Unit: info.Unit, Doc: info.Doc})
	}
	return vals, docs, nil
}

func tableGetter(table string) func(*call) (any, error) {
	return func(c *call) (any, error) {
		vals, docs, err := c.table(table)
		if err != nil {
			return nil, err
		}
		return map[string]any{"settings": vals, "describe": docs}, nil
	}
}

type setParams struct {
	Settings map[string]json.RawMessage `json:"settings"`
	Force    bool                       `json:"force,omitempty"` // apply even if it cuts the caller's connection
}

func tableSetter(table string) func(*call) (any, error) {
	return func(c *call) (any, error) {
		var p setParams
		if err := c.decode(&p); err != nil {
			return nil, err
		}
		if len(p.Settings) == 0 {
			return nil, errorf(codeBadParams, "no settings given")
		}
		infos := map[string]config.SettingInfo{}
		for _, info := range tableSettings(table) {
			infos[info.Name] = info
		}
		return c.change(p.Force, func(b *config.Bundle) error {
			names := make([]string, 0, len(p.Settings))
			for n := range p.Settings {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, name := range names {
				info, ok := infos[name]
				if !ok {
					return fmt.Errorf("%s has no setting %q", table, name)
				}
				text, err := settingText(info, p.Settings[name])
				if err != nil {
					return err
				}
				if err := b.Config.SetSetting(name, text); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// ChangeResult answers every change.
type ChangeResult struct {
	Config   daemon.ConfigInfo   `json:"config"`
	Closed   int                 `json:"closedConnections"`
	Kept     int                 `json:"keptConnections"`
	Warnings []string            `json:"warnings,omitempty"`
	Pending  *daemon.PendingInfo `json:"pending,omitempty"`
}

// change puts an edit of the configuration in force through daemon.Change, to
// be confirmed within host.cfg's ConfirmTimeout. Unless force is set, an edit
// that would refuse the caller's own connection is refused first. Idle
// connections are closed and this one ends with the answer, so that the
// confirmation comes on a connection the new configuration let through.
func (c *call) change(force bool, edit func(*config.Bundle) error) (any, error) {
	within := c.s.d.ConfirmTimeout()
	res, err := c.s.d.Change(c.who(), within, func(b *config.Bundle) error {
		if err := edit(b); err != nil {
			return err
		}
		if !force {
			return c.s.selfCut(c.r, b.Config)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.s.afterChange(c.w)
	return ChangeResult{Config: res.Config, Closed: res.Closed, Kept: res.Kept, Warnings: res.Warnings, Pending: res.Pending}, nil
}

func (s *Server) afterChange(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	s.srv.SetKeepAlivesEnabled(false) // closes the idle connections
	s.srv.SetKeepAlivesEnabled(true)
}

// selfCut refuses a configuration under which the caller's own connection to
// this server would be refused: a rule or the default rule denying it, or
// anti-spoofing. Only when keepstate filters this host's own traffic.
func (s *Server) selfCut(r *http.Request, cfg *config.Config) error {
	if !s.o.FiltersInput {
		return nil
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	lap, err1 := netip.ParseAddrPort(fmt.Sprint(local))
	rap, err2 := netip.ParseAddrPort(r.RemoteAddr)
	if err1 != nil || err2 != nil {
		return nil
	}
	rs, err := cfg.Compile()
	if err != nil {
		return err
	}
	src := rap.Addr().Unmap()
	in := rs.IfaceForAddr(src)
	what := ""
	if cfg.Settings.AntiSpoofing && !rs.SpoofOK(in, src) {
		what = "anti-spoofing refuses its source address on the interface it comes from"
	} else {
		q := policy.Query{Src: src, Dst: lap.Addr().Unmap(), Proto: 6, SrcPort: rap.Port(), DstPort: lap.Port(), InIface: in, OutIface: -1}
		i, action := rs.Match(&q)
		if action != policy.Permit {
			what = "the default rule refuses it (" + action.String() + ")"
			if i >= 0 {
				what = fmt.Sprintf("rule %q refuses it (%s)", rs.Rule(i).Name, action)
			}
		}
	}
	if what == "" {
		return nil
	}
	return &rpcError{Code: codeSelfCut, Message: fmt.Sprintf("this change would cut your own connection %s -> %s: %s; nothing changed. Send it again with force to apply it anyway: it rolls back unless confirmed from a new connection", rap, lap, what)}
}

// ---- connection tracking ----

// BytesPerConnection is the memory of one tracked connection, measured by
// `keepstate bench engine` (docs/benchmarks.md: 120.5 to 122.3 B, entries, lists,
// counters and index share).
const BytesPerConnection = 121

// TimeoutUse is what one timeout costs now.
type TimeoutUse struct {
	Setting     string `json:"setting"`
	Seconds     int64  `json:"seconds"`
	Connections int    `json:"connections"` // tracked now under this timeout
	Bytes       int64  `json:"bytes"`       // their memory
}

func (c *call) connTrackGet() (any, error) {
	vals, docs, err := c.table("ConnTrack")
	if err != nil {
		return nil, err
	}
	counts := c.s.d.TimeoutUse()
	var use []TimeoutUse
	for _, dc := range docs {
		if dc.Unit != "s" {
			continue
		}
		n := counts[dc.Name]
		secs, _ := dc.Value.(int64)
		use = append(use, TimeoutUse{Setting: dc.Name, Seconds: secs, Connections: n, Bytes: int64(n) * BytesPerConnection})
	}
	st := c.s.d.Stats()
	return map[string]any{"settings": vals, "describe": docs, "memory": map[string]any{
		"bytesPerConnection": BytesPerConnection, "connections": st.Conntrack.Connections,
		"bytes": int64(st.Conntrack.Connections) * BytesPerConnection, "byTimeout": use,
		"model": "memory = connections held x bytes per connection; connections that idle out are held about as long as their timeout, so doubling a timeout roughly doubles the connections (and memory) it holds",
	}}, nil
}

// ---- rules and lists ----

// Rule is a traffic rule as the API carries it. Source and destination are
// winroute.cfg terms ("host:10.0.0.1", "iface:LAN"); empty means any.
type Rule struct {
	ID             int      `json:"id"`
	Name           string   `json:"name"`
	Enabled        bool     `json:"enabled"`
	Source         []string `json:"source"`
	Destination    []string `json:"destination"`
	Services       []string `json:"services"`
	Action         string   `json:"action"`
	LogPackets     bool     `json:"logPackets"`
	LogConnections bool     `json:"logConnections"`
	Description    string   `json:"description"`
}

func terms(ts []policy.Term) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, policy.FormatTerm(t))
	}
	return out
}

func parseTerms(field string, ss []string) ([]policy.Term, error) {
	var out []policy.Term
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if s == "" || s == "any" {
			continue
		}
		t, err := policy.ParseTerm(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", field, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func ruleOf(r *policy.Rule) Rule {
	return Rule{ID: r.ID, Name: r.Name, Enabled: r.Enabled, Source: terms(r.Source), Destination: terms(r.Destination),
		Services: append([]string{}, r.Services...), Action: r.Action.String(), LogPackets: r.LogPackets,
		LogConnections: r.LogConnections, Description: r.Description}
}

func (c *call) trafficPolicyGet() (any, error) {
	b, err := c.s.d.Bundle()
	if err != nil {
		return nil, err
	}
	rules := make([]Rule, len(b.Config.Policy.Rules))
	for i := range b.Config.Policy.Rules {
		rules[i] = ruleOf(&b.Config.Policy.Rules[i])
	}
	return map[string]any{"rules": rules, "defaultRule": map[string]string{"action": b.Config.Policy.DefaultAction.String()}}, nil
}

type trafficPolicySet struct {
	Rules       []Rule `json:"rules"`
	DefaultRule *struct {
		Action string `json:"action"`
	} `json:"defaultRule,omitempty"`
	Force bool `json:"force,omitempty"`
}

// trafficPolicySet replaces the rules, in the order given. A rule with the id
// of an existing rule keeps what the API does not carry (per-rule options the
// configuration has and this version of the API does not know); id 0 is a new
// rule, numbered after the highest id.
func (c *call) trafficPolicySet() (any, error) {
	var p trafficPolicySet
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	if p.Rules == nil {
		return nil, errorf(codeBadParams, "no rules given (an empty list is [])")
	}
	return c.change(p.Force, func(b *config.Bundle) error {
		m := &b.Config.Policy
		old := map[int]policy.Rule{}
		for _, r := range m.Rules {
			old[r.ID] = r
		}
		rules := make([]policy.Rule, 0, len(p.Rules))
		seen := map[int]bool{}
		for i, in := range p.Rules {
			r := policy.Rule{}
			if in.ID != 0 {
				prev, ok := old[in.ID]
				if !ok {
					return fmt.Errorf("rule %d (%q): no rule has id %d; give 0 for a new rule", i+1, in.Name, in.ID)
				}
				if seen[in.ID] {
					return fmt.Errorf("rule %d (%q): id %d given twice", i+1, in.Name, in.ID)
				}
				seen[in.ID] = true
				r = prev
			}
			a, ok := policy.ParseAction(in.Action)
			if !ok {
				return fmt.Errorf("rule %d (%q): action %q: want Permit, Deny or Drop", i+1, in.Name, in.Action)
			}
			src, err := parseTerms("source", in.Source)
			if err != nil {
				return fmt.Errorf("rule %d (%q): %v", i+1, in.Name, err)
			}
			dst, err := parseTerms("destination", in.Destination)
			if err != nil {
				return fmt.Errorf("rule %d (%q): %v", i+1, in.Name, err)
			}
			var svcs []string
			for _, s := range in.Services {
				if s = strings.TrimSpace(s); s != "" && s != "any" {
					svcs = append(svcs, s)
				}
			}
			r.Name, r.Enabled, r.Action, r.Source, r.Destination, r.Services = in.Name, in.Enabled, a, src, dst, svcs
			r.LogPackets, r.LogConnections, r.Description = in.LogPackets, in.LogConnections, in.Description
			rules = append(rules, r)
		}
		m.Rules = rules
		if p.DefaultRule != nil {
			a, ok := policy.ParseAction(p.DefaultRule.Action)
			if !ok {
				return fmt.Errorf("defaultRule: action %q: want Permit, Deny or Drop", p.DefaultRule.Action)
			}
			m.DefaultAction = a
		}
		return nil
	})
}

// AddressGroup is an IpAddressGroups entry: items are winroute.cfg terms.
type AddressGroup struct {
	Name  string     `json:"name"`
	Items []AddrItem `json:"items"`
}

// AddrItem is one address of a group.
type AddrItem struct {
	ID          int    `json:"id"`
	Enabled     bool   `json:"enabled"`
	Value       string `json:"value"`
	Description string `json:"description"`
}

func (c *call) groupsGet() (any, error) {
	b, err := c.s.d.Bundle()
	if err != nil {
		return nil, err
	}
	out := []AddressGroup{}
	for _, g := range b.Config.Policy.AddressGroups {
		ag := AddressGroup{Name: g.Name, Items: []AddrItem{}}
		for _, it := range g.Items {
			ag.Items = append(ag.Items, AddrItem{ID: it.ID, Enabled: it.Enabled, Value: policy.FormatTerm(it.Addr), Description: it.Description})
		}
		out = append(out, ag)
	}
	return map[string]any{"groups": out}, nil
}

func (c *call) groupsSet() (any, error) {
	var p struct {
		Groups []AddressGroup `json:"groups"`
		Force  bool           `json:"force,omitempty"`
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	return c.change(p.Force, func(b *config.Bundle) error {
		groups := []policy.AddressGroup{}
		for _, g := range p.Groups {
			pg := policy.AddressGroup{Name: g.Name}
			for _, it := range g.Items {
				t, err := policy.ParseTerm(strings.TrimSpace(it.Value))
				if err != nil {
					return fmt.Errorf("address group %q: %v", g.Name, err)
				}
				pg.Items = append(pg.Items, policy.AddrItem{ID: it.ID, Enabled: it.Enabled, Description: it.Description, Addr: t})
			}
			groups = append(groups, pg)
		}
		b.Config.Policy.AddressGroups = groups
		return nil
	})
}

// Service is an IpServices entry in winroute.cfg's form.
type Service struct {
	ID          int    `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Protocol    string `json:"protocol"`
	Condition   string `json:"condition"`
}

func (c *call) servicesGet() (any, error) {
	b, err := c.s.d.Bundle()
	if err != nil {
		return nil, err
	}
	out := []Service{}
	for i := range b.Config.Policy.Services {
		s := &b.Config.Policy.Services[i]
		proto, cond := config.ServiceForm(s)
		out = append(out, Service{ID: s.ID, Name: s.Name, Description: s.Description, Protocol: proto, Condition: cond})
	}
	return map[string]any{"services": out}, nil
}

func (c *call) servicesSet() (any, error) {
	var p struct {
		Services []Service `json:"services"`
		Force    bool      `json:"force,omitempty"`
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	return c.change(p.Force, func(b *config.Bundle) error {
		out := []policy.Service{}
		for _, s := range p.Services {
			ps := policy.Service{ID: s.ID, Name: s.Name, Description: s.Description}
			if err := config.SetServiceForm(&ps, s.Protocol, s.Condition); err != nil {
				return fmt.Errorf("service %q: %v", s.Name, err)
			}
			out = append(out, ps)
		}
		b.Config.Policy.Services = out
		return nil
	})
}

// Interface is an Interfaces entry.
type Interface struct {
	ID          int      `json:"id"`
	Name        string   `json:"name"`
	Group       string   `json:"group"`
	Device      string   `json:"device"`
	Addresses   []string `json:"addresses"`
	Networks    []string `json:"networks"`
	Description string   `json:"description"`
}

func prefixes(ps []netip.Prefix) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func (c *call) interfacesGet() (any, error) {
	b, err := c.s.d.Bundle()
	if err != nil {
		return nil, err
	}
	out := []Interface{}
	for _, i := range b.Config.Policy.Interfaces {
		out = append(out, Interface{ID: i.ID, Name: i.Name, Group: i.Group.String(), Device: i.Device,
			Addresses: prefixes(i.Addresses), Networks: prefixes(i.Networks), Description: i.Description})
	}
	return map[string]any{"interfaces": out}, nil
}

func (c *call) interfacesSet() (any, error) {
	var p struct {
		Interfaces []Interface `json:"interfaces"`
		Force      bool        `json:"force,omitempty"`
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	return c.change(p.Force, func(b *config.Bundle) error {
		out := []policy.Interface{}
		for _, i := range p.Interfaces {
			g, ok := policy.ParseIfaceGroup(i.Group)
			if !ok {
				return fmt.Errorf("interface %q: group %q: want %s", i.Name, i.Group, strings.Join(policy.IfaceGroupNames(), ", "))
			}
			pi := policy.Interface{ID: i.ID, Name: i.Name, Group: g, Device: i.Device, Description: i.Description}
			for _, s := range i.Addresses {
				pf, err := policy.ParseInterfacePrefix(s)
				if err != nil {
					return fmt.Errorf("interface %q: address %v", i.Name, err)
				}
				pi.Addresses = append(pi.Addresses, pf)
			}
			for _, s := range i.Networks {
				pf, err := policy.ParsePrefix(s)
				if err != nil {
					return fmt.Errorf("interface %q: network %v", i.Name, err)
				}
				pi.Networks = append(pi.Networks, pf)
			}
			out = append(out, pi)
		}
		b.Config.Policy.Interfaces = out
		return nil
	})
}

// ---- active connections ----

// ConnQuery is Kerio's query: a filter (conntrack filter words, "src 10.1.0.2
// dport 8080"), an order and a page.
type ConnQuery struct {
	Filter  string `json:"filter"`
	OrderBy []struct {
		ColumnName string `json:"columnName"`
		Direction  string `json:"direction"` // "Asc" or "Desc"
	} `json:"orderBy"`
	Start int `json:"start"`
	Limit int `json:"limit"`
}

const maxConnPage = 1000

func (c *call) connectionsGet() (any, error) {
	var p struct {
		Query ConnQuery `json:"query"`
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	return c.s.queryConns(p.Query)
}

func (s *Server) queryConns(q ConnQuery) (map[string]any, error) {
	f, err := daemon.ParseFilter(strings.Fields(q.Filter))
	if err != nil {
		return nil, errorf(codeBadParams, "%v", err)
	}
	if q.Limit <= 0 || q.Limit > maxConnPage {
		q.Limit = 100
	}
	if q.Start < 0 {
		return nil, errorf(codeBadParams, "start %d: want 0 or more", q.Start)
	}
	list := s.d.ListConns(f, 0)
	conns := list.Conns
	for i := len(q.OrderBy) - 1; i >= 0; i-- {
		less, ok := connOrder[q.OrderBy[i].ColumnName]
		if !ok {
			return nil, errorf(codeBadParams, "orderBy: no column %q (want %s)", q.OrderBy[i].ColumnName, strings.Join(connColumns(), ", "))
		}
		desc := strings.EqualFold(q.OrderBy[i].Direction, "desc")
		slices.SortStableFunc(conns, func(a, b daemon.Conn) int {
			if desc {
				return less(b, a)
			}
			return less(a, b)
		})
	}
	page := []daemon.Conn{}
	if q.Start < len(conns) {
		page = conns[q.Start:min(q.Start+q.Limit, len(conns))]
	}
	return map[string]any{"list": page, "totalItems": list.Matched, "tableSize": list.Total}, nil
}

func cmpNum[T int | uint16 | uint64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

var connOrder = map[string]func(a, b daemon.Conn) int{
	"id":    func(a, b daemon.Conn) int { return cmpNum(a.ID, b.ID) },
	"proto": func(a, b daemon.Conn) int { return strings.Compare(a.Proto, b.Proto) },
	"src":   func(a, b daemon.Conn) int { return compareAddr(a.Src, b.Src) },
	"dst":   func(a, b daemon.Conn) int { return compareAddr(a.Dst, b.Dst) },
	"sport": func(a, b daemon.Conn) int { return cmpNum(a.SrcPort, b.SrcPort) },
	"dport": func(a, b daemon.Conn) int { return cmpNum(a.DstPort, b.DstPort) },
	"state": func(a, b daemon.Conn) int { return strings.Compare(a.State, b.State) },
	"age":   func(a, b daemon.Conn) int { return cmpNum(a.Age, b.Age) },
	"idle":  func(a, b daemon.Conn) int { return cmpNum(a.Idle, b.Idle) },
	"bytes": func(a, b daemon.Conn) int { return cmpNum(a.BytesOrig+a.BytesReply, b.BytesOrig+b.BytesReply) },
	"rule":  func(a, b daemon.Conn) int { return strings.Compare(a.Rule, b.Rule) },
}

func connColumns() []string {
	out := make([]string, 0, len(connOrder))
	for k := range connOrder {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func compareAddr(a, b string) int {
	x, e1 := netip.ParseAddr(a)
	y, e2 := netip.ParseAddr(b)
	if e1 != nil || e2 != nil {
		return strings.Compare(a, b)
	}
	return x.Compare(y)
}

func (c *call) connectionsKill() (any, error) {
	var p struct {
		IDs []uint64 `json:"ids"`
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	if len(p.IDs) == 0 || len(p.IDs) > daemon.MaxFilterWords/2 {
		return nil, errorf(codeBadParams, "ids: give 1 to %d connection ids", daemon.MaxFilterWords/2)
	}
	words := make([]string, 0, 2*len(p.IDs))
	for _, id := range p.IDs {
		words = append(words, "id", strconv.FormatUint(id, 10))
	}
	return c.s.kill(c, words)
}

// connectionsKillMatching ends every connection a filter selects, e.g. "rule 3":
// every connection a rule admitted.
func (c *call) connectionsKillMatching() (any, error) {
	var p struct {
		Filter string `json:"filter"`
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	if strings.TrimSpace(p.Filter) == "" {
		return nil, errorf(codeBadParams, "filter is empty: to end every connection, say so with a filter such as \"proto tcp\" and \"proto udp\"")
	}
	return c.s.kill(c, strings.Fields(p.Filter))
}

func (s *Server) kill(c *call, words []string) (any, error) {
	f, err := daemon.ParseFilter(words)
	if err != nil {
		return nil, errorf(codeBadParams, "%v", err)
	}
	res := s.d.FlushConns(f)
	s.d.SecurityLog("web_kill", remoteAddr(c.r), "web administration: %s ended %d connection(s) (%s)", c.sess.user, res.Flushed, f)
	return map[string]int{"killed": res.Flushed}, nil
}

// ---- logs ----

func (c *call) logsGet() (any, error) {
	var p struct {
		LogName    string `json:"logName"`
		CountLines int    `json:"countLines"`
		FromLine   int    `json:"fromLine"`
		Contains   string `json:"contains,omitempty"`
	}
	p.FromLine = -1
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	if p.CountLines == 0 {
		p.CountLines = 100
	}
	page, err := c.s.d.LogLines(strings.ToLower(p.LogName), p.FromLine, p.CountLines, p.Contains)
	if err != nil {
		return nil, errorf(codeBadParams, "%v", err)
	}
	type line struct {
		Content string `json:"content"`
	}
	vp := make([]line, len(page.Lines))
	for i, l := range page.Lines {
		vp[i] = line{l}
	}
	return map[string]any{"viewport": vp, "totalItems": page.TotalLines, "fromLine": page.FromLine}, nil
}

func (c *call) logsDrops() (any, error) {
	var p struct {
		Since uint64 `json:"since"`
		Limit int    `json:"limit"`
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	if p.Limit <= 0 || p.Limit > 1000 {
		p.Limit = 200
	}
	return c.s.d.Drops(p.Since, p.Limit), nil
}

func (c *call) logsExplain() (any, error) {
	var p struct {
		ID uint64 `json:"id"`
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	x, err := c.s.d.ExplainDrop(p.ID)
	if err != nil {
		return nil, errorf(codeBadParams, "%v", err)
	}
	return x, nil
}

// ---- configuration ----

func (c *call) exportConfig() (any, error) {
	ex, err := c.s.d.Export()
	if err != nil {
		return nil, err
	}
	c.s.d.SecurityLog("web_export", remoteAddr(c.r), "web administration: %s exported the configuration %s", c.sess.user, ex.Hash)
	return map[string]any{"fileName": "keepstate-" + ex.Hash + ".tgz", "bundle": base64.StdEncoding.EncodeToString(ex.Bundle),
		"hash": ex.Hash, "unconfirmed": ex.Unconfirmed}, nil
}

func (c *call) upload() (any, error) {
	var p struct {
		FileName string `json:"fileName"`
		Data     []byte `json:"data"` // base64
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	if len(p.Data) == 0 {
		return nil, errorf(codeBadParams, "data is empty")
	}
	id := c.s.uploads.put(c.sess.token, p.FileName, p.Data, c.s.now())
	return map[string]string{"fileId": id}, nil
}

// ImportInfo describes an uploaded configuration before it is applied.
type ImportInfo struct {
	FileName string   `json:"fileName"`
	Summary  string   `json:"summary"`
	Hash     string   `json:"hash"`
	Changed  []string `json:"changedSettings"` // from the defaults
	Problems []string `json:"problems,omitempty"`
}

func (c *call) importInfo() (any, error) {
	var p struct {
		FileID string `json:"fileId"`
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	up, ok := c.s.uploads.get(c.sess.token, p.FileID, c.s.now())
	if !ok {
		return nil, errorf(codeBadParams, "no upload %q in this session (uploads are kept %v)", p.FileID, uploadTTL)
	}
	return inspectUpload(up), nil
}

func (c *call) importApply() (any, error) {
	var p struct {
		FileID string `json:"fileId"`
		Force  bool   `json:"force,omitempty"`
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	up, ok := c.s.uploads.get(c.sess.token, p.FileID, c.s.now())
	if !ok {
		return nil, errorf(codeBadParams, "no upload %q in this session (uploads are kept %v)", p.FileID, uploadTTL)
	}
	return c.s.applyUpload(c, up, p.Force)
}

func (s *Server) applyUpload(c *call, up upload, force bool) (any, error) {
	b, err := readUpload(up)
	if err != nil {
		return nil, &daemon.ConfigError{Source: up.name, Err: err}
	}
	return c.change(force, func(cur *config.Bundle) error {
		if isBundle(up.data) {
			*cur = *b
		} else {
			cur.Config = b.Config // a lone winroute.cfg keeps the companions in force
		}
		return nil
	})
}

// ---- insights ----

func (c *call) insightsGet() (any, error) {
	var p struct {
		After uint64 `json:"after"`
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	return c.s.d.Insights(p.After), nil
}

// insightsApply puts one of an insight's fixes in force, to be confirmed within
// host.cfg's ConfirmTimeout like any change from here.
func (c *call) insightsApply() (any, error) {
	var p struct {
		ID  string `json:"id"`
		Fix int    `json:"fix"`
	}
	if err := c.decode(&p); err != nil {
		return nil, err
	}
	if p.ID == "" {
		return nil, errorf(codeBadParams, "id: which insight (Insights.get lists them)")
	}
	res, err := c.s.d.ApplyInsight(p.ID, p.Fix, c.s.d.ConfirmTimeout())
	if err != nil {
		return nil, err
	}
	c.s.afterChange(c.w)
	c.s.d.SecurityLog("web_insight", remoteAddr(c.r), "web administration: %s applied fix %d of insight %s", c.sess.user, p.Fix, p.ID)
	return ChangeResult{Config: res.Import.Config, Closed: res.Import.Closed, Kept: res.Import.Kept, Warnings: res.Import.Warnings, Pending: res.Import.Pending}, nil
}

// ---- users ----

func (c *call) usersGet() (any, error) {
	type user struct {
		Name     string `json:"name"`
		Role     string `json:"role"`
		Password bool   `json:"hasPassword"`
	}
	out := []user{}
	for _, u := range c.s.d.Users() {
		out = append(out, user{u.Name, u.Role, u.PasswordHash != ""})
	}
	return map[string]any{"users": out}, nil
}
