//go:build darwin || freebsd

package daemon

import "golang.org/x/sys/unix"

// peerUIDOfFD is the uid of the process at the other end of unix socket fd, as
// the kernel recorded it when that process connected (LOCAL_PEERCRED).
func peerUIDOfFD(fd int) (uint32, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return 0, err
	}
	return cred.Uid, nil
}
