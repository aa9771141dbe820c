package config

import (
	"bytes"
	"encoding/xml"
	"net/netip"
	"strconv"
	"strings"

	"keepstate/policy"
)

// Marshal writes c as winroute.cfg. The output is deterministic: every table and
// every setting (defaults included, so the file documents itself), then every list,
// in a fixed order with a fixed layout. Items without an Id get the next free one,
// and each list's identityCounter is its highest Id, so Marshal(Parse(Marshal(c)))
// equals Marshal(c) byte for byte.
func Marshal(c *Config) []byte {
	var w xmlWriter
	w.header()
	for _, table := range tableOrder {
		w.open("table", table)
		for i := range settingDefs {
			def := &settingDefs[i]
			if def.table == table {
				w.variable(def.name, def.format(c))
			}
		}
		w.close("table")
	}
	m := &c.Policy

	ifaces := make([]record, len(m.Interfaces))
	for i, ifc := range m.Interfaces {
		ifaces[i] = record{ifc.ID, []string{ifc.Name, ifc.Group.String(), ifc.Device,
			joinPrefixes(ifc.Addresses), joinPrefixes(ifc.Networks), ifc.Description}}
	}
	w.list(listInterfaces, ifaces)

	var items []record
	for _, g := range m.AddressGroups {
		for _, it := range g.Items {
			items = append(items, record{it.ID, []string{formatBool(it.Enabled), it.Description, g.Name, policy.FormatTerm(it.Addr)}})
		}
	}
	w.list(listAddrGroups, items)

	services := make([]record, len(m.Services))
	for i := range m.Services {
		s := &m.Services[i]
		services[i] = record{s.ID, []string{s.Name, s.Description, formatProtocol(s.Protocol), formatCondition(s)}}
	}
	w.list(listServices, services)

	rules := make([]record, len(m.Rules))
	for i := range m.Rules {
		r := &m.Rules[i]
		svc := "any"
		if len(r.Services) > 0 {
			svc = strings.Join(r.Services, listSep)
		}
		rules[i] = record{r.ID, []string{r.Name, formatBool(r.Enabled), policy.FormatTerms(r.Source), policy.FormatTerms(r.Destination),
			svc, r.Action.String(), formatBool(r.LogPackets), formatBool(r.LogConnections),
			r.Handshake.String(), formatIdleTimeout(r.IdleTimeout), strconv.Itoa(r.MaxConnectionsPerSource), r.Description}}
	}
	w.list(listRules, rules)
	w.buf.WriteString("</config>\n")
	return w.buf.Bytes()
}

func joinPrefixes(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, listSep)
}

// record is one listitem: its Id and its other fields in listFields order (Id first).
type record struct {
	id     int
	fields []string
}

// xmlWriter writes the one layout every keepstate file uses: two-space indent, one
// element per line, text escaped by encoding/xml.
type xmlWriter struct {
	buf   bytes.Buffer
	depth int
}

func (w *xmlWriter) header() {
	w.buf.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n<config>\n")
	w.depth = 1
}

func (w *xmlWriter) indent() {
	for i := 0; i < w.depth; i++ {
		w.buf.WriteString("  ")
	}
}

// open writes <elem name="..."> (name may be empty) plus extra raw attributes.
func (w *xmlWriter) open(elem, name string, extra ...string) {
	w.indent()
	w.buf.WriteString("<" + elem)
	if name != "" {
		w.buf.WriteString(` name="`)
		xml.EscapeText(&w.buf, []byte(name))
		w.buf.WriteString(`"`)
	}
	for _, e := range extra {
		w.buf.WriteString(" " + e)
	}
	w.buf.WriteString(">\n")
	w.depth++
}

func (w *xmlWriter) close(elem string) {
	w.depth--
	w.indent()
	w.buf.WriteString("</" + elem + ">\n")
}

func (w *xmlWriter) variable(name, value string) {
	w.indent()
	w.buf.WriteString(`<variable name="` + name + `">`)
	xml.EscapeText(&w.buf, []byte(value))
	w.buf.WriteString("</variable>\n")
}

// list writes a list, numbering records that have no Id (or repeat an earlier one)
// after the highest Id.
func (w *xmlWriter) list(name string, recs []record) {
	next := 0
	for _, r := range recs {
		next = max(next, r.id)
	}
	seen := map[int]bool{}
	for i := range recs {
		if recs[i].id <= 0 || seen[recs[i].id] {
			next++
			recs[i].id = next
		}
		seen[recs[i].id] = true
	}
	w.open("list", name, `identityCounter="`+strconv.Itoa(next)+`"`)
	names := listFields[name]
	for _, r := range recs {
		w.open("listitem", "")
		w.variable("Id", strconv.Itoa(r.id))
		for j, v := range r.fields {
			if def, optional := ruleOptionDefaults[names[j+1]]; optional && name == listRules && v == def {
				continue
			}
			w.variable(names[j+1], v)
		}
		w.close("listitem")
	}
	w.close("list")
}
