//go:build linux

package nfqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"
)

// Plane is the live data plane: kernel hooks, queues and one worker per queue.
type Plane struct {
	o    Options
	spec hookSpec

	// Replaced by tests.
	run  runner
	have tools

	mu      sync.Mutex
	started bool
	closed  bool

	backend string
	netns   *os.File
	hooks   hookSet
	conns   []*conn
	workers []*worker
	answers *answerSockets
	proc    *os.File // /proc/net/netfilter/nfnetlink_queue of the plane's namespace
	procMu  sync.Mutex

	stop    context.CancelFunc
	wg      sync.WaitGroup
	errMu   sync.Mutex
	err     error
	expires chan struct{}
}

// New checks o and returns a Plane that Start sets going.
func New(o Options) (*Plane, error) {
	if o.Engine == nil {
		return nil, errors.New("nfqueue: Options.Engine is nil")
	}
	if o.Queues <= 0 {
		o.Queues = runtime.GOMAXPROCS(0)
	}
	if int(o.QueueNum)+o.Queues-1 > 0xffff {
		return nil, fmt.Errorf("nfqueue: queues %d..%d exceed 65535", o.QueueNum, int(o.QueueNum)+o.Queues-1)
	}
	switch o.Backend {
	case "", BackendAuto, BackendNft, BackendIptables:
	default:
		return nil, fmt.Errorf("nfqueue: unknown backend %q (want auto, nft or iptables)", o.Backend)
	}
	return &Plane{
		o:    o,
		spec: hookSpec{queueNum: o.QueueNum, queues: o.Queues, bypass: o.FailOpen, input: o.Input, cpuFanout: o.CPUFanout, acceptMark: acceptMarkOf(o.FastPath)},
		run:  execRunner,
		have: haveTool,
	}, nil
}

// Start binds the queues, installs the hooks and starts the workers and the
// engine's expiry, then returns. It works in the network namespace of the calling
// thread. Queues are bound before any hook is touched, so a queue held by another
// program fails Start before anything changed. Hooks left by a keepstate that
// died are replaced in one transaction per table, never leaving a moment without
// hooks, and what the new hooks do not replace is removed afterwards. When Start
// fails, everything it did is undone.
//
// The workers run until ctx ends or Close; the hooks stay until Close.
func (p *Plane) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("nfqueue: Plane already started")
	}
	p.started = true
	ns, err := currentNetns()
	if err != nil {
		return fmt.Errorf("nfqueue: network namespace: %w", err)
	}
	p.netns = ns
	if err := runInNetns(ns, func() error { return p.setup(ctx) }); err != nil {
		p.release()
		return err
	}

	wctx, stop := context.WithCancel(ctx)
	p.stop = stop
	p.expires = make(chan struct{})
	for _, w := range p.workers {
		w := w
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := w.run(); err != nil {
				p.fail(err)
			}
		}()
	}
	// Ending the context wakes the workers through their sockets' deadline.
	conns := p.conns
	context.AfterFunc(wctx, func() {
		for _, c := range conns {
			_ = c.file.SetReadDeadline(time.Unix(1, 0))
		}
	})
	go p.expireLoop(wctx)
	return nil
}

// setup runs in the plane's namespace.
func (p *Plane) setup(ctx context.Context) error {
	ans, err := openAnswerSockets()
	if err != nil {
		return err
	}
	p.answers = ans
	if f, err := os.Open("/proc/thread-self/net/netfilter/nfnetlink_queue"); err == nil {
		p.proc = f
	}
	flags := uint32(cfgFlagGSO)
	if p.o.FailOpen {
		flags |= cfgFlagFailOpen
	}
	qc := queueConfig{CopyRange: copyRange, MaxLen: queueMaxLen, Flags: flags}
	for i := 0; i < p.o.Queues; i++ {
		c, err := openConn(p.o.QueueNum+uint16(i), qc, rcvBuf)
		if err != nil {
			return err
		}
		p.conns = append(p.conns, c)
		w := newWorker(c, p.o.Engine, p.o.Reporter, ans, newIfaceMap(p.o.Engine, ans.fd4))
		w.fast = p.o.FastPath
		p.workers = append(p.workers, w)
	}
	choice, err := chooseBackend(ctx, p.o.Backend, p.spec, p.run, p.have)
	if err != nil {
		return err
	}
	p.backend = choice.describe
	p.hooks.run = p.run
	if err := p.hooks.install(ctx, choice.steps); err != nil {
		return err
	}
	// Only now: until the new hooks were in, the old ones kept the traffic
	// going to the queues (already ours) instead of past them.
	removeStale(ctx, p.run, choice.stale)
	return nil
}

func acceptMarkOf(f FastPath) uint32 {
	if f == nil {
		return 0
	}
	return f.AcceptMark()
}

