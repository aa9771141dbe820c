package conntrack

import (
	"testing"
	"time"
)

// TestTimeoutTable checks the table every user of timeouts reads: names are unique,
// every class list is timed by exactly one row, every state is named by one, and
// the defaults are the documented ones.
func TestTimeoutTable(t *testing.T) {
	names := map[string]bool{}
	timed := map[class]string{}
	for _, d := range TimeoutDefs() {
		if names[d.Name] {
			t.Errorf("%s twice", d.Name)
		}
		names[d.Name] = true
		if d.Default <= 0 || d.Conns == "" || d.Source == "" {
			t.Errorf("%s: default %v, conns %q, source %q", d.Name, d.Default, d.Conns, d.Source)
		}
		for _, c := range d.classes {
			if prev, ok := timed[c]; ok {
				t.Errorf("class %d timed by %s and %s", c, prev, d.Name)
			}
			timed[c] = d.Name
		}
		if got, ok := TimeoutByName(d.Name); !ok || got.Name != d.Name {
			t.Errorf("TimeoutByName(%s) = %v, %v", d.Name, got, ok)
		}
	}
	if len(timed) != int(numClasses) {
		t.Errorf("%d of %d class lists timed", len(timed), numClasses)
	}
	want := Timeouts{
		TCPSynSent: 120 * time.Second, TCPSynRecv: 60 * time.Second, TCPEstablished: 24 * time.Hour,
		TCPFinWait: 120 * time.Second, TCPCloseWait: 60 * time.Second, TCPLastAck: 30 * time.Second,
		TCPTimeWait: 120 * time.Second, TCPClose: 10 * time.Second, TCPPickup: 300 * time.Second,
		TCPUnacked: 300 * time.Second, UDPUnreplied: 30 * time.Second, UDPReplied: 120 * time.Second,
		ICMP: 30 * time.Second, OtherUnreplied: 60 * time.Second, OtherReplied: 600 * time.Second,
	}
	if got := DefaultTimeouts(); got != want {
		t.Errorf("DefaultTimeouts() = %+v\nwant %+v", got, want)
	}
	for _, c := range []struct {
		s       State
		assured bool
		want    string
	}{
		{StateEstablished, true, "TcpEstablishedTimeout"},
		{StateEstablished, false, "TcpPickupTimeout"},
		{StateSynSent2, true, "TcpSynSentTimeout"},
		{StateUDPReplied, true, "UdpRepliedTimeout"},
		{StateICMPReplied, true, "IcmpTimeout"},
		{StateOtherUnreplied, true, "OtherUnrepliedTimeout"},
	} {
		if got := TimeoutName(c.s, c.assured); got != c.want {
			t.Errorf("TimeoutName(%v, %v) = %s, want %s", c.s, c.assured, got, c.want)
		}
	}
	// The caps: a pickup or unacknowledged-data timeout never outlasts the
	// established one.
	short := Timeouts{TCPEstablished: 100 * time.Second}
	ct := classTimeouts(&short)
	if ct[clsPickup] != int64(100*time.Second) || ct[clsUnacked] != int64(100*time.Second) || ct[clsRefiled] != int64(100*time.Second) {
		t.Errorf("caps: pickup %d unacked %d refiled %d", ct[clsPickup], ct[clsUnacked], ct[clsRefiled])
	}
}
