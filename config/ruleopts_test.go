package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"keepstate/policy"
)

// rulesFile is a winroute.cfg whose only list is TrafficRules_v2, holding items
// (each a run of <variable> lines).
func rulesFile(items ...string) string {
	var b strings.Builder
	b.WriteString("<config>\n<list name=\"TrafficRules_v2\">\n")
	for _, it := range items {
		b.WriteString("<listitem>\n" + it + "</listitem>\n")
	}
	b.WriteString("</list>\n</config>\n")
	return b.String()
}

func ruleItem(name, action string, opts ...string) string {
	s := fmt.Sprintf("<variable name=\"Name\">%s</variable>\n<variable name=\"Action\">%s</variable>\n", name, action)
	for i := 0; i+1 < len(opts); i += 2 {
		s += fmt.Sprintf("<variable name=%q>%s</variable>\n", opts[i], opts[i+1])
	}
	return s
}

func TestRuleStateOptions(t *testing.T) {
	file := rulesFile(
		ruleItem("DMZ to Tomcat", "Permit", "Handshake", "loose"),
		ruleItem("app -> db", "Permit", "IdleTimeout", "9000", "MaxConnectionsPerSource", "40"),
		ruleItem("plain", "Permit"),
	)
	c, err := Parse("t.cfg", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings()) != 0 {
		t.Errorf("warnings: %v", c.Warnings())
	}
	r := c.Policy.Rules
	if r[0].Handshake != policy.HandshakeLoose || r[0].IdleTimeout != 0 || r[1].IdleTimeout != 9000*time.Second ||
		r[1].MaxConnectionsPerSource != 40 || r[2].HasStateOptions() {
		t.Fatalf("rules: %+v", r)
	}
	// Written back only where set, and read back the same.
	out := string(Marshal(c))
	if strings.Count(out, `"Handshake"`) != 1 || strings.Count(out, `"IdleTimeout"`) != 1 || strings.Count(out, `"MaxConnectionsPerSource"`) != 1 {
		t.Errorf("written:\n%s", out)
	}
	c2, err := Parse("again.cfg", []byte(out))
	if err != nil || string(Marshal(c2)) != out {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := c.Compile(); err != nil {
		t.Fatal(err)
	}
}

func TestRuleStateOptionErrors(t *testing.T) {
	file := rulesFile(
		ruleItem("a", "Permit", "Handshake", "lose"),
		ruleItem("b", "Permit", "IdleTimeout", "0"),
		ruleItem("c", "Permit", "IdleTimeout", "2h"),
		ruleItem("d", "Permit", "MaxConnectionsPerSource", "-1"),
		ruleItem("e", "Permit", "Handshak", "loose"),
	)
	_, err := Parse("t.cfg", []byte(file))
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		`t.cfg:6: Handshake: want inherit, strict, loose, got "lose" (did you mean loose?)`,
		`t.cfg:11: IdleTimeout: 0 is out of range 1-31536000 (or inherit)`,
		`t.cfg:16: IdleTimeout: want inherit or a whole number of seconds, got "2h"`,
		`t.cfg:21: MaxConnectionsPerSource: -1 is out of range 0-16777216`,
		`t.cfg:26: unknown field "Handshak" in TrafficRules_v2 (did you mean Handshake?)`,
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Too many distinct idle timeouts: each is a profile of the table.
	var items []string
	for i := range policy.MaxIdleTimeouts + 1 {
		items = append(items, ruleItem(fmt.Sprintf("r%d", i), "Permit", "IdleTimeout", fmt.Sprint(8000+i)))
	}
	_, err = Parse("t.cfg", []byte(rulesFile(items...)))
	if err == nil || err.Error() != "t.cfg:81: IdleTimeout: 8015 s: the rules would have more than 15 distinct IdleTimeout values (each is a timeout profile of the connection table)" {
		t.Errorf("16 idle timeouts: %v", err)
	}

	// Warnings: a short timeout, and options on a rule that permits nothing.
	c, err := Parse("t.cfg", []byte(rulesFile(
		ruleItem("short", "Permit", "IdleTimeout", "3600"),
		ruleItem("deny", "Deny", "Handshake", "loose"),
	)))
	if err != nil {
		t.Fatal(err)
	}
	w := c.Warnings()
	if len(w) != 2 || w[0].Line != 6 || !strings.Contains(w[0].Msg, `IdleTimeout 3600 s of rule "short" is below the 7440 s`) ||
		w[1].Line != 8 || !strings.Contains(w[1].Msg, `rule "deny": its state options (Handshake=loose) have no effect`) {
		t.Errorf("warnings: %v", w)
	}
}
