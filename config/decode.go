package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"keepstate/policy"
)

// MaxFileSize bounds every configuration file read, so a wrong path (a disk image, a
// capture) fails fast instead of filling memory.
const MaxFileSize = 32 << 20

// Lists of winroute.cfg and their fields, in the order Marshal writes them.
const (
	listInterfaces = "Interfaces"
	listAddrGroups = "IpAccessList"
	listServices   = "IPServices"
	listRules      = "TrafficRules_v2"
)

var listOrder = []string{listInterfaces, listAddrGroups, listServices, listRules}

var listFields = map[string][]string{
	listInterfaces: {"Id", "Name", "Group", "Device", "Addresses", "Networks", "Description"},
	listAddrGroups: {"Id", "Enabled", "Desc", "Name", "Value"},
	listServices:   {"Id", "Name", "Description", "Protocol", "Condition"},
	listRules:      {"Id", "Name", "Enabled", "Src", "Dst", "Service", "Action", "LogPackets", "LogConnections", fieldHandshake, fieldIdleTimeout, fieldMaxPerSrc, "Description"},
	listUsers:      {"Id", "Name", "Role", "PasswordHash"}, // UserDB.cfg
}

// Parse reads a winroute.cfg. name is used in error positions. On failure the error
// is an ErrorList holding every problem found.
//
// A setting absent from the file keeps its default; a list absent from the file is
// the built-in default's list (so a file holding one table changes only that), while
// a list present but empty is empty.
func Parse(name string, data []byte) (*Config, error) {
	d := &diag{file: name}
	if len(data) > MaxFileSize {
		d.errorf(pos{}, "file is %d bytes, larger than the %d allowed", len(data), MaxFileSize)
		return nil, d.errs.Err()
	}
	blocks, ok := readTree(d, data)
	if !ok {
		return nil, d.errs.Err()
	}
	def := Default()
	dec := &decoder{
		d: d, def: def, c: &Config{Settings: def.Settings, Policy: policy.Model{DefaultAction: def.Policy.DefaultAction}},
		settingPos: map[string]pos{}, blockPos: map[string]pos{},
		ifacePos: map[string]pos{}, devicePos: map[string]pos{}, groupPos: map[string]pos{},
		servicePos: map[string]pos{}, rulePos: map[string]pos{}, groupEdges: map[string][]edge{},
		idleTimeouts: map[time.Duration]bool{},
	}
	for _, b := range blocks {
		dec.block(b)
	}
	dec.defaultMissingLists()
	dec.checkRefs()
	dec.c.checkSettings(d, func(name string) pos { return dec.settingPos[name] })
	if len(d.errs) == 0 {
		// A safety net: everything Compile checks should already have a position.
		if _, err := policy.Compile(&dec.c.Policy); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				d.errorf(pos{}, "%s", line)
			}
		}
	}
	if err := d.errs.Err(); err != nil {
		return nil, err
	}
	d.warnings.sort()
	dec.c.warnings = d.warnings
	return dec.c, nil
}

type edge struct {
	to  string
	pos pos
}

// ref is a name used somewhere, checked once every list has been read.
type ref struct {
	pos  pos
	kind string // "address group", "interface", "service"
	name string
}

type decoder struct {
	d          *diag
	c          *Config
	def        *Config // the built-in configuration, for what the file leaves out
	settingPos map[string]pos
	blockPos   map[string]pos
	ifacePos   map[string]pos
	devicePos  map[string]pos
	groupPos   map[string]pos // first item of each group
	servicePos map[string]pos
	rulePos    map[string]pos
	groupEdges map[string][]edge
	refs       []ref
	// idleTimeouts are the distinct rule IdleTimeout values so far.
	idleTimeouts map[time.Duration]bool
}