// expireEvery is how often the engine forgets idle connections.
const expireEvery = time.Second

func (p *Plane) expireLoop(ctx context.Context) {
	defer close(p.expires)
	t := time.NewTicker(expireEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.o.Engine.Expire(now.UnixNano())
		}
	}
}

func (p *Plane) fail(err error) {
	p.errMu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.errMu.Unlock()
}

// removeTimeout bounds the removal of the hooks: the tools wait for the xtables
// lock (-w), which a stuck program could hold forever.
const removeTimeout = 30 * time.Second

// stopTimeout bounds how long Close waits for the workers and the expiry loop
// (a variable for tests).
var stopTimeout = 10 * time.Second

// drainTime is how long the workers keep deciding after the hooks are gone:
// packets already queued get a verdict instead of being dropped with the socket.
const drainTime = 100 * time.Millisecond

// Close removes every hook the plane installed, lets the workers decide the packets
// still queued, stops them and closes the queues. It is safe to call more than
// once and from any goroutine.
func (p *Plane) Close() error { return p.shutdown(true) }

// Detach stops the workers and closes the queues but leaves the hooks in place:
// for a restart, where the next Plane (in this process or the next) takes the
// hooks over at Start without a moment of unfiltered traffic. Until then the
// hooks' fail mode applies: fail closed, the kernel drops the packets (TCP
// retransmits them); fail open, they pass. Close after Detach does nothing.
func (p *Plane) Detach() error { return p.shutdown(false) }

func (p *Plane) shutdown(removeHooks bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.started {
		p.closed = true
		return nil
	}
	p.closed = true
	var errs []error
	if removeHooks && p.netns != nil && len(p.hooks.installed) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
		errs = append(errs, runInNetns(p.netns, func() error { return p.hooks.remove(ctx) }))
		cancel()
	}
	drain := drainTime
	if !removeHooks {
		drain = 0 // the hooks keep queueing: there is no end to drain
	}
	for _, c := range p.conns {
		_ = c.file.SetReadDeadline(time.Now().Add(drain))
	}
	stopped := make(chan struct{})
	go func() {
		p.wg.Wait()
		if p.stop != nil {
			p.stop()
			<-p.expires
		}
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(stopTimeout):
		// A worker stuck in the engine or the Reporter: closing its socket
		// below ends it at its next receive. Close must return regardless.
		errs = append(errs, fmt.Errorf("nfqueue: workers did not stop within %v", stopTimeout))
	}
	p.release()
	errs = append(errs, p.Err())
	return errors.Join(errs...)
}

// release closes what setup opened.
func (p *Plane) release() {
	for _, c := range p.conns {
		_ = c.close()
	}
	p.conns = nil
	if p.answers != nil {
		p.answers.close()
	}
	p.procMu.Lock()
	if p.proc != nil {
		p.proc.Close()
		p.proc = nil
	}
	p.procMu.Unlock()
	if p.netns != nil {
		p.netns.Close()
		p.netns = nil
	}
}

// Wait blocks until every worker has stopped (the Start context ended, Close, or a
// socket that keeps failing) and returns the error that stopped one, if any.
func (p *Plane) Wait() error {
	p.wg.Wait()
	return p.Err()
}

// Err returns the error that stopped a worker, or nil.
func (p *Plane) Err() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.err
}

// Backend says how packets reach the queues, e.g. "iptables (xt NFQUEUE)" or
// "nftables (native queue)"; empty before Start.
func (p *Plane) Backend() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.backend
}

// Stats returns the counters so far, per queue and summed, with the kernel's own
// counters for the plane's queues.
func (p *Plane) Stats() Stats {
	p.mu.Lock()
	workers := p.workers
	s := Stats{Backend: p.backend}
	p.mu.Unlock()

	s.Latency = newLatencyHistogram()
	kq, kerr := p.kernelQueues()
	if kerr != nil {
		s.KernelStatsError = kerr.Error()
	}
	for _, w := range workers {
		q := QueueStats{Queue: w.c.queue, Counters: w.stat.snapshot()}
		for _, k := range kq {
			if k.Queue == q.Queue {
				q.QueueDropped, q.UserDropped, q.Waiting = k.QueueDropped, k.UserDropped, k.Waiting
			}
		}
		s.Counters.add(&q.Counters)
		s.Queues = append(s.Queues, q)
		for i := range s.Latency.Counts {
			s.Latency.Counts[i] += w.stat.latency[i].Load()
		}
	}
	return s
}

func (p *Plane) kernelQueues() ([]kernelQueue, error) {
	p.procMu.Lock()
	defer p.procMu.Unlock()
	if p.proc == nil {
		return nil, errors.New("/proc/net/netfilter/nfnetlink_queue is not available")
	}
	if _, err := p.proc.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(p.proc)
	if err != nil {
		return nil, err
	}
	return parseKernelQueues(data), nil
}
