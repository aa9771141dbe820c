package cli

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"time"

	"keepstate/config"
	"keepstate/daemon"
)

func init() {
	register(&command{
		name:    "config",
		summary: "check, export, import or confirm a configuration (winroute.cfg, folder or .tgz bundle)",
		run:     runConfig,
	})
}

// defaultConfigDir is where `config import` installs and `config export` reads.
const defaultConfigDir = "/etc/keepstate"

const configUsage = `config check PATH
       keepstate config export [--socket SOCK | --config PATH | --default] [-o FILE.tgz]
       keepstate config import PATH [--socket SOCK] [--confirm-within 30s] | [--dir DIR]
       keepstate config confirm [--socket SOCK]

PATH is a bundle (.tgz), a bundle folder or a lone winroute.cfg.

When keepstate runs (its admin socket exists, or --socket is given), export reads
the configuration in force and import hands the new one to the daemon, which
applies it at once and keeps the connections. With --confirm-within the change
rolls back by itself unless 'keepstate config confirm' arrives in time; the
configuration file is rewritten only once confirmed. Without a running keepstate,
or with --config/--default (export) or --dir (import), they work on files.`

func runConfig(e *env, args []string) int {
	return runSubcommands(e, "config", configUsage, []subcommand{
		{"check", configCheck}, {"export", configExport}, {"import", configImport}, {"confirm", configConfirm},
	}, args)
}

// machineInfo describes the machine that exports: hostname, GOOS/GOARCH and its
// network devices. A variable so tests pin it.
var machineInfo = func() (hostname, hardware string, devices []string) {
	hostname, _ = os.Hostname()
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		devices = append(devices, ifc.Name)
	}
	slices.Sort(devices)
	return hostname, runtime.GOOS + "/" + runtime.GOARCH, devices
}

// loadBundle loads path and prints every error ("file:line: message") and warning.
// It returns nil and the exit code on failure.
func loadBundle(e *env, path string) (*config.Bundle, int) {
	b, err := config.LoadBundle(path)
	if err != nil {
		var list config.ErrorList
		var pe *os.PathError
		switch {
		case errors.As(err, &list):
			for _, ce := range list {
				fmt.Fprintln(e.stderr, ce.Error())
			}
			fmt.Fprintf(e.stderr, "%d error(s)\n", len(list))
		case errors.As(err, &pe):
			e.errorf("config: %v", err)
			return nil, exitFail
		default:
			fmt.Fprintln(e.stderr, err)
		}
		return nil, exitUsage
	}
	for _, w := range b.Config.Warnings() {
		fmt.Fprintf(e.stderr, "%s:%d: warning: %s\n", w.File, w.Line, w.Msg)
	}
	return b, exitOK
}

func configCheck(e *env, args []string) int {
	fs := newFlagSet(e, "config check", "config check PATH")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(paths) != 1 {
		fs.Usage()
		return exitUsage
	}
	b, code := loadBundle(e, paths[0])
	if b == nil {
		return code
	}
	fmt.Fprintf(e.stdout, "ok: %s: %s\n", paths[0], daemon.Summary(b.Config))
	return exitOK
}

func configExport(e *env, args []string) int {
	fs := newFlagSet(e, "config export", "config export [--socket SOCK | --config PATH | --default] [-o FILE.tgz]")
	from := fs.String("config", "", "configuration to export: bundle, folder or winroute.cfg (default: the running keepstate's, else "+defaultConfigDir+")")
	builtin := fs.Bool("default", false, "export the built-in default configuration")
	out := fs.String("o", "", "bundle file to write (default or -: standard output, unless it is a terminal)")
	socket := socketFlag(fs)
	paths, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	fromDaemon := flagGiven(fs, "socket") || (!*builtin && *from == "" && daemonRunning(*socket))
	if len(paths) != 0 || (*builtin && *from != "") || (fromDaemon && (*builtin || *from != "")) {
		fs.Usage()
		return exitUsage
	}
	var b *config.Bundle
	note := ""
	switch {
	case fromDaemon:
		var res daemon.ExportResult
		if code := callDaemon(e, *socket, &daemon.Request{Cmd: daemon.CmdConfigExport}, &res); code != exitOK {
			return code
		}
		if b, err = config.ReadBundle("running configuration", bytes.NewReader(res.Bundle)); err != nil {
			e.errorf("config export: %v", err)
			return exitFail
		}
		note = fmt.Sprintf(" (running configuration %s)", res.Hash)
		if res.Unconfirmed {
			note = fmt.Sprintf(" (running configuration %s, NOT CONFIRMED: it rolls back unless 'keepstate config confirm')", res.Hash)
		}
	case *builtin:
		b = config.NewBundle(config.Default())
	default:
		src := *from
		if src == "" {
			src = defaultConfigDir
		}
		var code int
		if b, code = loadBundle(e, src); b == nil {
			return code
		}
	}
	// The machine members describe the machine that exports, not the one that
	// wrote the source.
	b.Host.Hostname, b.Hardware, b.Interfaces = machineInfo()
	var buf bytes.Buffer
	if err := config.WriteBundle(&buf, b); err != nil {
		e.errorf("config export: %v", err)
		return exitFail
	}
	if *out == "" || *out == "-" {
		if isTerminal(e.stdout) {
			e.errorf("config export: refusing to write a gzip bundle to a terminal; use -o FILE.tgz or a pipe")
			return exitUsage
		}
		if _, err := e.stdout.Write(buf.Bytes()); err != nil {
			e.errorf("config export: %v", err)
			return exitFail
		}
		fmt.Fprintf(e.stderr, "wrote %d bytes%s: %s\n", buf.Len(), note, daemon.Summary(b.Config))
		return exitOK
	}
	// Mode 0600: UserDB.cfg is inside.
	if err := config.WriteFileAtomic(*out, buf.Bytes(), 0o600); err != nil {
		e.errorf("config export: %v", err)
		return exitFail
	}
	fmt.Fprintf(e.stdout, "wrote %s (%d bytes)%s: %s\n", *out, buf.Len(), note, daemon.Summary(b.Config))
	return exitOK
}

