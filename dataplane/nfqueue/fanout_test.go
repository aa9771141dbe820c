package nfqueue

import (
	"slices"
	"testing"
)

// CPU fan-out adds the kernel's flag to both backends, and only where several
// queues exist (a single queue has nothing to spread over).
func TestCPUFanoutRules(t *testing.T) {
	tests := []struct {
		spec hookSpec
		xt   []string
		nft  string
	}{
		{hookSpec{queueNum: 0, queues: 2, cpuFanout: true}, []string{"--queue-balance", "0:1", "--queue-cpu-fanout"}, "queue num 0-1 fanout"},
		{hookSpec{queueNum: 4, queues: 4, cpuFanout: true, bypass: true}, []string{"--queue-balance", "4:7", "--queue-cpu-fanout", "--queue-bypass"}, "queue num 4-7 bypass,fanout"},
		{hookSpec{queueNum: 3, queues: 1, cpuFanout: true}, []string{"--queue-num", "3"}, "queue num 3"},
		{hookSpec{queueNum: 0, queues: 2}, []string{"--queue-balance", "0:1"}, "queue num 0-1"},
	}
	for _, tc := range tests {
		if got := nfqueueTargetArgs(tc.spec); !slices.Equal(got, tc.xt) {
			t.Errorf("%+v: iptables %q, want %q", tc.spec, got, tc.xt)
		}
		if got := nftQueueStatement(tc.spec); got != tc.nft {
			t.Errorf("%+v: nft %q, want %q", tc.spec, got, tc.nft)
		}
	}
}
