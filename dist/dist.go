// Package dist holds what an installation needs besides the binary: the systemd
// unit, a sample configuration and the operator's README. The unit is embedded so
// that the lab runs keepstate exactly as that unit has systemd run it.
package dist

import _ "embed"

// Unit is keepstate.service, the systemd unit.
//
//go:embed keepstate.service
var Unit []byte
