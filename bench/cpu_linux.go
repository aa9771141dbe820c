package bench

import "syscall"

// threadCPU returns the CPU time the calling OS thread has used, in nanoseconds.
// Callers lock their goroutine to the thread. Unlike wall time it does not count the
// time other processes held the CPU, so figures stay meaningful on a busy machine.
func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