func (dec *decoder) block(b xblock) {
	kind := blockKind(b)
	key := kind + " " + b.name
	if first, dup := dec.blockPos[key]; dup {
		dec.d.errorf(b.pos, "%s %q appears twice (first at line %d)", kind, b.name, first.line)
		return
	}
	dec.blockPos[key] = b.pos
	isTable := slices.Contains(tableOrder, b.name)
	isList := slices.Contains(listOrder, b.name)
	switch {
	case !b.list && isTable:
		dec.table(b)
	case b.list && isList:
		dec.list(b)
	case !b.list && isList:
		dec.d.errorf(b.pos, "%q is a list: write <list name=%q>", b.name, b.name)
	case b.list && isTable:
		dec.d.errorf(b.pos, "%q is a table: write <table name=%q>", b.name, b.name)
	case b.list:
		dec.d.errorf(b.pos, "unknown list %q%s", b.name, suggest(b.name, listOrder))
	default:
		dec.d.errorf(b.pos, "unknown table %q%s", b.name, suggest(b.name, tableOrder))
	}
}

func (dec *decoder) table(b xblock) {
	decodeTable(dec.d, b, settingDefs, settingByName, dec.c, dec.settingPos)
}

// decodeTable sets target's fields from the variables of table b. seen records
// where each setting was given, across tables, to report repeats.
func decodeTable[T any](d *diag, b xblock, defs []valueDef[T], byName map[string]*valueDef[T], target *T, seen map[string]pos) {
	for _, v := range b.vars {
		def, ok := byName[v.name]
		switch {
		case !ok:
			names := make([]string, len(defs))
			for i := range defs {
				names[i] = defs[i].name
			}
			d.errorf(v.pos, "unknown setting %q%s", v.name, suggest(v.name, names))
			continue
		case def.table != b.name:
			d.errorf(v.pos, "setting %s belongs in <table name=%q>, not %q", v.name, def.table, b.name)
			continue
		}
		if first, dup := seen[v.name]; dup {
			d.errorf(v.pos, "setting %s given twice (first at line %d)", v.name, first.line)
			continue
		}
		seen[v.name] = v.pos
		if err := def.parse(target, v.value); err != nil {
			d.errorf(v.pos, "%s: %v", v.name, err)
		}
	}
}

// fields is one listitem's variables by name, unknown and repeated ones reported.
type fields struct {
	dec  *decoder
	list string
	item xitem
	vals map[string]xvar
}

func (dec *decoder) fields(list string, it xitem) *fields {
	f := &fields{dec: dec, list: list, item: it, vals: map[string]xvar{}}
	known := listFields[list]
	for _, v := range it.vars {
		if !slices.Contains(known, v.name) {
			dec.d.errorf(v.pos, "unknown field %q in %s%s", v.name, list, suggest(v.name, known))
			continue
		}
		if first, dup := f.vals[v.name]; dup {
			dec.d.errorf(v.pos, "field %s given twice (first at line %d)", v.name, first.pos.line)
			continue
		}
		f.vals[v.name] = v
	}
	return f
}

func (f *fields) get(name string) (xvar, bool) {
	v, ok := f.vals[name]
	return v, ok
}

// pos returns where field name is, or the item's position when it is absent.
func (f *fields) pos(name string) pos {
	if v, ok := f.vals[name]; ok {
		return v.pos
	}
	return f.item.pos
}

func (f *fields) need(name string) (xvar, bool) {
	v, ok := f.vals[name]
	if !ok {
		f.dec.d.errorf(f.item.pos, "%s item lacks the field %s", f.list, name)
	}
	return v, ok
}

func (f *fields) text(name string) string { return f.vals[name].value }

// name reads a required name field.
func (f *fields) name(field string) (string, bool) {
	v, ok := f.need(field)
	if !ok {
		return "", false
	}
	if err := policy.CheckName(v.value); err != nil {
		f.dec.d.errorf(v.pos, "%s: %v", field, err)
		return "", false
	}
	return v.value, true
}

func (f *fields) boolean(name string, def bool) bool {
	v, ok := f.vals[name]
	if !ok {
		return def
	}
	b, err := parseBool(v.value)
	if err != nil {
		f.dec.d.errorf(v.pos, "%s: %v", name, err)
	}
	return b
}