// installBundle writes a validated bundle into dir (atomically per file,
// winroute.cfg last): the import when no keepstate runs. A running keepstate gets
// the bundle over its admin socket instead (importToDaemon).
var installBundle = config.InstallBundle

func configImport(e *env, args []string) int {
	fs := newFlagSet(e, "config import", "config import PATH [--socket SOCK] [--confirm-within 30s] | [--dir DIR]")
	dir := fs.String("dir", defaultConfigDir, "with no keepstate running: folder to install winroute.cfg and its companions into")
	within := fs.Duration("confirm-within", 0, "roll the change back unless 'keepstate config confirm' arrives within this time (needs a running keepstate)")
	socket := socketFlag(fs)
	paths, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	toDaemon := flagGiven(fs, "socket") || (!flagGiven(fs, "dir") && daemonRunning(*socket))
	if len(paths) != 1 || (toDaemon && flagGiven(fs, "dir")) || *within < 0 {
		fs.Usage()
		return exitUsage
	}
	if toDaemon {
		return importToDaemon(e, paths[0], *socket, *within)
	}
	if *within > 0 {
		e.errorf("config import: --confirm-within needs a running keepstate (nothing listens on %s)", *socket)
		return exitUsage
	}
	b, code := loadBundle(e, paths[0])
	if b == nil {
		fmt.Fprintf(e.stderr, "nothing imported: %s unchanged\n", *dir)
		return code
	}
	_, _, devices := machineInfo()
	for _, ifc := range b.Config.Policy.Interfaces {
		if ifc.Device != "" && !slices.Contains(devices, ifc.Device) {
			fmt.Fprintf(e.stderr, "warning: interface %q uses device %q, which this machine does not have\n", ifc.Name, ifc.Device)
		}
	}
	if err := installBundle(*dir, b); err != nil {
		e.errorf("config import: %v", err)
		return exitFail
	}
	fmt.Fprintf(e.stdout, "imported %s into %s: %s\n", paths[0], *dir, daemon.Summary(b.Config))
	return exitOK
}

// importToDaemon sends the configuration at path to the running keepstate, which
// checks it (every problem comes back as file:line of path) and applies it.
func importToDaemon(e *env, path, socket string, within time.Duration) int {
	data, err := importBytes(path)
	if err != nil {
		e.errorf("config import: %v", err)
		fmt.Fprintln(e.stderr, "nothing imported: the running configuration is unchanged")
		return exitFail
	}
	req := &daemon.Request{Cmd: daemon.CmdConfigImport, Name: path, Data: data}
	if within > 0 {
		req.ConfirmWithin = within.String()
	}
	var res daemon.ImportResult
	if code := callDaemon(e, socket, req, &res); code != exitOK {
		fmt.Fprintln(e.stderr, "nothing imported: the running configuration is unchanged")
		return code
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(e.stderr, w)
	}
	fmt.Fprintf(e.stdout, "imported %s into the running keepstate: configuration %s (generation %d), %d connection(s) kept, %d closed\n",
		path, res.Config.Hash, res.Config.Generation, res.Kept, res.Closed)
	fmt.Fprintf(e.stdout, "in force: %s\n", res.Config.Summary)
	if p := res.Pending; p != nil {
		fmt.Fprintf(e.stdout, "NOT CONFIRMED: run 'keepstate config confirm' before %s (%v), or keepstate goes back to %s by itself\n",
			p.Deadline.Local().Format(time.TimeOnly), within, p.RollbackHash)
	} else {
		fmt.Fprintf(e.stdout, "saved to %s\n", res.Saved)
	}
	return exitOK
}

// importBytes reads what `config import` sends: a file as it is (bundle or lone
// winroute.cfg), a bundle folder packed into a bundle of its member files as they
// are, so that the daemon's error positions are the lines of the user's files.
func importBytes(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		if fi.Size() > daemon.MaxRequestBytes/4*3-4096 {
			return nil, fmt.Errorf("%s: %d bytes, too large to import", path, fi.Size())
		}
		return os.ReadFile(path)
	}
	return packFolder(path)
}

func configConfirm(e *env, args []string) int {
	fs := newFlagSet(e, "config confirm", "config confirm [--socket SOCK]")
	socket := socketFlag(fs)
	if !parseNoArgs(fs, args) {
		return exitUsage
	}
	var res daemon.ConfirmResult
	if code := callDaemon(e, *socket, &daemon.Request{Cmd: daemon.CmdConfigConfirm}, &res); code != exitOK {
		return code
	}
	fmt.Fprintf(e.stdout, "confirmed configuration %s, saved to %s\n", res.Config.Hash, res.Saved)
	return exitOK
}
