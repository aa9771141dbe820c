package logging

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"keepstate/reason"
)

// Sink is where one log goes: Kerio-style text lines, JSON lines, both or neither.
type Sink struct {
	Text io.Writer
	JSON io.Writer
}

func (s Sink) enabled() bool { return s.Text != nil || s.JSON != nil }

// Config says where each log goes and how much of the debug log to write.
type Config struct {
	Debug      Sink // {pktdrop} lines of dropped packets
	Filter     Sink // packets of rules with "log packets"
	Connection Sink // connections of rules with "log connections", when they end
	Warning    Sink // connection limits and other conditions an administrator must know
	Error      Sink // failures of keepstate itself
	Security   Sink // logins, failed logins, logouts and refused requests of the web administration

	Location *time.Location // time zone of the text timestamps; nil: local time

	Drops     DropFilter // which drops the debug log shows; the zero value shows none
	DropRate  float64    // drop lines per second, on average; <= 0: unlimited
	DropBurst int        // drop lines allowed at once above the rate (at least 1)
}

// Logger owns the sinks of every log and is safe for concurrent use. A nil
// *Logger logs nothing, so the engine can hold one unconditionally.
//
// Each line is written with one Write call, under one lock shared by all sinks, so
// lines never interleave even when several logs share a writer.
type Logger struct {
	cfg     Config
	drops   atomic.Pointer[DropFilter] // cfg.Drops, replaceable while packets flow
	loc     *time.Location
	limiter *DropLimiter
	now     func() time.Time // for events that carry no time

	mu     sync.Mutex // serialises writes
	closed atomic.Bool

	lines, suppressed, writeErrors atomic.Uint64
	errMu                          sync.Mutex
	firstErr                       error
}

// Stats are running totals since the Logger was created.
type Stats struct {
	Lines       uint64 // lines written, text and JSON counted separately
	Suppressed  uint64 // drop lines refused by the rate limiter
	WriteErrors uint64 // writes that failed
}

// New returns a Logger writing to the sinks of cfg.
func New(cfg Config) *Logger {
	loc := cfg.Location
	if loc == nil {
		loc = time.Local
	}
	l := &Logger{
		cfg:     cfg,
		loc:     loc,
		limiter: NewDropLimiter(cfg.DropRate, cfg.DropBurst),
		now:     time.Now,
	}
	drops := cfg.Drops
	l.drops.Store(&drops)
	return l
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// SetDrops changes which drops the debug log shows and at what rate, while packets
// flow: an administrator who switches on "packets dropped for any reason" to chase
// a problem (the first story's first step) must not have to restart the firewall.
func (l *Logger) SetDrops(f DropFilter, perSecond float64, burst int) {
	if l == nil {
		return
	}
	l.drops.Store(&f)
	l.limiter.SetRate(perSecond, burst)
}

// WantDrop reports whether a drop for reason r would be considered for the debug
// log at all. The engine may call it to skip building a PacketEvent.
func (l *Logger) WantDrop(r reason.Reason) bool {
	return l != nil && l.cfg.Debug.enabled() && l.drops.Load().Has(r)
}

// Drop writes the debug line of a dropped packet if the DropFilter selects its
// reason and the rate limiter allows it. Nothing is formatted otherwise: a refused
// drop costs a lock and a counter.
func (l *Logger) Drop(ev *PacketEvent) {
	if !l.WantDrop(ev.Reason) || l.closed.Load() {
		return
	}
	t := ev.Time
	if t.IsZero() {
		t = l.now()
	}
	var report Suppressed
	if !l.limiter.Allow(t, ev.Reason, &report) {
		l.suppressed.Add(1)
		return
	}
	if ev.Time.IsZero() {
		c := *ev
		c.Time = t
		ev = &c
	}
	bp := bufPool.Get().(*[]byte)
	l.mu.Lock()
	if report.Total > 0 {
		l.writeSuppressedLocked(bp, t, &report)
	}
	if w := l.cfg.Debug.Text; w != nil {
		*bp = AppendDrop((*bp)[:0], l.loc, ev)
		l.writeLocked(w, *bp)
	}
	if w := l.cfg.Debug.JSON; w != nil {
		*bp = AppendDropJSON((*bp)[:0], l.loc, ev)
		l.writeLocked(w, *bp)
	}
	l.mu.Unlock()
	bufPool.Put(bp)
}

// Filter writes the filter-log line of a packet that matched a rule logging its
// packets. The engine calls it only for such rules; it is not rate limited.
func (l *Logger) Filter(ev *PacketEvent) {
	if l == nil || !l.cfg.Filter.enabled() || l.closed.Load() {
		return
	}
	if ev.Time.IsZero() {
		c := *ev
		c.Time = l.now()
		ev = &c
	}
	l.write(l.cfg.Filter,
		func(b []byte) []byte { return AppendFilter(b, l.loc, ev) },
		func(b []byte) []byte { return AppendFilterJSON(b, l.loc, ev) })
}

// Connection writes the connection-log line of a logged connection that ended.
func (l *Logger) Connection(ev *ConnEvent) {
	if l == nil || !l.cfg.Connection.enabled() || l.closed.Load() {
		return
	}
	l.write(l.cfg.Connection,
		func(b []byte) []byte { return AppendConnection(b, l.loc, ev) },
		func(b []byte) []byte { return AppendConnectionJSON(b, l.loc, ev) })
}

// Warning writes a warning-log line, e.g. one built by ConnLimitWarning.
func (l *Logger) Warning(ev *WarningEvent) {
	if l == nil || !l.cfg.Warning.enabled() || l.closed.Load() {
		return
	}
	if ev.Time.IsZero() {
		c := *ev
		c.Time = l.now()
		ev = &c
	}
	l.write(l.cfg.Warning,
		func(b []byte) []byte { return AppendWarning(b, l.loc, ev) },
		func(b []byte) []byte { return AppendWarningJSON(b, l.loc, ev) })
}

// Security writes a security-log line: who logged in from where, who failed to
// and was refused (Kerio Control's Security log). Kind and Addr are fields of
// the JSON line.
func (l *Logger) Security(ev *WarningEvent) {
	if l == nil || !l.cfg.Security.enabled() || l.closed.Load() {
		return
	}
	if ev.Time.IsZero() {
		c := *ev
		c.Time = l.now()
		ev = &c
	}
	l.write(l.cfg.Security,
		func(b []byte) []byte { return AppendWarning(b, l.loc, ev) },
		func(b []byte) []byte { return appendEventJSON(b, l.loc, "security", ev) })
}

// Error writes an error-log line. A zero t means now.
func (l *Logger) Error(t time.Time, msg string) {
	if l == nil || !l.cfg.Error.enabled() || l.closed.Load() {
		return
	}
	if t.IsZero() {
		t = l.now()
	}
	l.write(l.cfg.Error,
		func(b []byte) []byte { return AppendMessage(b, l.loc, t, msg) },
		func(b []byte) []byte { return AppendMessageJSON(b, l.loc, t, "error", msg) })
}

// Flush writes the report of drops suppressed since logging last resumed, if any,
// timestamped with the last suppressed drop. Call it at the end of a replay and
// periodically in the daemon so that a flood that never ends is still reported.
func (l *Logger) Flush() {
	if l == nil || l.closed.Load() {
		return
	}
	l.flush()
}

func (l *Logger) flush() {
	var report Suppressed
	l.limiter.Take(&report)
	if report.Total == 0 || !l.cfg.Debug.enabled() {
		return
	}
	bp := bufPool.Get().(*[]byte)
	l.mu.Lock()
	l.writeSuppressedLocked(bp, report.Last, &report)
	l.mu.Unlock()
	bufPool.Put(bp)
}

// Close flushes, then closes every distinct sink writer that is an io.Closer,
// except os.Stdout and os.Stderr, which the process owns. It returns the first
// write or close error. Later calls log nothing.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	if l.closed.Swap(true) {
		return l.Err()
	}
	// Refuse new lines first, then report what was suppressed so far, so that
	// drops arriving during Close do not start a report nobody will write.
	l.flush()
	l.mu.Lock()
	defer l.mu.Unlock()
	var closed []io.Closer
	for _, s := range []Sink{l.cfg.Debug, l.cfg.Filter, l.cfg.Connection, l.cfg.Warning, l.cfg.Error, l.cfg.Security} {
		for _, w := range []io.Writer{s.Text, s.JSON} {
			c, ok := w.(io.Closer)
			if !ok || w == io.Writer(os.Stdout) || w == io.Writer(os.Stderr) || containsCloser(closed, c) {
				continue
			}
			closed = append(closed, c)
			if err := c.Close(); err != nil {
				l.noteErr(err)
			}
		}
	}
	return l.Err()
}

