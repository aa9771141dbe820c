package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"keepstate/bench"
	"keepstate/config"
	"keepstate/daemon"
	"keepstate/dataplane"
	"keepstate/dataplane/nfqueue"
	"keepstate/firewall"
	"keepstate/web"
)

func init() {
	register(&command{
		name:    "run",
		summary: "run the firewall in the foreground (NFQUEUE data plane, admin socket, metrics)",
		run:     runDaemon,
	})
}

const runUsage = `run [--config PATH] [--log-dir DIR] [--json-logs] [--state FILE] [--state-interval 5s]
           [--socket PATH] [--metrics 127.0.0.1:9469] [--queue N] [--queues K] [--fail open|closed]
           [--input] [--backend auto|nft|iptables] [--fanout hash|cpu] [--fast-path auto|on|off]
           [--admin-listen 127.0.0.1:4081|off] [--tls-cert FILE] [--tls-key FILE]

Runs until SIGINT or SIGTERM (a stop) or SIGUSR2 (a stop for a restart). SIGHUP
reloads --config. With --fail closed (the default) nothing keepstate filters passes
unfiltered while no keepstate runs, whatever the stop: the hooks stay and the kernel
drops what they queue until the next keepstate reads them ('keepstate unhook' takes
keepstate out of the path). With --fail open a stop removes the hooks, and while a
restart or a crash leaves them, or a queue is full, packets pass unfiltered.
--state FILE keeps the connection table across every kind of stop: written on stop
and every --state-interval while running (a crash loses at most that much), read at
start. Exit status: 0 stopped, 1 failed, 64 bad arguments, 78 the configuration does
not load (2 is Go's status for a crash).

--fast-path (default auto) accepts the ordinary packets of established connections in
the kernel (an eBPF program at each interface's ingress) instead of queueing them; auto
falls back to the queue alone, saying why, where the kernel refuses the program.

The web administration and its JSON-RPC API are served over HTTPS on
--admin-listen (loopback unless opened wider on purpose; off: none), with the
certificate given or a self-signed one kept next to --state (else in
/var/lib/keepstate); its SHA-256 fingerprint is printed at start. Users come from
UserDB.cfg: 'keepstate user add NAME --role admin'.`

// Exit statuses of run, from sysexits.h, so that a service manager can tell a
// configuration that will not load (do not restart) from a crash (restart): Go
// exits with 2 after a panic, which is exitUsage elsewhere.
const (
	exitRunUsage  = 64 // EX_USAGE
	exitRunConfig = 78 // EX_CONFIG
)

// startFaults, when a test build sets it (build tag faultinject), arms the faults
// tests inject into a running daemon. It is nil in every other build.
var startFaults func(e *env, d *daemon.Daemon)

// Defaults of the web administration; the tests of this package point them at
// an ephemeral port and a temporary folder.
var (
	defaultAdminListen = web.DefaultListen
	defaultWebStateDir = web.DefaultStateDir
)

// planeOptions are the data-plane flags of `keepstate run`.
type planeOptions struct {
	queue, queues int
	failOpen      bool
	input         bool
	backend       string
	fanout        string
	fastPath      string    // auto, on or off
	stderr        io.Writer // where auto says what it chose
}

// newPlane builds the data plane; tests replace it with a fake.
var newPlane = func(o planeOptions) daemon.PlaneFactory {
	return func(eng *firewall.Engine, rep *dataplane.Reporter) (daemon.DataPlane, error) {
		qo := nfqueue.Options{Engine: eng, Reporter: rep, QueueNum: uint16(o.queue), Queues: o.queues,
			FailOpen: o.failOpen, Input: o.input, Backend: o.backend, CPUFanout: o.fanout == "cpu"}
		var fast daemon.FastPath
		if o.fastPath != "off" {
			f, err := loadFastPath(eng)
			switch {
			case err == nil:
				qo.FastPath, fast = f, f
				fmt.Fprintln(o.stderr, "keepstate: fast path on: established connections are accepted in the kernel (eBPF, tc ingress)")
			case o.fastPath == "on":
				return nil, fmt.Errorf("--fast-path on: %w", err)
			default:
				fmt.Fprintf(o.stderr, "keepstate: fast path off (every packet goes through the queue): %v\n", err)
			}
		}
		p, err := nfqueue.New(qo)
		if err != nil {
			if fast != nil {
				fast.Close()
			}
			return nil, err
		}
		return daemon.QueuePlane{Plane: p, Fast: fast}, nil
	}
}

