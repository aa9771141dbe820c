package diagnose

import (
	"math"
	"time"
)

// NeededTimeout is the smallest idle timeout, in whole seconds, that keeps a
// connection that stays idle for idle: strictly longer, because the table forgets a
// connection idle for exactly its timeout.
func NeededTimeout(idle time.Duration) time.Duration {
	return time.Duration(int64(math.Floor(idle.Seconds()))+1) * time.Second
}

// AdvisedTimeout is needed with margin added (0.1 for 10 %), rounded up to whole
// 5 minutes: the timeout advice gives.
func AdvisedTimeout(needed time.Duration, margin float64) time.Duration {
	s := int64(math.Ceil(needed.Seconds() * (1 + margin)))
	return time.Duration(roundUp(s, 300)) * time.Second
}
