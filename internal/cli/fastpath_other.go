//go:build !linux

package cli

import (
	"errors"

	"keepstate/conntrack"
	"keepstate/daemon"
	"keepstate/firewall"
	"keepstate/packet"
)

// fastPathAdapter exists only on Linux; elsewhere loadFastPath says so.
type fastPathAdapter struct{}

func (fastPathAdapter) Attach() error                                      { return nil }
func (fastPathAdapter) Close() error                                       { return nil }
func (fastPathAdapter) Stats() daemon.FastPathStats                        { return daemon.FastPathStats{} }
func (fastPathAdapter) Offer(*packet.Parsed, conntrack.Dir, uint32, int64) {}
func (fastPathAdapter) AcceptMark() uint32                                 { return 0 }

func loadFastPath(*firewall.Engine) (fastPathAdapter, error) {
	return fastPathAdapter{}, errors.New("the kernel fast path needs Linux")
}
