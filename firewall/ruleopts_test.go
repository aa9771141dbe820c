package firewall

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"keepstate/conntrack"
	"keepstate/packet"
	"keepstate/policy"
	"keepstate/reason"
)

// optsModel: the test model with a second permitted service, database on 1521
// from the LAN, so one rule can carry an option while another does not.
func optsModel(web, db func(*policy.Rule)) policy.Model {
	m := testModel()
	m.Services = append(m.Services, policy.Service{ID: 2, Name: "Oracle", Protocol: policy.ProtoTCP, Ports: []policy.PortRange{{Lo: 1521, Hi: 1521}}})
	m.Rules = append(m.Rules, policy.Rule{ID: 30, Name: "app -> db", Enabled: true, Source: []policy.Term{policy.PrefixTerm(lanNet)},
		Destination: []policy.Term{policy.PrefixTerm(dmzNet)}, Services: []string{"Oracle"}, Action: policy.Permit})
	if web != nil {
		web(&m.Rules[0])
	}
	if db != nil {
		db(&m.Rules[2])
	}
	return m
}

var dbServer = netip.MustParseAddrPort("10.2.0.5:1521")

// handshake opens a connection from c to s through e at time at.
func handshake(t *testing.T, e *Engine, c, s netip.AddrPort, at int64) {
	t.Helper()
	var p packet.Parsed
	for i, st := range []struct {
		b  []byte
		in int
	}{
		{tcp(c, s, packet.SYN, 100, 0), 0},
		{tcp(s, c, packet.SYN|packet.ACK, 500, 101), 1},
		{tcp(c, s, packet.ACK, 101, 501), 0},
	} {
		if d := e.Decide(st.b, packet.LinkRaw, st.in, at+int64(i), &p); d.Action != Accept {
			t.Fatalf("handshake %v > %v step %d: %v %v", c, s, i, d.Action, d.Reason)
		}
	}
}

// Handshake=loose on one rule picks up its connections seen from the server's
// side only, while another rule's stay strict and a packet the rules refuse gets
// strict tracking's drop, not a Deny's RST.
func TestRuleHandshakeLoose(t *testing.T) {
	e := newEngine(t, optsModel(func(r *policy.Rule) { r.Handshake = policy.HandshakeLoose }, nil), DefaultSettings(), nil)
	var p packet.Parsed
	dmz := 1

	d := e.Decide(tcp(tomcat, web, packet.SYN|packet.ACK, 500, 101), packet.LinkRaw, dmz, t0, &p)
	if d.Action != Accept || !d.Created || !d.Reversed || d.Rule != 0 {
		t.Fatalf("SYN-ACK of the loose rule: %v/%v created %v reversed %v rule %d", d.Action, d.Reason, d.Created, d.Reversed, d.Rule)
	}
	if d.Conn.Meta.Handshake != conntrack.HandshakeLoose {
		t.Errorf("meta %+v", d.Conn.Meta)
	}
	d = e.Decide(tcp(tomcat, web, packet.ACK|packet.PSH, 501, 101), packet.LinkRaw, dmz, t0+1, &p)
	if d.Action != Accept || d.Created {
		t.Errorf("its data: %v/%v created %v", d.Action, d.Reason, d.Created)
	}
	// The strict rule's server answering a SYN the firewall did not see.
	client := netip.MustParseAddrPort("10.1.0.7:40001")
	d = e.Decide(tcp(dbServer, client, packet.SYN|packet.ACK, 900, 77), packet.LinkRaw, dmz, t0+2, &p)
	if d.Action != Drop || d.Reason != reason.HandshakeNotCompleted || d.Rule != 2 || d.Created {
		t.Errorf("SYN-ACK of the strict rule: %v/%v rule %d created %v", d.Action, d.Reason, d.Rule, d.Created)
	}
	// Tomcat opening towards the LAN mid-stream: the Deny rule matches, yet
	// strict tracking drops it silently as it always did.
	d = e.Decide(tcp(netip.MustParseAddrPort("10.2.0.2:9999"), netip.MustParseAddrPort("10.1.0.9:22"), packet.ACK, 1, 1), packet.LinkRaw, dmz, t0+3, &p)
	if d.Action != Drop || d.Reason != reason.HandshakeNotCompleted || d.Rule != NoRule {
		t.Errorf("refused pickup: %v/%v rule %d", d.Action, d.Reason, d.Rule)
	}
	if n := e.Table().Len(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}

	// Handshake=strict on a rule under Require3WayHandshake=0.
	s := DefaultSettings()
	s.Conntrack.Strict = false
	e = newEngine(t, optsModel(nil, func(r *policy.Rule) { r.Handshake = policy.HandshakeStrict }), s, nil)
	if d := e.Decide(tcp(dbServer, client, packet.SYN|packet.ACK, 900, 77), packet.LinkRaw, dmz, t0, &p); d.Action != Drop || d.Reason != reason.HandshakeNotCompleted || d.Rule != 2 {
		t.Errorf("strict rule under loose table: %v/%v rule %d", d.Action, d.Reason, d.Rule)
	}
	if d := e.Decide(tcp(tomcat, web, packet.SYN|packet.ACK, 500, 101), packet.LinkRaw, dmz, t0, &p); d.Action != Accept || !d.Created {
		t.Errorf("inheriting rule under loose table: %v/%v", d.Action, d.Reason)
	}
}