func runDaemon(e *env, args []string) int {
	fs := newFlagSet(e, "run", runUsage)
	cfgPath := fs.String("config", defaultConfigDir, "configuration: bundle folder, .tgz bundle or lone winroute.cfg")
	logDir := fs.String("log-dir", "", "folder of the log files and the drop capture (default: logs.cfg's Directory, /var/log/keepstate)")
	jsonLogs := fs.Bool("json-logs", false, "also write every log as JSON lines (NAME.json)")
	state := fs.String("state", "", "connection snapshot: written on stop and while running, restored on start (e.g. /var/lib/keepstate/conntrack.snap)")
	stateEvery := fs.Duration("state-interval", daemon.DefaultStateInterval, "how often the table is written to --state while running (0: only at stop)")
	socket := socketFlag(fs)
	metrics := fs.String("metrics", "", "serve Prometheus metrics on this loopback address, e.g. 127.0.0.1:9469")
	queue := fs.Int("queue", 0, "first NFQUEUE number")
	queues := fs.Int("queues", 0, "number of queues and worker goroutines (default: one per CPU)")
	fail := fs.String("fail", "closed", "open or closed: whether traffic passes while keepstate is not running")
	input := fs.Bool("input", false, "also filter packets to and from the firewall itself")
	backend := fs.String("backend", nfqueue.BackendAuto, "how packets reach the queues: auto, nft or iptables")
	adminListen := fs.String("admin-listen", defaultAdminListen, "serve the web administration (HTTPS) on this address; off: do not")
	tlsCert := fs.String("tls-cert", "", "PEM certificate of the web administration (default: a self-signed one, created on first start)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	fastPath := fs.String("fast-path", "auto", "auto, on or off: accept established connections' ordinary packets in the kernel (eBPF) instead of queueing them")
	fanout := fs.String("fanout", "hash", "how packets are spread over the queues: hash (of the two addresses: a connection stays on one worker) or cpu (by the CPU handling them: many streams between two hosts use every core)")
	if !parseNoArgs(fs, args) {
		return exitRunUsage
	}
	if *fanout != "hash" && *fanout != "cpu" {
		e.errorf("run: --fanout %q: want hash or cpu", *fanout)
		return exitRunUsage
	}
	if *fastPath != "auto" && *fastPath != "on" && *fastPath != "off" {
		e.errorf("run: --fast-path %q: want auto, on or off", *fastPath)
		return exitRunUsage
	}
	if *fail != "open" && *fail != "closed" {
		e.errorf("run: --fail %q: want open or closed", *fail)
		return exitRunUsage
	}
	if *queue < 0 || *queue > 0xffff || *queues < 0 {
		e.errorf("run: --queue must be 0-65535 and --queues positive")
		return exitRunUsage
	}
	if *stateEvery < 0 || (*stateEvery > 0 && *stateEvery < 100*time.Millisecond) {
		e.errorf("run: --state-interval %v: want 0 (only at stop) or at least 100ms", *stateEvery)
		return exitRunUsage
	}
	// The daemon and the SIGHUP handler both write to stderr.
	e = &env{stdout: e.stdout, stderr: &lockedWriter{w: e.stderr}}
	po := planeOptions{queue: *queue, queues: *queues, failOpen: *fail == "open", input: *input, backend: *backend, fanout: *fanout,
		fastPath: *fastPath, stderr: e.stderr}
	front := &frontend{}
	d, err := daemon.New(daemon.Options{
		ConfigPath: *cfgPath, LogDir: *logDir, JSONLogs: *jsonLogs, StatePath: *state, StateInterval: *stateEvery,
		SocketPath: *socket, MetricsAddr: *metrics, FailOpen: po.failOpen,
		NewPlane: newPlane(po), Stderr: e.stderr, Frontends: []daemon.Frontend{front},
		// Measured once, when an insight first quotes a memory cost.
		BytesPerConnection: bench.MeasuredBytesPerConnection,
	})
	if err != nil {
		return printStartError(e, err)
	}
	if *adminListen != "off" {
		stateDir := defaultWebStateDir
		if *state != "" {
			stateDir = filepath.Dir(*state)
		}
		srv, err := web.New(d, web.Options{Listen: *adminListen, CertFile: *tlsCert, KeyFile: *tlsKey,
			StateDir: stateDir, FiltersInput: *input, Stderr: e.stderr})
		if err != nil {
			d.Stop()
			e.errorf("run: %v", err)
			return exitFail
		}
		front.srv = srv
		defer srv.Close()
	}
	if startFaults != nil {
		startFaults(e, d)
	}

	// SIGINT, SIGTERM: stop (the fail mode says what happens to the hooks).
	// SIGUSR2: stop for a restart, leaving the hooks to the next keepstate.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	stops := make(chan os.Signal, 1)
	signal.Notify(stops, append([]os.Signal{os.Interrupt, syscall.SIGTERM}, restartSignals...)...)
	defer signal.Stop(stops)
	go func() {
		select {
		case sig := <-stops:
			if slices.Contains(restartSignals, sig) {
				d.KeepHooksOnStop()
			}
			stop()
		case <-ctx.Done():
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reloads := make(chan struct{})
	go func() {
		defer close(reloads)
		for range hup {
			reload(e, d)
		}
	}()
	err = d.Run(ctx)
	signal.Stop(hup)
	close(hup)
	<-reloads
	if err != nil {
		e.errorf("%v", err)
		return exitFail
	}
	return exitOK
}

// reload answers SIGHUP; the daemon logs the outcome in warning.log, the operator
// reads the details here (the journal).
func reload(e *env, d *daemon.Daemon) {
	res, err := d.Reload()
	var ce *daemon.ConfigError
	switch {
	case errors.As(err, &ce):
		for _, p := range ce.Problems() {
			fmt.Fprintln(e.stderr, p)
		}
	case err != nil:
		e.errorf("reload: %v", err)
	default:
		for _, w := range res.Warnings {
			fmt.Fprintln(e.stderr, w)
		}
		fmt.Fprintf(e.stderr, "keepstate: in force: %s\n", res.Config.Summary)
	}
}

// frontend hands the web server to the daemon, which starts it once it runs and
// closes it first when it stops; the server is made after the daemon it serves.
type frontend struct{ srv *web.Server }

func (f *frontend) Start() {
	if f.srv != nil {
		f.srv.Start()
	}
}

func (f *frontend) Close() error {
	if f.srv == nil {
		return nil
	}
	return f.srv.Close()
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func printStartError(e *env, err error) int {
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, p := range list {
			fmt.Fprintln(e.stderr, p.Error())
		}
		fmt.Fprintf(e.stderr, "%d error(s)\n", len(list))
		e.errorf("run: the configuration does not load; nothing started")
		return exitRunConfig
	}
	e.errorf("run: %v", err)
	return exitFail
}