// id reads the optional Id field; 0 means "assign one when writing".
func (f *fields) id(seen map[int]pos) int {
	v, ok := f.vals["Id"]
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(v.value))
	if err != nil || n < 1 {
		f.dec.d.errorf(v.pos, "Id: want a whole number from 1, got %q", v.value)
		return 0
	}
	if first, dup := seen[n]; dup {
		f.dec.d.errorf(v.pos, "duplicate Id %d in %s (first at line %d)", n, f.list, first.line)
		return 0
	}
	seen[n] = v.pos
	return n
}

func (dec *decoder) list(b xblock) {
	m := &dec.c.Policy
	ids := map[int]pos{}
	switch b.name {
	case listInterfaces:
		m.Interfaces = []policy.Interface{}
		for _, it := range b.items {
			dec.iface(dec.fields(b.name, it), ids)
		}
	case listAddrGroups:
		m.AddressGroups = []policy.AddressGroup{}
		for _, it := range b.items {
			dec.addrItem(dec.fields(b.name, it), ids)
		}
	case listServices:
		m.Services = []policy.Service{}
		for _, it := range b.items {
			dec.service(dec.fields(b.name, it), ids)
		}
	case listRules:
		m.Rules = []policy.Rule{}
		for _, it := range b.items {
			dec.rule(dec.fields(b.name, it), ids)
		}
	}
}

// unique records a name in seen, reporting a duplicate.
func (dec *decoder) unique(seen map[string]pos, what, name string, p pos) {
	if first, dup := seen[name]; dup {
		dec.d.errorf(p, "%s %q defined twice (first at line %d)", what, name, first.line)
		return
	}
	seen[name] = p
}

func (dec *decoder) iface(f *fields, ids map[int]pos) {
	ifc := policy.Interface{ID: f.id(ids), Description: f.text("Description")}
	name, ok := f.name("Name")
	ifc.Name = name
	if ok {
		dec.unique(dec.ifacePos, "interface", name, f.pos("Name"))
	}
	if v, ok := f.need("Group"); ok {
		g, ok := policy.ParseIfaceGroup(strings.TrimSpace(v.value))
		if !ok {
			dec.d.errorf(v.pos, "Group: unknown interface group %q%s (want %s)", v.value, suggest(strings.TrimSpace(v.value), policy.IfaceGroupNames()), strings.Join(policy.IfaceGroupNames(), ", "))
		}
		ifc.Group = g
	}
	if v, ok := f.get("Device"); ok && v.value != "" {
		if err := checkDevice(v.value); err != nil {
			dec.d.errorf(v.pos, "Device: %v", err)
		} else {
			dec.unique(dec.devicePos, "device", v.value, v.pos)
		}
		ifc.Device = v.value
	}
	for _, s := range splitList(f.text("Addresses")) {
		p, err := policy.ParseInterfacePrefix(s)
		if err != nil {
			dec.d.errorf(f.pos("Addresses"), "Addresses: %v", err)
			continue
		}
		ifc.Addresses = append(ifc.Addresses, p)
	}
	for _, s := range splitList(f.text("Networks")) {
		p, err := policy.ParsePrefix(s)
		if err != nil {
			dec.d.errorf(f.pos("Networks"), "Networks: %v", err)
			continue
		}
		ifc.Networks = append(ifc.Networks, p)
	}
	dec.c.Policy.Interfaces = append(dec.c.Policy.Interfaces, ifc)
}

// checkDevice accepts what Linux accepts as an interface name.
func checkDevice(s string) error {
	if len(s) > 15 || s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n") {
		return fmt.Errorf("%q is not a Linux interface name (at most 15 characters, no '/', ':' or spaces)", s)
	}
	return nil
}