// IdleTimeout on one rule: its connections outlive the global timeout, another
// rule's expire at the global one, and each drop names the timeout that ended it.
func TestRuleIdleTimeout(t *testing.T) {
	s := DefaultSettings()
	s.Conntrack.Timeouts.TCPEstablished = 3600 * time.Second
	e := newEngine(t, optsModel(nil, func(r *policy.Rule) { r.IdleTimeout = 9000 * time.Second }), s, nil)
	app := netip.MustParseAddrPort("10.1.0.4:50000")
	handshake(t, e, app, dbServer, t0)
	handshake(t, e, web, tomcat, t0)

	// A keep-alive after 2 h: passes on the db rule's connection.
	var p packet.Parsed
	at := t0 + int64(2*time.Hour)
	e.Expire(at)
	if d := e.Decide(tcp(app, dbServer, packet.ACK, 100, 501), packet.LinkRaw, 0, at, &p); d.Action != Accept {
		t.Fatalf("keep-alive after 2 h on the IdleTimeout rule: %v/%v", d.Action, d.Reason)
	}
	d := e.Decide(tcp(web, tomcat, packet.ACK, 100, 501), packet.LinkRaw, 0, at, &p)
	if d.Action != Drop || d.Reason != reason.StateExpired || d.Conn.Timeout != 3600*time.Second || d.Conn.RuleTimeoutEnded() ||
		d.Conn.EndedTimeout().Name != "TcpEstablishedTimeout" || TimeoutWords(e.Ruleset(), &d.Conn) != "TcpEstablishedTimeout" {
		t.Fatalf("the other rule's connection after 2 h: %v/%v timeout %v words %q", d.Action, d.Reason, d.Conn.Timeout, TimeoutWords(e.Ruleset(), &d.Conn))
	}
	// Exactly at 9000 s of idleness the db connection goes.
	end := at + int64(9000*time.Second)
	e.Expire(end - 1)
	if n := e.Table().Len(); n != 1 {
		t.Fatalf("%d connections 1 ns before the rule's timeout", n)
	}
	e.Expire(end)
	if n := e.Table().Len(); n != 0 {
		t.Fatalf("%d connections at the rule's timeout", n)
	}
	d = e.Decide(tcp(app, dbServer, packet.ACK, 100, 501), packet.LinkRaw, 0, end+1, &p)
	if d.Action != Drop || d.Reason != reason.StateExpired || d.Conn.Timeout != 9000*time.Second || !d.Conn.RuleTimeoutEnded() ||
		TimeoutWords(e.Ruleset(), &d.Conn) != "IdleTimeout of rule 'app -> db'" {
		t.Errorf("after the rule's timeout: %v/%v timeout %v words %q", d.Action, d.Reason, d.Conn.Timeout, TimeoutWords(e.Ruleset(), &d.Conn))
	}
}

// Apply with a changed IdleTimeout keeps the connections and moves them onto the
// new timeout at once, keeping how long they have been idle; removing the option
// gives the global timeout back.
func TestApplyMovesConnectionsToTheirRulesTimeout(t *testing.T) {
	s := DefaultSettings()
	s.Conntrack.Timeouts.TCPEstablished = 3600 * time.Second
	e := newEngine(t, optsModel(nil, nil), s, nil)
	app := netip.MustParseAddrPort("10.1.0.4:50000")
	handshake(t, e, app, dbServer, t0)
	handshake(t, e, web, tomcat, t0+int64(time.Minute))
	// The connections are on the unacknowledged-data list at first: let expiry
	// hand them to the established one.
	e.Expire(t0 + int64(30*time.Minute))

	longer := optsModel(nil, func(r *policy.Rule) { r.IdleTimeout = 9000 * time.Second })
	if closed, err := e.Apply(compileModel(t, longer), s); err != nil || closed != 0 {
		t.Fatalf("Apply: %d %v", closed, err)
	}
	at := t0 + 2 + int64(3600*time.Second)
	e.Expire(at)
	var ids []uint16
	e.Table().Range(func(ci conntrack.ConnInfo) bool { ids = append(ids, ci.DstPort); return true })
	if len(ids) != 2 {
		t.Fatalf("after 1 h: connections to %v, want both (the web one was seen a minute later)", ids)
	}
	e.Expire(at + int64(time.Minute))
	ids = ids[:0]
	e.Table().Range(func(ci conntrack.ConnInfo) bool { ids = append(ids, ci.DstPort); return true })
	if len(ids) != 1 || ids[0] != 1521 {
		t.Fatalf("after 1 h 1 min: connections to %v, want the db one only", ids)
	}
	// Back to the global timeout: the db connection, idle 61 min, goes at once.
	if _, err := e.Apply(compileModel(t, optsModel(nil, nil)), s); err != nil {
		t.Fatal(err)
	}
	if n := e.Expire(at + int64(time.Minute) + 1); n != 1 || e.Table().Len() != 0 {
		t.Errorf("after removing the option: expired %d, %d left", n, e.Table().Len())
	}
}

