//go:build !linux && !darwin && !freebsd

package daemon

import (
	"fmt"
	"runtime"
)

// peerUIDOfFD fails: this system gives no way to learn a unix socket peer's uid
// that this package uses, and the admin socket serves no one it cannot identify.
func peerUIDOfFD(int) (uint32, error) {
	return 0, fmt.Errorf("peer credentials are not supported on %s: the admin socket refuses every request", runtime.GOOS)
}
