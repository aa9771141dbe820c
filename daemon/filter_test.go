package daemon

import (
	"net/netip"
	"testing"

	"keepstate/conntrack"
	"keepstate/packet"
)

func TestFilter(t *testing.T) {
	web := conntrack.ConnInfo{ID: 7, Src: netip.MustParseAddr("10.1.0.2"), SrcPort: 40000,
		Dst: netip.MustParseAddr("10.2.0.5"), DstPort: 8080, Proto: packet.ProtoTCP, State: conntrack.StateEstablished}
	dns := conntrack.ConnInfo{ID: 8, Src: netip.MustParseAddr("2001:db8::2"), SrcPort: 5353,
		Dst: netip.MustParseAddr("2001:db8:1::53"), DstPort: 53, Proto: packet.ProtoUDP, State: conntrack.StateUDPReplied}
	ping := conntrack.ConnInfo{ID: 9, Src: netip.MustParseAddr("10.1.0.2"), SrcPort: 8080,
		Dst: netip.MustParseAddr("10.2.0.5"), DstPort: 8080, Proto: packet.ProtoICMP, State: conntrack.StateICMPReplied}
	conns := []conntrack.ConnInfo{web, dns, ping}

	for _, tc := range []struct {
		words []string
		want  []uint64 // ids matched
	}{
		{nil, []uint64{7, 8, 9}},
		{[]string{"src", "10.1.0.2"}, []uint64{7, 9}},
		{[]string{"src=10.1.0.0/24"}, []uint64{7, 9}},
		{[]string{"dst", "10.1.0.2"}, nil},
		{[]string{"host", "10.1.0.2"}, []uint64{7, 9}},
		{[]string{"host", "2001:db8:1::/48"}, []uint64{8}},
		{[]string{"host", "::ffff:10.1.0.2"}, []uint64{7, 9}}, // the mapped form of an IPv4 address
		{[]string{"dport", "8080"}, []uint64{7}},              // ICMP "ports" are echo ids, not ports
		{[]string{"dport", "8080", "dport", "53"}, []uint64{7, 8}},
		{[]string{"dport", "50-60"}, []uint64{8}},
		{[]string{"port", "5353"}, []uint64{8}},
		{[]string{"sport", "40000", "dport", "53"}, nil},
		{[]string{"proto", "TCP"}, []uint64{7}},
		{[]string{"proto", "1"}, []uint64{9}},
		{[]string{"state", "established"}, []uint64{7}},
		{[]string{"state", "UDP_REPLIED", "proto", "udp"}, []uint64{8}},
		{[]string{"id", "9"}, []uint64{9}},
		{[]string{"src", "10.1.0.2", "state", "ESTABLISHED", "dport", "8080"}, []uint64{7}},
	} {
		f, err := ParseFilter(tc.words)
		if err != nil {
			t.Errorf("%q: %v", tc.words, err)
			continue
		}
		var got []uint64
		for i := range conns {
			if f.Match(&conns[i]) {
				got = append(got, conns[i].ID)
			}
		}
		if len(got) != len(tc.want) || (len(got) > 0 && !equalIDs(got, tc.want)) {
			t.Errorf("%q matched %v, want %v", tc.words, got, tc.want)
		}
	}
}

func equalIDs(a, b []uint64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFilterErrors(t *testing.T) {
	for _, tc := range []struct {
		words []string
		err   string
	}{
		{[]string{"src"}, `filter: "src" needs a value`},
		{[]string{"src", "10.1.0.300"}, `filter: src "10.1.0.300": ParseAddr("10.1.0.300"): IPv4 field has value >255`},
		{[]string{"src", "10.1.0.0/33"}, `filter: src "10.1.0.0/33": netip.ParsePrefix("10.1.0.0/33"): prefix length out of range`},
		{[]string{"src", "::ffff:10.0.0.0/104"}, `filter: src "::ffff:10.0.0.0/104": use the IPv4 form`},
		{[]string{"dport", "65536"}, `filter: dport "65536": not a port (0-65535)`},
		{[]string{"port", "90-80"}, `filter: port "90-80": not a port range LO-HI`},
		{[]string{"proto", "sctpx"}, `filter: proto "sctpx": want tcp, udp, icmp, icmpv6 or a protocol number`},
		{[]string{"state", "OPEN"}, `filter: state "OPEN": unknown state (want one of SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE, SYN_SENT2, UDP_UNREPLIED, UDP_REPLIED, ICMP_UNREPLIED, ICMP_REPLIED, OTHER_UNREPLIED, OTHER_REPLIED)`},
		{[]string{"iface", "eth0"}, `filter: iface "eth0": unknown key (want src, dst, host, sport, dport, port, proto, state, id or rule)`},
		{make([]string, 65), `filter: 65 words, at most 64`},
	} {
		_, err := ParseFilter(tc.words)
		if err == nil || err.Error() != tc.err {
			t.Errorf("%q: error %v\nwant %s", tc.words, err, tc.err)
		}
	}
}

func TestDecodeRequest(t *testing.T) {
	for _, tc := range []struct {
		line, err string
	}{
		{`{"cmd":"status"}`, ""},
		{`{"cmd":"conntrack_list","filter":["src","10.0.0.1"],"limit":5}`, ""},
		{`{"cmd":"status","extra":1}`, `bad request: json: unknown field "extra"`},
		{`{"cmd":"status"} {"cmd":"stats"}`, "bad request: more than one JSON value on the line"},
		{`{}`, `bad request: no "cmd"`},
		{`{"cmd":"conntrack_list","limit":-1}`, "bad request: negative limit -1"},
		{`not json`, "bad request: invalid character 'o' in literal null (expecting 'u')"},
	} {
		_, err := DecodeRequest([]byte(tc.line))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.err {
			t.Errorf("%s: error %q, want %q", tc.line, got, tc.err)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	f.Add("src 10.1.0.2 dport 8080")
	f.Add("host=2001:db8::/32 proto tcp state ESTABLISHED")
	f.Add("port 80-90 port 443 id 12 sport 1")
	f.Add("src")
	f.Fuzz(func(t *testing.T, s string) {
		words := splitWords(s)
		flt, err := ParseFilter(words)
		if err != nil {
			return
		}
		ci := conntrack.ConnInfo{Src: netip.MustParseAddr("10.1.0.2"), Dst: netip.MustParseAddr("2001:db8::1"),
			SrcPort: 80, DstPort: 443, Proto: packet.ProtoTCP, State: conntrack.StateEstablished}
		flt.Match(&ci)
		if flt.String() == "" {
			t.Fatal("empty String")
		}
	})
}

func splitWords(s string) []string {
	var out []string
	start := -1
	for i, r := range s {
		if r == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"cmd":"status"}`))
	f.Add([]byte(`{"cmd":"config_import","name":"x","data":"H4sI","confirm_within":"30s"}`))
	f.Add([]byte(`{"cmd":"conntrack_flush","filter":["dport","22"]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := DecodeRequest(line)
		if err != nil {
			return
		}
		if req.Cmd == "" || req.Limit < 0 {
			t.Fatalf("accepted %+v", req)
		}
	})
}
