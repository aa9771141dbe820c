package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"keepstate/policy"
)

// The state options of a traffic rule (TrafficRules_v2), as pf's per-rule
// "keep state (...)": written only when they differ from their default, so a file
// without them is written back as it was.
const (
	fieldHandshake   = "Handshake"
	fieldIdleTimeout = "IdleTimeout"
	fieldMaxPerSrc   = "MaxConnectionsPerSource"
	inheritWord      = "inherit"
)

// ruleOptionDefaults are the file forms of the options' defaults.
var ruleOptionDefaults = map[string]string{
	fieldHandshake:   policy.HandshakeInherit.String(),
	fieldIdleTimeout: inheritWord,
	fieldMaxPerSrc:   "0",
}

// stateOptions reads rule r's state options from f.
func (dec *decoder) stateOptions(f *fields, r *policy.Rule) {
	if v, ok := f.get(fieldHandshake); ok {
		h, ok := policy.ParseHandshake(strings.TrimSpace(v.value))
		if !ok {
			dec.d.errorf(v.pos, "%s: want %s, got %q%s", fieldHandshake, strings.Join(policy.HandshakeNames(), ", "), v.value,
				suggest(strings.TrimSpace(v.value), policy.HandshakeNames()))
		}
		r.Handshake = h
	}
	if v, ok := f.get(fieldIdleTimeout); ok {
		d, err := parseIdleTimeout(v.value)
		if err != nil {
			dec.d.errorf(v.pos, "%s: %v", fieldIdleTimeout, err)
		}
		r.IdleTimeout = d
		switch {
		case d == 0:
		case !dec.idleTimeouts[d] && len(dec.idleTimeouts) == policy.MaxIdleTimeouts:
			dec.d.errorf(v.pos, "%s: %d s: the rules would have more than %d distinct IdleTimeout values (each is a timeout profile of the connection table)",
				fieldIdleTimeout, int64(d/time.Second), policy.MaxIdleTimeouts)
		default:
			dec.idleTimeouts[d] = true
			if d < rfc5382MinIdle {
				dec.d.warnf(v.pos, "%s %d s of rule %q is below the 7440 s (2 h 4 min) of RFC 5382: its idle connections kept alive by TCP keep-alives (first probe after 2 h, RFC 1122) will be forgotten and their next packets dropped",
					fieldIdleTimeout, int64(d/time.Second), r.Name)
			}
		}
	}
	if v, ok := f.get(fieldMaxPerSrc); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v.value), 10, 32)
		switch {
		case err != nil:
			dec.d.errorf(v.pos, "%s: want a whole number of connections (0: no limit of the rule's own), got %q", fieldMaxPerSrc, v.value)
		case n < 0 || n > 1<<24:
			dec.d.errorf(v.pos, "%s: %d is out of range 0-%d", fieldMaxPerSrc, n, 1<<24)
		default:
			r.MaxConnectionsPerSource = int(n)
		}
	}
	if r.HasStateOptions() && r.Action != policy.Permit {
		dec.d.warnf(f.item.pos, "rule %q: its state options (%s) have no effect: the rule does not permit connections (Action %s)",
			r.Name, strings.Join(stateOptionWords(r), ", "), r.Action)
	}
}

// parseIdleTimeout reads "inherit" (0) or whole seconds.
func parseIdleTimeout(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == inheritWord {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want %s or a whole number of seconds, got %q", inheritWord, s)
	}
	if n < 1 || n > maxTimeout {
		return 0, fmt.Errorf("%d is out of range 1-%d (or %s)", n, maxTimeout, inheritWord)
	}
	return time.Duration(n) * time.Second, nil
}

// formatIdleTimeout is parseIdleTimeout's inverse.
func formatIdleTimeout(d time.Duration) string {
	if d == 0 {
		return inheritWord
	}
	return strconv.FormatInt(int64(d/time.Second), 10)
}

// stateOptionWords lists r's options that differ from their defaults as the file
// writes them, e.g. "Handshake=loose".
func stateOptionWords(r *policy.Rule) []string {
	var out []string
	for _, kv := range [][2]string{
		{fieldHandshake, r.Handshake.String()},
		{fieldIdleTimeout, formatIdleTimeout(r.IdleTimeout)},
		{fieldMaxPerSrc, strconv.Itoa(r.MaxConnectionsPerSource)},
	} {
		if kv[1] != ruleOptionDefaults[kv[0]] {
			out = append(out, kv[0]+"="+kv[1])
		}
	}
	return out
}
