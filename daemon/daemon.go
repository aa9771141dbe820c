package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"keepstate/config"
	"keepstate/dataplane"
	"keepstate/firewall"
	"keepstate/insight"
)

// Options configure a Daemon; they are the flags of `keepstate run`.
type Options struct {
	ConfigPath string // bundle (.tgz), bundle folder or lone winroute.cfg; required
	LogDir     string // empty: logs.cfg's Directory
	JSONLogs   bool   // also JSON lines (NAME.json); logs.cfg's JSON switch does the same
	StatePath  string // connection snapshot written on stop, read on start; empty: none
	// StateInterval is how often the table is also written to StatePath while
	// running (DefaultStateInterval in `keepstate run`), so that a crash loses at
	// most the connections of the last interval; 0: only at stop.
	StateInterval time.Duration
	SocketPath    string // admin socket; empty: DefaultSocket
	// MetricsAddr is a loopback host:port for Prometheus metrics; empty: none.
	MetricsAddr string
	FailOpen    bool // reported by status; the plane factory applies it

	NewPlane PlaneFactory // required

	// BytesPerConnection returns the memory one tracked connection costs and
	// where the figure comes from, for the insights' memory costs; it is called
	// once, when a cost is first quoted. nil: no memory figures.
	BytesPerConnection func() (float64, string)
	// Frontends are further transports of the admin operations (the web
	// administration): started once the daemon runs, closed first when it stops.
	Frontends []Frontend

	Stderr io.Writer        // what `keepstate run` says; nil: os.Stderr
	Now    func() time.Time // the daemon's clock; nil: time.Now
}

// Frontend is a transport of the daemon's operations other than the admin
// socket. Start must not block; Close ends every request in progress.
type Frontend interface {
	Start()
	Close() error
}

// flushEvery is how often the logger reports suppressed drop lines, so that a
// flood that never stops is still reported.
const flushEvery = 10 * time.Second

// dropsFlushEvery is how often the drop capture's buffer goes to its file: an
// administrator who opens drops.pcapng finds the drops of a second ago there, and a
// crash loses no more than that.
const dropsFlushEvery = time.Second

// Daemon is one running firewall. New prepares it, Start sets it going, Stop ends
// it; Run does all three around a context.
type Daemon struct {
	o    Options
	now  func() time.Time
	out  io.Writer
	logs *logFiles
	eng  *firewall.Engine
	rep  *dataplane.Reporter
	// insights runs the detectors on the drops and connection ends the reporter
	// sees, off the packet paths.
	insights *insight.Feed
	feed     *dataplane.DropFeed
	hist     history

	started  time.Time
	restored int
	state    *stateFiles // nil without --state
	savedAt  time.Time   // when the snapshot restored at start was written
	// recoverUntil is the end of the recovery window after an unclean start
	// (RecoverAfterCrashSeconds); zero when there is none.
	recoverUntil time.Time
	snaps        checkpoints

	plane     DataPlane
	planeDone chan error
	admin     *adminServer
	metrics   *metricsServer
	stopBg    context.CancelFunc
	bg        sync.WaitGroup

	mu        sync.Mutex // guards everything below and serialises configuration changes
	cur       *version   // in force
	confirmed *version   // what a rollback returns to; == cur when nothing is pending
	gen       uint64
	pending   *pending
	stopped   bool

	stopOnce  sync.Once
	stopErr   error
	keepHooks atomic.Bool
}

// version is one configuration that was in force.
type version struct {
	bundle  *config.Bundle
	source  string // file it came from
	hash    string
	gen     uint64
	applied time.Time
	// raw is what was imported, kept to be written as it was (comments and all)
	// when the --config file is of the same kind; nil for a configuration loaded
	// from --config itself.
	raw     []byte
	rawGzip bool
}

func (v *version) info(path string) ConfigInfo {
	return ConfigInfo{Path: path, Source: v.source, Hash: v.hash, Generation: v.gen,
		Applied: v.applied, Summary: Summary(v.bundle.Config)}
}

// ConfigHash identifies a configuration by what decides verdicts: the first 16
// hex digits of the SHA-256 of its winroute.cfg as keepstate writes it.
func ConfigHash(c *config.Config) string {
	sum := sha256.Sum256(config.Marshal(c))
	return hex.EncodeToString(sum[:8])
}

// Summary is the one-line description of a configuration that the CLI prints.
func Summary(c *config.Config) string {
	m := &c.Policy
	enabled := 0
	for _, r := range m.Rules {
		if r.Enabled {
			enabled++
		}
	}
	s := fmt.Sprintf("%d interface(s), %d rule(s) (%d enabled), %d address group(s), %d service(s), default action %v",
		len(m.Interfaces), len(m.Rules), enabled, len(m.AddressGroups), len(m.Services), m.DefaultAction)
	if changed := c.ChangedSettings(); len(changed) > 0 {
		return s + "; settings changed from defaults: " + strings.Join(changed, ", ")
	}
	return s + "; all settings at their defaults"
}