// containsCloser compares by identity. Writers of uncomparable types (never the
// case for files) cannot be compared without a panic, so they are closed once per
// appearance.
func containsCloser(list []io.Closer, c io.Closer) bool {
	if !reflect.TypeOf(c).Comparable() {
		return false
	}
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

// Err returns the first write or close error, or nil.
func (l *Logger) Err() error {
	if l == nil {
		return nil
	}
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.firstErr
}

// Stats returns the running totals.
func (l *Logger) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	return Stats{Lines: l.lines.Load(), Suppressed: l.suppressed.Load(), WriteErrors: l.writeErrors.Load()}
}

// write formats and writes one event to a sink's text and JSON writers. The
// closures do not escape: the call is made here, under the lock.
func (l *Logger) write(s Sink, text, js func([]byte) []byte) {
	bp := bufPool.Get().(*[]byte)
	l.mu.Lock()
	if s.Text != nil {
		*bp = text((*bp)[:0])
		l.writeLocked(s.Text, *bp)
	}
	if s.JSON != nil {
		*bp = js((*bp)[:0])
		l.writeLocked(s.JSON, *bp)
	}
	l.mu.Unlock()
	bufPool.Put(bp)
}

func (l *Logger) writeSuppressedLocked(bp *[]byte, at time.Time, s *Suppressed) {
	if w := l.cfg.Debug.Text; w != nil {
		*bp = AppendSuppressed((*bp)[:0], l.loc, at, s)
		l.writeLocked(w, *bp)
	}
	if w := l.cfg.Debug.JSON; w != nil {
		*bp = AppendSuppressedJSON((*bp)[:0], l.loc, at, s)
		l.writeLocked(w, *bp)
	}
}

func (l *Logger) writeLocked(w io.Writer, line []byte) {
	n, err := w.Write(line)
	if err == nil && n != len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		l.writeErrors.Add(1)
		l.noteErr(err)
		return
	}
	l.lines.Add(1)
}

func (l *Logger) noteErr(err error) {
	l.errMu.Lock()
	if l.firstErr == nil {
		l.firstErr = fmt.Errorf("logging: %w", err)
	}
	l.errMu.Unlock()
}
