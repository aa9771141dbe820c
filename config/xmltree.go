package config

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
)

// The files share one shape (Kerio's): <config> holding <table name> blocks of
// <variable name>value</variable> and <list name identityCounter> blocks of
// <listitem> records of variables. readTree reads that shape with the position of
// every element, reporting structural problems and carrying on; meaning is given
// by the decoders of each file.

type xvar struct {
	name, value string
	pos         pos
}

type xitem struct {
	pos  pos
	vars []xvar
}

type xblock struct {
	list  bool
	name  string
	pos   pos
	vars  []xvar  // table
	items []xitem // list
}

type treeReader struct {
	dec   *xml.Decoder
	d     *diag
	fatal bool // a syntax error: nothing after it can be trusted
}

// readTree returns the blocks of data, or ok=false after an XML syntax error.
func readTree(d *diag, data []byte) (blocks []xblock, ok bool) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	r := &treeReader{dec: dec, d: d}
	seenRoot := false
	for {
		tok, p := r.next()
		if tok == nil {
			if !r.fatal && !seenRoot {
				d.errorf(p, "no <config> element")
			}
			return blocks, !r.fatal
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "config" || seenRoot {
				d.errorf(p, "unexpected <%s>: the file holds one <config> element", t.Name.Local)
				r.skip()
				continue
			}
			seenRoot = true
			r.attrs(t, p)
			blocks = r.config()
		default:
			r.other(tok, p, "outside <config>")
		}
		if r.fatal {
			return blocks, false
		}
	}
}

// next returns the next token and the position where it starts, or nil at the end
// of input or after a syntax error (recorded).
func (r *treeReader) next() (xml.Token, pos) {
	l, c := r.dec.InputPos()
	p := pos{l, c}
	if r.fatal {
		return nil, p
	}
	tok, err := r.dec.Token()
	if err != nil {
		if err != io.EOF {
			r.syntaxError(err, p)
		}
		return nil, p
	}
	return tok, p
}

func (r *treeReader) syntaxError(err error, p pos) {
	r.fatal = true
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		r.d.errorf(pos{line: se.Line}, "XML syntax error: %s", se.Msg)
		return
	}
	r.d.errorf(p, "XML error: %v", err)
}

// skip skips the rest of the element just started.
func (r *treeReader) skip() {
	l, c := r.dec.InputPos()
	if err := r.dec.Skip(); err != nil {
		r.syntaxError(err, pos{l, c})
	}
}

// other handles a token that is not an element we expect: comments and processing
// instructions are fine, text is not, directives (DOCTYPE, entities) are refused.
func (r *treeReader) other(tok xml.Token, p pos, where string) {
	switch t := tok.(type) {
	case xml.CharData:
		if s := strings.TrimSpace(string(t)); s != "" {
			r.d.errorf(p, "unexpected text %q %s", clip(s), where)
		}
	case xml.Directive:
		r.d.errorf(p, "XML directives (DOCTYPE, ENTITY) are not allowed")
	}
}

// attrs checks that t has only the attributes allowed and returns their values.
func (r *treeReader) attrs(t xml.StartElement, p pos, allowed ...string) map[string]string {
	vals := map[string]string{}
	for _, a := range t.Attr {
		name := a.Name.Local
		if a.Name.Space != "" {
			name = a.Name.Space + ":" + name
		}
		known := false
		for _, k := range allowed {
			known = known || k == name
		}
		switch {
		case !known:
			r.d.errorf(p, "<%s> has unknown attribute %q%s", t.Name.Local, name, suggest(name, allowed))
		case vals[name] != "":
			r.d.errorf(p, "<%s> has attribute %q twice", t.Name.Local, name)
		default:
			vals[name] = a.Value
		}
	}
	return vals
}

func (r *treeReader) config() []xblock {
	var blocks []xblock
	for {
		tok, p := r.next()
		switch t := tok.(type) {
		case nil, xml.EndElement:
			return blocks
		case xml.StartElement:
			switch t.Name.Local {
			case "table", "list":
				if b, ok := r.block(t, p); ok {
					blocks = append(blocks, b)
				}
			default:
				r.d.errorf(p, "unknown element <%s> in <config>%s; want <table> or <list>", t.Name.Local, suggest(t.Name.Local, []string{"table", "list"}))
				r.skip()
			}
		default:
			r.other(tok, p, "in <config>")
		}
	}
}

func (r *treeReader) block(t xml.StartElement, p pos) (xblock, bool) {
	b := xblock{list: t.Name.Local == "list", pos: p}
	var a map[string]string
	if b.list {
		a = r.attrs(t, p, "name", "identityCounter")
		if v, ok := a["identityCounter"]; ok {
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				r.d.errorf(p, "identityCounter %q is not a whole number", v)
			}
		}
	} else {
		a = r.attrs(t, p, "name")
	}
	b.name = a["name"]
	if b.name == "" {
		r.d.errorf(p, "<%s> without a name attribute", t.Name.Local)
	}
	child := "variable"
	if b.list {
		child = "listitem"
	}
	for {
		tok, cp := r.next()
		switch ct := tok.(type) {
		case nil:
			return b, false
		case xml.EndElement:
			return b, b.name != ""
		case xml.StartElement:
			switch {
			case ct.Name.Local != child:
				r.d.errorf(cp, "unknown element <%s> in <%s>; want <%s>", ct.Name.Local, t.Name.Local, child)
				r.skip()
			case b.list:
				r.attrs(ct, cp)
				b.items = append(b.items, xitem{pos: cp, vars: r.variables("listitem")})
			default:
				if v, ok := r.variable(ct, cp); ok {
					b.vars = append(b.vars, v)
				}
			}
		default:
			r.other(tok, cp, "in <"+t.Name.Local+">")
		}
	}
}

// variables reads the <variable> children of a listitem.
func (r *treeReader) variables(parent string) []xvar {
	var vars []xvar
	for {
		tok, p := r.next()
		switch t := tok.(type) {
		case nil, xml.EndElement:
			return vars
		case xml.StartElement:
			if t.Name.Local != "variable" {
				r.d.errorf(p, "unknown element <%s> in <%s>; want <variable>", t.Name.Local, parent)
				r.skip()
				continue
			}
			if v, ok := r.variable(t, p); ok {
				vars = append(vars, v)
			}
		default:
			r.other(tok, p, "in <"+parent+">")
		}
	}
}

// variable reads <variable name="...">text</variable>.
func (r *treeReader) variable(t xml.StartElement, p pos) (xvar, bool) {
	v := xvar{name: r.attrs(t, p, "name")["name"], pos: p}
	if v.name == "" {
		r.d.errorf(p, "<variable> without a name attribute")
	}
	var text strings.Builder
	for {
		tok, cp := r.next()
		switch ct := tok.(type) {
		case nil:
			return v, false
		case xml.EndElement:
			v.value = text.String()
			return v, v.name != ""
		case xml.CharData:
			text.Write(ct)
		case xml.StartElement:
			r.d.errorf(cp, "unexpected <%s> inside <variable name=%q>: a variable holds text only", ct.Name.Local, v.name)
			r.skip()
		default:
			r.other(tok, cp, "")
		}
	}
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
