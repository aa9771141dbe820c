package insight

import (
	"fmt"
	"strconv"
	"time"

	"keepstate/policy"
)

// setRuleOption sets one of a rule's state options (issue 11's per-rule
// Handshake, IdleTimeout and MaxConnectionsPerSource), or whether it is
// Enabled, to value, spelled as winroute.cfg spells it.
func setRuleOption(r *policy.Rule, option, value string) error {
	switch option {
	case "Handshake":
		h, ok := policy.ParseHandshake(value)
		if !ok {
			return fmt.Errorf("option Handshake %q: want one of %v", value, policy.HandshakeNames())
		}
		r.Handshake = h
	case "IdleTimeout":
		if value == "inherit" {
			r.IdleTimeout = 0
			return nil
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("option IdleTimeout %q: want seconds or inherit", value)
		}
		r.IdleTimeout = time.Duration(n) * time.Second
	case "Enabled":
		r.Enabled = value == "1"
	case "MaxConnectionsPerSource":
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return fmt.Errorf("option MaxConnectionsPerSource %q: want a count", value)
		}
		r.MaxConnectionsPerSource = n
	default:
		return fmt.Errorf("%w: %s", errNoRuleOptions, option)
	}
	return nil
}
