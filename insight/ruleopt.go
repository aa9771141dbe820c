package insight

import "keepstate/policy"

// setRuleOption sets a per-rule state option on r.
func setRuleOption(r *policy.Rule, option, value string) error {
	_ = r
	_, _ = option, value
	return errNoRuleOptions
}
