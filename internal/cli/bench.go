package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"

	"keepstate/bench"
	"keepstate/firewall"
)

func init() {
	register(&command{
		name:    "bench",
		summary: "measure keepstate: the engine in memory (engine), the live data plane against the kernel (live)",
		run:     runBench,
	})
}

// The usage lines of the two benches, once each.
const (
	benchEngineUsage = "bench engine [--flows N] [--packets M] [--json] [--cpuprofile FILE]"
	benchLiveLine    = "bench live [--seconds N] [--streams K] [--payload B] [--rounds R] [--fanout hash|cpu] [--fast-path auto|on|off] [--flowtable] [--json]"
	benchUsage       = benchEngineUsage + "\n       keepstate " + benchLiveLine
)

func runBench(e *env, args []string) int {
	return runSubcommands(e, "bench", benchUsage, []subcommand{
		{"engine", runBenchEngine}, {"live", runBenchLive},
	}, args)
}

func runBenchEngine(e *env, args []string) int {
	fs := newFlagSet(e, "bench engine", benchEngineUsage)
	flows := fs.Int("flows", 10000, "concurrent connections")
	packets := fs.Int("packets", 0, "established-path packets (default: the larger of 2,000,000 and 4 per flow)")
	seed := fs.Uint64("seed", 1, "seed of the traffic's interleaving")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file, for go tool pprof")
	if !parseNoArgs(fs, args) {
		return exitUsage
	}
	if *packets == 0 {
		*packets = max(2_000_000, 4**flows)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			e.errorf("bench engine: %v", err)
			return exitFail
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			e.errorf("bench engine: %v", err)
			return exitFail
		}
		defer pprof.StopCPUProfile()
	}
	r, err := bench.RunEngine(bench.EngineOptions{Flows: *flows, Packets: *packets, Seed: *seed})
	if err != nil {
		e.errorf("bench engine: %v", err)
		return exitFail
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		if err := enc.Encode(r); err != nil {
			return exitFail
		}
		return exitOK
	}
	w := e.stdout
	fmt.Fprintf(w, "keepstate bench engine: %d flows, %d established-path packets (%s, GOMAXPROCS %d)\n",
		r.Flows, r.Packets, r.GoVersion, r.GOMAXPROCS)
	fmt.Fprintf(w, "                      wall ns    CPU ns\n")
	fmt.Fprintf(w, "  established path   %8.1f  %8.1f  per packet: decode, lookup, state and window update, verdict\n", r.EstablishedNsPerPacket, r.EstablishedCPUNsPerPacket)
	fmt.Fprintf(w, "  plain map lookup   %8.1f  %8.1f  the floor: a Go map of %d connection-sized keys\n", r.MapLookupNs, r.MapLookupCPUNs, r.Flows)
	fmt.Fprintf(w, "  map, one at a time %8.1f            each lookup waiting for the last: the latency of one, not the throughput of many\n", r.MapLookupDependentNs)
	fmt.Fprintf(w, "  tuple + map lookup %8.1f  %8.1f  the least any table does: the tuple read from each packet, then the same lookup\n", r.TupleLookupNs, r.TupleLookupCPUNs)
	fmt.Fprintf(w, "                     (wall: medians of %d alternating rounds, CPU: totals; packets decided in batches of %d)\n", r.Rounds, firewall.BatchSize)
	fmt.Fprintf(w, "  one by one         %8.1f            the established path without batches (DecideInto)\n", r.EstablishedSingleNsPerPacket)
	fmt.Fprintf(w, "  new connection     %8.1f  %8.1f  decode, miss, rules, insert\n", r.NewConnectionNs, r.NewConnectionCPUNs)
	fmt.Fprintf(w, "  tuple + map insert %8.1f            the least any table does: each SYN's tuple read and inserted into an emptied map sized for the limit\n", r.TupleInsertNs)
	fmt.Fprintf(w, "  established / map  %8.2f x %6.2f x (target <= 1.5)\n", r.EstablishedNsPerPacket/r.MapLookupNs, ratio(r.EstablishedCPUNsPerPacket, r.MapLookupCPUNs))
	fmt.Fprintf(w, "  new / map          %8.2f x %6.2f x (target <= 4)\n", r.NewConnectionNs/r.MapLookupNs, ratio(r.NewConnectionCPUNs, r.MapLookupCPUNs))
	fmt.Fprintf(w, "  the least, / map   %8.2f x %8.2f x (tuple + lookup, tuple + insert: what no table avoids)\n", r.TupleLookupNs/r.MapLookupNs, r.TupleInsertNs/r.MapLookupNs)
	fmt.Fprintf(w, "  teardown           %8.1f ns/packet\n", r.TeardownNsPerPacket)
	fmt.Fprintf(w, "  allocations        %8.4f per packet\n", r.AllocsPerPacket)
	fmt.Fprintf(w, "  memory             %8.1f bytes per tracked connection (heap: entry, lists, counters, index share; target <= 128)\n", r.BytesPerConnection)
	fmt.Fprintf(w, "                     %8.1f KiB fixed, whatever the connections (bounded tombstone memory, caches)\n", float64(r.EngineFixedBytes)/1024)
	if r.Dropped > 0 {
		fmt.Fprintf(w, "  WARNING: %d synthetic packets were dropped; the figures are not of the accept path\n", r.Dropped)
	}
	return exitOK
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