// New loads the configuration, opens the logs, builds the engine and restores the
// connection snapshot. A configuration that does not load returns the loader's
// error (a config.ErrorList lists every problem as file:line). Nothing is hooked
// into the kernel yet: that is Start.
func New(o Options) (*Daemon, error) {
	if o.ConfigPath == "" {
		return nil, errors.New("daemon: no configuration path")
	}
	if o.NewPlane == nil {
		return nil, errors.New("daemon: no data plane")
	}
	if o.SocketPath == "" {
		o.SocketPath = DefaultSocket
	}
	// Absolute paths: status shows where things are, whatever the working folder.
	for _, p := range []*string{&o.ConfigPath, &o.LogDir, &o.StatePath, &o.SocketPath} {
		if *p != "" {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	d := &Daemon{o: o, now: o.Now, out: o.Stderr}
	if d.now == nil {
		d.now = time.Now
	}
	if d.out == nil {
		d.out = os.Stderr
	}
	// The daemon speaks from several goroutines (admin requests, the rollback
	// timer, the insight detectors): one line at a time.
	d.out = &serialWriter{w: d.out}
	b, err := config.LoadBundle(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	if d.o.LogDir == "" {
		d.o.LogDir = b.Logs.Directory
	}
	d.o.LogDir = filepath.Clean(d.o.LogDir)
	if d.logs, err = openLogs(d.o.LogDir, o.JSONLogs || b.Logs.JSON, b.Logs, &b.Config.Settings); err != nil {
		return nil, fmt.Errorf("logs in %s: %w", d.o.LogDir, err)
	}
	d.feed = dataplane.NewDropFeed(feedSize)
	d.rep = &dataplane.Reporter{Log: d.logs.logger, Drops: d.logs.drops, Feed: d.feed}
	d.eng, err = b.Config.NewEngine(firewall.Options{OnConnEnd: d.rep.ConnEnd})
	if err != nil {
		d.logs.close()
		return nil, err
	}
	d.rep.Engine = d.eng
	d.newInsights(b.Config)
	now := d.now()
	d.gen = 1
	d.cur = &version{bundle: b, source: o.ConfigPath, hash: ConfigHash(b.Config), gen: 1, applied: now}
	d.confirmed = d.cur
	for _, w := range b.Config.Warnings() {
		d.say("%s:%d: warning: %s", w.File, w.Line, w.Msg)
	}
	if o.StatePath != "" {
		if d.state, err = openStateFiles(o.StatePath, now); err != nil {
			d.logs.close()
			return nil, err
		}
		d.snaps.info = SnapshotInfo{Path: o.StatePath, IntervalSeconds: o.StateInterval.Seconds()}
		d.restoreState(now)
	}
	return d, nil
}

// serialWriter serialises writes to w.
type serialWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *serialWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// say writes one line for the operator (the journal, under systemd).
func (d *Daemon) say(format string, a ...any) {
	fmt.Fprintf(d.out, "keepstate: "+format+"\n", a...)
}

// fail writes a failure of the daemon itself to error.log and the operator.
func (d *Daemon) fail(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	d.logs.logger.Error(d.now(), msg)
	d.say("error: %s", msg)
}

// Engine returns the engine the daemon runs.
func (d *Daemon) Engine() *firewall.Engine { return d.eng }

// Start opens the admin socket and the metrics listener, then starts the data
// plane: a second daemon, or a socket or address in use, fails before any hook
// is installed. When Start fails, what it started is stopped again.
func (d *Daemon) Start(ctx context.Context) error {
	var err error
	if d.admin, err = listenAdmin(d, d.o.SocketPath); err != nil {
		return err
	}
	if d.o.MetricsAddr != "" {
		if d.metrics, err = listenMetrics(d, d.o.MetricsAddr); err != nil {
			d.admin.close()
			return err
		}
	}
	d.recoverAfterUncleanStart()
	plane, err := d.o.NewPlane(d.eng, d.rep)
	if err == nil {
		err = plane.Start(ctx)
	}
	if err != nil {
		d.admin.close()
		if d.metrics != nil {
			d.metrics.close()
		}
		return fmt.Errorf("data plane: %w", err)
	}
	d.plane = plane
	d.started = d.now()
	d.planeDone = make(chan error, 1)
	go func() { d.planeDone <- plane.Wait() }()

	bg, stop := context.WithCancel(context.Background())
	d.stopBg = stop
	d.bg.Add(1)
	go func() { defer d.bg.Done(); d.flushLoop(bg) }()
	if d.state != nil && d.o.StateInterval > 0 {
		d.bg.Add(1)
		go func() { defer d.bg.Done(); d.checkpointLoop(bg) }()
	}
	d.startInsights()
	d.admin.start()
	if d.metrics != nil {
		d.metrics.start()
	}
	for _, f := range d.o.Frontends {
		f.Start()
	}

	fail := "closed (traffic stops while keepstate is not running)"
	if d.o.FailOpen {
		fail = "open (traffic passes unfiltered while keepstate is not running or a queue is full)"
	}
	d.say("running: backend %s, fail %s", plane.Backend(), fail)
	d.mu.Lock() // a SIGHUP may already be reloading
	cur := d.cur
	d.mu.Unlock()
	d.say("configuration %s (%s): %s", d.o.ConfigPath, cur.hash, Summary(cur.bundle.Config))
	d.say("admin socket %s, logs in %s", d.o.SocketPath, d.o.LogDir)
	if d.metrics != nil {
		d.say("metrics on %s", d.metrics.url())
	}
	return nil
}

func (d *Daemon) flushLoop(ctx context.Context) {
	t := time.NewTicker(dropsFlushEvery)
	defer t.Stop()
	sample := time.NewTicker(sampleEvery)
	defer sample.Stop()
	d.hist.add(d.sample())
	for n := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-sample.C:
			d.hist.add(d.sample())
		case <-t.C:
			if n++; n%int(flushEvery/dropsFlushEvery) == 0 {
				d.logs.logger.Flush()
			}
			if d.logs.drops != nil {
				d.logs.drops.Flush()
			}
		}
	}
}

// Run starts the daemon and runs it until ctx ends or the data plane fails, then
// stops it. The error is the plane's failure or the first error of Stop.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.Start(ctx); err != nil {
		d.Stop() // nothing ran: the table goes back to --state as it was read
		return err
	}
	var planeErr error
	select {
	case <-ctx.Done():
	case planeErr = <-d.planeDone:
		if planeErr != nil {
			d.fail("data plane stopped: %v", planeErr)
		}
	}
	return errors.Join(planeErr, d.Stop())
}

