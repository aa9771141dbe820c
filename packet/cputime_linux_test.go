package packet

import "syscall"

// threadCPUTime returns the CPU time the calling OS thread has used, in nanoseconds.
// Benchmarks report it next to wall time because the shared build machines are often
// loaded: time spent descheduled then inflates ns/op but not CPU time.
func threadCPUTime() int64 {
	const rusageThread = 1 // RUSAGE_THREAD, Linux only
	var ru syscall.Rusage
	if syscall.Getrusage(rusageThread, &ru) != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
