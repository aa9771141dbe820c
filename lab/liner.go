//go:build linux

package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Liner is a live connection to the echo service that sends a numbered line
// every LineEvery and checks every line that comes back: each must be exactly
// the line sent, in order, so that a lost, changed or repeated byte shows, and
// any reset or error ends it with that error.
type Liner struct {
	c    net.Conn
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	sent     int       // lines written
	echoed   int       // lines read back, all correct
	bytes    int64     // bytes read back, all correct
	last     time.Time // when the last line came back
	longest  time.Duration
	err      error // the first failure, of either direction
	finished bool
}

// LineEvery is the pace of a Liner.
const LineEvery = 250 * time.Millisecond

// lineText is line n: its number and some padding, so that a segment carries
// more than a few bytes.
func lineText(n int) string {
	return fmt.Sprintf("line %06d %s\n", n, strings.Repeat(string(rune('a'+n%26)), 40+n%23))
}

// StartLiner starts the lines on c, a connection to the echo service.
func StartLiner(c net.Conn) *Liner {
	l := &Liner{c: c, stop: make(chan struct{}), last: time.Now()}
	l.wg.Add(2)
	go l.write()
	go l.read()
	return l
}

func (l *Liner) fail(err error) {
	l.mu.Lock()
	if l.err == nil && !l.finished {
		l.err = err
	}
	l.mu.Unlock()
}

func (l *Liner) write() {
	defer l.wg.Done()
	t := time.NewTicker(LineEvery)
	defer t.Stop()
	for n := 0; ; n++ {
		_ = l.c.SetWriteDeadline(time.Now().Add(time.Minute))
		if _, err := io.WriteString(l.c, lineText(n)); err != nil {
			l.fail(fmt.Errorf("writing line %d: %s", n, Outcome(err)))
			return
		}
		l.mu.Lock()
		l.sent++
		l.mu.Unlock()
		select {
		case <-l.stop:
			_ = l.c.(*net.TCPConn).CloseWrite()
			return
		case <-t.C:
		}
	}
}

func (l *Liner) read() {
	defer l.wg.Done()
	r := bufio.NewReader(l.c)
	for n := 0; ; n++ {
		_ = l.c.SetReadDeadline(time.Now().Add(time.Minute))
		got, err := r.ReadString('\n')
		if errors.Is(err, io.EOF) && got == "" {
			return // the echo server closed after the client's half-close
		}
		if err != nil {
			l.fail(fmt.Errorf("reading line %d: %s", n, Outcome(err)))
			return
		}
		if want := lineText(n); got != want {
			l.fail(fmt.Errorf("line %d came back as %q, want %q", n, got, want))
			return
		}
		now := time.Now()
		l.mu.Lock()
		l.echoed++
		l.bytes += int64(len(got))
		l.longest = max(l.longest, now.Sub(l.last))
		l.last = now
		l.mu.Unlock()
	}
}

// Echoed is how many lines came back so far.
func (l *Liner) Echoed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.echoed
}

// Err is the first failure so far.
func (l *Liner) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// LinerResult is what a finished Liner saw.
type LinerResult struct {
	Sent, Echoed int
	Bytes        int64
	Longest      time.Duration // the longest wait between two lines coming back
	Err          error
}

// OK reports whether every line sent came back intact.
func (r LinerResult) OK() bool { return r.Err == nil && r.Sent > 0 && r.Echoed == r.Sent }

func (r LinerResult) String() string {
	s := fmt.Sprintf("%d line(s) sent, %d came back intact (%d bytes), longest gap %.1f s", r.Sent, r.Echoed, r.Bytes, r.Longest.Seconds())
	if r.Err != nil {
		s += ", error: " + r.Err.Error()
	}
	return s
}

// Finish stops sending, half-closes, reads the rest back until the server
// closes (or timeout) and returns what was seen.
func (l *Liner) Finish(timeout time.Duration) LinerResult {
	close(l.stop)
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		l.fail(fmt.Errorf("the last lines did not come back within %v", timeout))
		l.c.Close()
		<-done
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.finished = true
	return LinerResult{Sent: l.sent, Echoed: l.echoed, Bytes: l.bytes, Longest: l.longest, Err: l.err}
}
