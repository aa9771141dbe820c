package logging

import (
	"errors"
	"strings"

	"keepstate/reason"
)

// DropFilter selects which dropped packets the debug log shows, like Kerio
// Control's "Packets dropped for some reason" message filter: either every reason,
// or a chosen set. The zero value shows none.
type DropFilter struct {
	any  bool
	mask uint64 // bit r set: reason r selected
}

// The mask holds one bit per reason; this fails to compile if reasons outgrow it.
var _ [64 - reason.Count]struct{}

// AnyDrop selects packets dropped for any reason, including reasons added later.
func AnyDrop() DropFilter { return DropFilter{any: true} }

// DropsFor selects packets dropped for the given reasons only. None is ignored:
// an accepted packet is never a drop.
func DropsFor(rs ...reason.Reason) DropFilter {
	var f DropFilter
	for _, r := range rs {
		if r != reason.None && int(r) < reason.Count {
			f.mask |= 1 << r
		}
	}
	return f
}

// Has reports whether drops for reason r are shown.
func (f DropFilter) Has(r reason.Reason) bool {
	if r == reason.None || int(r) >= reason.Count {
		return false
	}
	return f.any || f.mask&(1<<r) != 0
}

// IsNone reports whether no drop is shown.
func (f DropFilter) IsNone() bool { return !f.any && f.mask == 0 }

// String returns the form ParseDropFilter reads: "any", "none", or the reason
// identifiers separated by commas in reason order.
func (f DropFilter) String() string {
	switch {
	case f.any:
		return "any"
	case f.mask == 0:
		return "none"
	}
	var b strings.Builder
	for _, r := range reason.All() {
		if f.Has(r) {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(r.String())
		}
	}
	return b.String()
}

// ParseDropFilter reads "any" (or "all"), "none" (or ""), or a comma-separated list
// of reason identifiers such as "handshake_not_completed,state_expired". An unknown
// identifier is an error naming it, so that a typo does not silently log nothing.
func ParseDropFilter(s string) (DropFilter, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "any", "all":
		return AnyDrop(), nil
	case "none", "":
		return DropFilter{}, nil
	}
	var f DropFilter
	for _, id := range strings.Split(s, ",") {
		id = strings.TrimSpace(id)
		r, ok := reason.Parse(id)
		if !ok || r == reason.None {
			return DropFilter{}, errors.New("logging: unknown drop reason " + quote(id))
		}
		f.mask |= 1 << r
	}
	return f, nil
}

func quote(s string) string { return string(appendJSONString(nil, s)) }
