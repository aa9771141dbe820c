package nfqueue

import (
	"reflect"
	"testing"
	"time"
)

func TestParseKernelQueues(t *testing.T) {
	// Two queues as net/netfilter/nfnetlink_queue.c prints them, and junk.
	data := []byte("    0  12345     7 2  2048    11    22 99871 1\n" +
		"    1 4294967295     0 2  2048     0     5 12 1\n" +
		"garbage line\n" +
		"70000 1 2 3 4 5 6 7 1\n" + // queue number out of range
		"    3  1 2 3 4 5 6") // no trailing newline, 7 fields
	got := parseKernelQueues(data)
	want := []kernelQueue{
		{Queue: 0, PortID: 12345, Waiting: 7, QueueDropped: 11, UserDropped: 22},
		{Queue: 1, PortID: 4294967295, Waiting: 0, QueueDropped: 0, UserDropped: 5},
		{Queue: 3, PortID: 1, Waiting: 2, QueueDropped: 5, UserDropped: 6},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := parseKernelQueues(nil); got != nil {
		t.Errorf("empty file: %+v", got)
	}
}

func FuzzParseKernelQueues(f *testing.F) {
	f.Add([]byte("    0  12345     7 2  2048    11    22 99871 1\n"))
	f.Add([]byte("1 2 3\n\n\n4 5 6 7 8 9 10"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, q := range parseKernelQueues(data) {
			_ = q
		}
	})
}

func TestLatencyHistogram(t *testing.T) {
	var q queueCounters
	q.observeLatency(500*time.Nanosecond, 3) // bucket 0: < 1µs
	q.observeLatency(time.Microsecond, 1)    // bucket 1: [1µs, 2µs)
	q.observeLatency(3*time.Microsecond, 2)  // bucket 2: [2µs, 4µs)
	q.observeLatency(time.Hour, 4)           // overflow bucket
	h := newLatencyHistogram()
	for i := range h.Counts {
		h.Counts[i] = q.latency[i].Load()
	}
	if h.Counts[0] != 3 || h.Counts[1] != 1 || h.Counts[2] != 2 || h.Counts[latencyBuckets] != 4 {
		t.Fatalf("counts = %v", h.Counts)
	}
	if len(h.Bounds) != latencyBuckets || h.Bounds[0] != time.Microsecond || h.Bounds[3] != 8*time.Microsecond {
		t.Fatalf("bounds = %v", h.Bounds)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.1, time.Microsecond},     // 1st of 10
		{0.3, time.Microsecond},     // 3rd
		{0.4, 2 * time.Microsecond}, // 4th
		{0.6, 4 * time.Microsecond}, // 6th
		{0.7, 2 * h.Bounds[latencyBuckets-1]},
		{1, 2 * h.Bounds[latencyBuckets-1]},
	}
	for _, tc := range tests {
		if got := h.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := newLatencyHistogram().Quantile(0.5); got != 0 {
		t.Errorf("empty histogram quantile = %v", got)
	}
}

func TestCountersAdd(t *testing.T) {
	a := Counters{Packets: 1, GSO: 2, Accepted: 3, Dropped: 4, Rejected: 5, Answers: 6, AnswersLimited: 7, AnswerErrors: 8,
		Batches: 9, VerdictMessages: 10, NetlinkErrors: 11, SocketOverflows: 12, QueueDropped: 13, UserDropped: 14, Waiting: 15}
	var sum Counters
	sum.add(&a)
	sum.add(&a)
	v := reflect.ValueOf(sum)
	for i := 0; i < v.NumField(); i++ {
		if got, want := v.Field(i).Uint(), 2*uint64(i+1); got != want {
			t.Errorf("%s = %d, want %d (a field add forgets?)", v.Type().Field(i).Name, got, want)
		}
	}
}