// MaxConnectionsPerSource counts per rule and per source, apart from the global
// per-source limit.
func TestRuleMaxConnectionsPerSource(t *testing.T) {
	e := newEngine(t, optsModel(nil, func(r *policy.Rule) { r.MaxConnectionsPerSource = 2 }), DefaultSettings(), nil)
	var p packet.Parsed
	syn := func(c, s netip.AddrPort, at int64) Decision {
		return e.Decide(tcp(c, s, packet.SYN, 100, 0), packet.LinkRaw, 0, at, &p)
	}
	app := netip.MustParseAddr("10.1.0.4")
	for port := range uint16(2) {
		if d := syn(netip.AddrPortFrom(app, 50000+port), dbServer, t0); d.Action != Accept {
			t.Fatalf("connection %d: %v/%v", port, d.Action, d.Reason)
		}
	}
	d := syn(netip.AddrPortFrom(app, 50002), dbServer, t0)
	if d.Action != Drop || d.Reason != reason.ConnectionLimit || d.Conn.Limit != conntrack.LimitRule {
		t.Fatalf("third: %v/%v limit %v", d.Action, d.Reason, d.Conn.Limit)
	}
	if d := syn(netip.MustParseAddrPort("10.1.0.5:50000"), dbServer, t0); d.Action != Accept {
		t.Errorf("another source: %v/%v", d.Action, d.Reason)
	}
	if d := syn(netip.AddrPortFrom(app, 50003), tomcat, t0); d.Action != Accept {
		t.Errorf("another rule: %v/%v", d.Action, d.Reason)
	}
	// One ends (its SYN_SENT times out): room again.
	e.Expire(t0 + int64(121*time.Second))
	if d := syn(netip.AddrPortFrom(app, 50004), dbServer, t0+int64(121*time.Second)); d.Action != Accept {
		t.Errorf("after they ended: %v/%v", d.Action, d.Reason)
	}
}

// A connection restored from a snapshot takes its options from its rule as the
// ruleset in force defines it: the snapshot stores the rule, not the options.
func TestSnapshotRestoresRuleOptions(t *testing.T) {
	s := DefaultSettings()
	s.Conntrack.Timeouts.TCPEstablished = 3600 * time.Second
	withTimeout := func(d time.Duration) policy.Model {
		return optsModel(nil, func(r *policy.Rule) { r.IdleTimeout = d; r.MaxConnectionsPerSource = 1 })
	}
	e := newEngine(t, withTimeout(9000*time.Second), s, nil)
	app := netip.MustParseAddrPort("10.1.0.4:50000")
	handshake(t, e, app, dbServer, t0)
	var snap bytes.Buffer
	if err := e.Table().WriteSnapshot(&snap, t0+10); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		model policy.Model
		want  time.Duration
		limit bool // the rule's per-source count holds the restored connection
	}{
		{"same rule", withTimeout(9000 * time.Second), 9000 * time.Second, true},
		{"rule changed meanwhile", withTimeout(5000 * time.Second), 5000 * time.Second, true},
		{"option removed meanwhile", optsModel(nil, nil), 0, false},
	} {
		back := newEngine(t, c.model, s, nil)
		if err := back.Table().ReadSnapshot(bytes.NewReader(snap.Bytes()), t0+20); err != nil {
			t.Fatal(err)
		}
		var ci conntrack.ConnInfo
		back.Table().Range(func(x conntrack.ConnInfo) bool { ci = x; return false })
		if ci.Meta.Rule != 30 || ci.Meta.IdleTimeout != c.want {
			t.Errorf("%s: restored meta %+v, want idle timeout %v", c.name, ci.Meta, c.want)
		}
		var p packet.Parsed
		d := back.Decide(tcp(netip.MustParseAddrPort("10.1.0.4:50001"), dbServer, packet.SYN, 7, 0), packet.LinkRaw, 0, t0+30, &p)
		if limited := d.Reason == reason.ConnectionLimit; limited != c.limit {
			t.Errorf("%s: a second connection from the source: %v/%v", c.name, d.Action, d.Reason)
		}
	}
}