func (dec *decoder) addrItem(f *fields, ids map[int]pos) {
	it := policy.AddrItem{ID: f.id(ids), Enabled: f.boolean("Enabled", true), Description: f.text("Desc")}
	name, ok := f.name("Name")
	if v, has := f.need("Value"); has {
		t, err := policy.ParseTerm(strings.TrimSpace(v.value))
		switch {
		case err != nil:
			dec.d.errorf(v.pos, "Value: %v", err)
			ok = false
		case t.Kind == policy.TermHost || t.Kind == policy.TermPrefix || t.Kind == policy.TermRange:
		case t.Kind == policy.TermAddressGroup:
			dec.refs = append(dec.refs, ref{v.pos, "address group", t.Name})
			if name != "" {
				dec.groupEdges[name] = append(dec.groupEdges[name], edge{t.Name, v.pos})
			}
		default:
			dec.d.errorf(v.pos, "Value: an address group holds host:, prefix:, range: or group: values, not %q", v.value)
			ok = false
		}
		it.Addr = t
	} else {
		ok = false
	}
	if name == "" {
		return
	}
	groups := &dec.c.Policy.AddressGroups
	i := slices.IndexFunc(*groups, func(g policy.AddressGroup) bool { return g.Name == name })
	if i < 0 {
		dec.groupPos[name] = f.item.pos
		*groups = append(*groups, policy.AddressGroup{Name: name})
		i = len(*groups) - 1
	}
	if !ok {
		return
	}
	g := &(*groups)[i]
	for _, prev := range g.Items {
		if prev.Addr == it.Addr {
			dec.d.errorf(f.pos("Value"), "address group %q lists %s twice", name, policy.FormatTerm(it.Addr))
			return
		}
	}
	g.Items = append(g.Items, it)
}

func (dec *decoder) service(f *fields, ids map[int]pos) {
	s := policy.Service{ID: f.id(ids), Description: f.text("Description")}
	if name, ok := f.name("Name"); ok {
		s.Name = name
		dec.unique(dec.servicePos, "service", name, f.pos("Name"))
	}
	if v, ok := f.need("Protocol"); ok {
		p, err := parseProtocol(v.value)
		if err != nil {
			dec.d.errorf(v.pos, "Protocol: %v", err)
			return
		}
		s.Protocol = p
	} else {
		return
	}
	if v, ok := f.get("Condition"); ok {
		ports, types, err := parseCondition(s.Protocol, v.value)
		if err != nil {
			dec.d.errorf(v.pos, "Condition: %v", err)
		}
		s.Ports, s.ICMPTypes = ports, types
	}
	dec.c.Policy.Services = append(dec.c.Policy.Services, s)
}

func (dec *decoder) rule(f *fields, ids map[int]pos) {
	r := policy.Rule{
		ID: f.id(ids), Enabled: f.boolean("Enabled", true), Description: f.text("Description"),
		LogPackets: f.boolean("LogPackets", false), LogConnections: f.boolean("LogConnections", false),
	}
	if name, ok := f.name("Name"); ok {
		r.Name = name
		dec.unique(dec.rulePos, "rule", name, f.pos("Name"))
	}
	if v, ok := f.need("Action"); ok {
		a, ok := policy.ParseAction(strings.TrimSpace(v.value))
		if !ok {
			dec.d.errorf(v.pos, "Action: want Permit, Deny or Drop, got %q%s", v.value, suggest(strings.TrimSpace(v.value), []string{"Permit", "Deny", "Drop"}))
		}
		r.Action = a
	}
	r.Source = dec.terms(f, "Src")
	r.Destination = dec.terms(f, "Dst")
	if v, ok := f.get("Service"); ok && strings.TrimSpace(v.value) != "any" {
		names := splitList(v.value)
		if len(names) == 0 {
			dec.d.errorf(v.pos, "Service is empty: write any, or service names separated by %q", listSep)
		}
		for _, n := range names {
			if err := policy.CheckName(n); err != nil {
				dec.d.errorf(v.pos, "Service: %v", err)
				continue
			}
			if slices.Contains(r.Services, n) {
				dec.d.errorf(v.pos, "Service: %q listed twice", n)
				continue
			}
			r.Services = append(r.Services, n)
			dec.refs = append(dec.refs, ref{v.pos, "service", n})
		}
	}
	dec.stateOptions(f, &r)
	dec.c.Policy.Rules = append(dec.c.Policy.Rules, r)
}

