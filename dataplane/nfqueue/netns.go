//go:build linux

package nfqueue

import (
	"errors"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// A network namespace belongs to a thread, not to a process. The plane remembers
// the namespace of the thread that called Start and runs everything that depends
// on it (opening sockets and /proc files, running iptables or nft) on a thread in
// that namespace, so Close removes the hooks from the right namespace whichever
// goroutine calls it. Sockets keep their namespace once open, so the workers run
// anywhere.

// currentNetns opens the network namespace of the calling thread.
func currentNetns() (*os.File, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return os.Open("/proc/thread-self/ns/net")
}

// runInNetns runs fn on a thread in namespace ns and returns its error.
func runInNetns(ns *os.File, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		cur, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer cur.Close()
		if sameFile(cur, ns) {
			err := fn()
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := unix.Setns(int(cur.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked and in the wrong namespace: the runtime
			// ends it when this goroutine returns.
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func sameFile(a, b *os.File) bool {
	sa, err1 := a.Stat()
	sb, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
