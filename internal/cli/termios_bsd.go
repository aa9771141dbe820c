//go:build darwin || freebsd

package cli

import "golang.org/x/sys/unix"

// The ioctls that read and set a terminal's modes, for reading a password
// without echo.
const (
	ioctlGetTermios = unix.TIOCGETA
	ioctlSetTermios = unix.TIOCSETA
)