// Stop ends a started daemon: no more admin requests, a pending change dropped
// (it was never saved, so the next start uses the confirmed configuration), the
// plane's hooks removed (or left for the next start, after KeepHooksOnStop), the
// table saved to --state, the logs flushed and closed. It is safe to call more
// than once.
func (d *Daemon) Stop() error {
	d.stopOnce.Do(func() { d.stopErr = d.stop() })
	return d.stopErr
}

// KeepHooksOnStop makes the coming Stop a stop for a restart: the plane detaches
// and its hooks stay, so no forwarded packet passes unfiltered until the next
// keepstate takes them over (fail closed: they are dropped and retransmitted;
// fail open: they pass). `keepstate run` calls it on SIGUSR2, systemd's
// RestartKillSignal in dist/keepstate.service.
func (d *Daemon) KeepHooksOnStop() { d.keepHooks.Store(true) }

func (d *Daemon) stop() error {
	if d.plane == nil { // never started, or Start failed: nothing ran
		return errors.Join(d.saveFinal(), d.closeLogs())
	}
	var errs []error
	for _, f := range d.o.Frontends {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	d.admin.close()
	d.mu.Lock()
	d.stopped = true
	if d.takePendingLocked() != nil {
		d.warn("config_unconfirmed_at_stop", "stopped with an unconfirmed configuration (%s from %s): it was not saved; the next start uses %s (%s)",
			d.cur.hash, d.cur.source, d.o.ConfigPath, d.confirmed.hash)
	}
	d.mu.Unlock()
	// Fail closed means closed whatever the stop: the hooks stay, and the kernel
	// drops what they would queue until a keepstate reads the queues again.
	// Fail open removes them on a plain stop: the kernel's own rules decide.
	var err error
	switch {
	case d.keepHooks.Load():
		d.say("stopping for a restart: hooks left in place until the next start (fail %s)", failMode(d.o.FailOpen))
		err = d.plane.Detach()
	case !d.o.FailOpen:
		d.say("stopping: hooks left in place (fail closed): the traffic keepstate filters is dropped until keepstate runs again; 'keepstate unhook' removes them")
		err = d.plane.Detach()
	default:
		d.say("stopping: hooks removed (fail open): traffic follows the kernel's own rules, unfiltered by keepstate, until keepstate runs again")
		err = d.plane.Close()
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("data plane: %w", err))
	}
	if d.metrics != nil {
		d.metrics.close()
	}
	d.stopBg()
	d.bg.Wait()
	d.insights.Close()
	errs = append(errs, d.saveFinal(), d.closeLogs())
	return errors.Join(errs...)
}

// saveFinal writes the table to --state and then removes the marker, so that the
// next start is a clean one; when the snapshot cannot be written the marker stays
// and the next start counts as unclean.
func (d *Daemon) saveFinal() error {
	if d.state == nil {
		return nil
	}
	n, _, err := saveState(d.o.StatePath, d.eng.Table(), d.now())
	if err != nil {
		d.fail("saving connections to %s: %v; the next start counts as an unclean one", d.o.StatePath, err)
		return errors.Join(err, d.state.close(false))
	}
	d.say("saved %d connection(s) to %s", n, d.o.StatePath)
	return d.state.close(true)
}

func failMode(open bool) string {
	if open {
		return "open"
	}
	return "closed"
}

func (d *Daemon) closeLogs() error {
	if err := d.logs.close(); err != nil {
		d.say("error: closing logs: %v", err)
		return err
	}
	return nil
}