// terms reads a rule's Src or Dst: "any" (also when absent) or terms joined by ";".
func (dec *decoder) terms(f *fields, field string) []policy.Term {
	v, ok := f.get(field)
	if !ok || strings.TrimSpace(v.value) == "any" {
		return nil
	}
	parts := splitList(v.value)
	if len(parts) == 0 {
		dec.d.errorf(v.pos, "%s is empty: write any, or terms separated by %q", field, listSep)
	}
	var out []policy.Term
	for _, s := range parts {
		t, err := policy.ParseTerm(s)
		if err != nil {
			dec.d.errorf(v.pos, "%s: %v", field, err)
			continue
		}
		switch t.Kind {
		case policy.TermAny:
			dec.d.errorf(v.pos, "%s: any cannot be combined with other terms", field)
			continue
		case policy.TermAddressGroup:
			dec.refs = append(dec.refs, ref{v.pos, "address group", t.Name})
		case policy.TermInterface:
			dec.refs = append(dec.refs, ref{v.pos, "interface", t.Name})
		}
		if slices.Contains(out, t) {
			dec.d.errorf(v.pos, "%s: %s listed twice", field, s)
			continue
		}
		out = append(out, t)
	}
	return out
}

// defaultMissingLists gives every list the file does not have the built-in one.
func (dec *decoder) defaultMissingLists() {
	def := dec.def.Policy
	m := &dec.c.Policy
	for _, l := range listOrder {
		if _, ok := dec.blockPos["list "+l]; ok {
			continue
		}
		switch l {
		case listInterfaces:
			m.Interfaces = def.Interfaces
			for _, ifc := range m.Interfaces {
				dec.ifacePos[ifc.Name] = pos{}
			}
		case listAddrGroups:
			m.AddressGroups = def.AddressGroups
		case listServices:
			m.Services = def.Services
			for _, s := range m.Services {
				dec.servicePos[s.Name] = pos{}
			}
		case listRules:
			m.Rules = def.Rules
		}
	}
}

func (dec *decoder) checkRefs() {
	known := map[string]map[string]pos{"address group": dec.groupPos, "interface": dec.ifacePos, "service": dec.servicePos}
	for _, r := range dec.refs {
		names := known[r.kind]
		if _, ok := names[r.name]; ok {
			continue
		}
		hint := suggest(r.name, mapKeys(names))
		if r.kind == "interface" && hint == "" {
			if _, isDev := dec.devicePos[r.name]; isDev {
				hint = " (iface: takes the interface's Name, not its Device)"
			}
		}
		dec.d.errorf(r.pos, "no %s %q%s", r.kind, r.name, hint)
	}
	dec.checkGroupCycles()
}

// checkGroupCycles reports each nested-group cycle once, at the item closing it.
func (dec *decoder) checkGroupCycles() {
	state := map[string]int{} // 1 on the path, 2 done
	var path []string
	var visit func(g string)
	visit = func(g string) {
		state[g] = 1
		path = append(path, g)
		for _, e := range dec.groupEdges[g] {
			switch state[e.to] {
			case 0:
				visit(e.to)
			case 1:
				start := slices.Index(path, e.to)
				cycle := append(slices.Clone(path[start:]), e.to)
				dec.d.errorf(e.pos, "address groups nest in a cycle: %s", strings.Join(cycle, " -> "))
			}
		}
		path = path[:len(path)-1]
		state[g] = 2
	}
	for _, g := range dec.c.Policy.AddressGroups {
		if state[g.Name] == 0 {
			visit(g.Name)
		}
	}
}

func mapKeys(m map[string]pos) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out) // suggestions must not depend on map order
	return out
}
