// Package prefetch asks the CPU to start loading a cache line that will be needed
// soon. It is a hint: it never faults, whatever the address, and it changes no
// result, only when memory arrives.
//
// The connection table uses it to overlap the cache misses of several packets: a
// lookup in a table of a million connections waits on main memory twice (the index
// slot, then the entry), and a batch that starts those loads for the next packets
// while it works on the current one pays that latency once for many packets, as a
// tight loop of independent map lookups does on its own.
package prefetch

import "unsafe"

// Line starts loading the cache line holding p into every cache level.
func Line(p unsafe.Pointer) { line(uintptr(p)) }
