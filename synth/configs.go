package synth

import (
	_ "embed"
	"fmt"
	"strings"
)

//go:embed configs/story1.cfg
var story1Config string

//go:embed configs/story2.cfg
var story2Config string

// Story1Config returns the first story's winroute.cfg with Require3WayHandshake set
// to on (1) or off (0), and the exact line that says so.
func Story1Config(require3Way bool) (cfg []byte, line string) {
	v := 0
	if require3Way {
		v = 1
	}
	return setVariable(story1Config, "Require3WayHandshake", fmt.Sprint(v))
}

// Story2Config returns the second story's winroute.cfg with TcpEstablishedTimeout
// set to seconds, and the line that says so.
func Story2Config(seconds int) (cfg []byte, line string) {
	return setVariable(story2Config, "TcpEstablishedTimeout", fmt.Sprint(seconds))
}

// setVariable rewrites the one <variable name="name"> line of a configuration.
func setVariable(cfg, name, value string) ([]byte, string) {
	open := `<variable name="` + name + `">`
	i := strings.Index(cfg, open)
	if i < 0 {
		panic("synth: configuration has no variable " + name) // embedded files are ours
	}
	j := strings.Index(cfg[i:], "</variable>")
	line := open + value + "</variable>"
	return []byte(cfg[:i] + line + cfg[i+j+len("</variable>"):]), line
}

// SetRuleOption adds the variable name=value to the traffic rule called rule in
// cfg (a winroute.cfg), e.g. Handshake=loose on "Web servers to Tomcat": the
// narrow fix of a story, as an administrator would write it.
func SetRuleOption(cfg []byte, rule, name, value string) []byte {
	s := string(cfg)
	anchor := `<variable name="Name">` + rule + `</variable>`
	i := strings.Index(s, anchor)
	if i < 0 {
		panic("synth: configuration has no rule " + rule)
	}
	i += len(anchor)
	return []byte(s[:i] + "\n      <variable name=\"" + name + "\">" + value + "</variable>" + s[i:])
}
