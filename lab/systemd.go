//go:build linux

package lab

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"keepstate/dist"
)

// Unit is what the lab reads of a systemd service unit: the [Service] settings
// that decide how systemd starts, stops and restarts keepstate. The lab does to
// the daemon what systemd would do with them (see systemd.service(5),
// systemd.kill(5), systemd.exec(5)), so a change of the unit that breaks a restart
// breaks the lab's scenarios.
type Unit struct {
	ExecStart         []string
	KillSignal        syscall.Signal // for a stop; systemd's default SIGTERM
	RestartKillSignal syscall.Signal // for a restart; defaults to KillSignal
	TimeoutStop       time.Duration  // then SIGKILL (SendSIGKILL=yes); default 90 s
	Restart           string         // no, on-failure, always, ...
	RestartDelay      time.Duration  // RestartSec; default 100 ms
	// RestartPreventExitStatus: exit statuses (and signals) after which Restart=
	// does not restart.
	RestartPreventExitStatus []string
	RuntimeDirectory         []string // under /run; removed when the unit stops (RuntimeDirectoryPreserve=no)
	RuntimeDirectoryPreserve string
	StateDirectory           []string // under /var/lib
	LogsDirectory            []string // under /var/log
}

// KeepstateUnit is dist/keepstate.service.
func KeepstateUnit() (*Unit, error) { return ParseUnit(dist.Unit) }

// ParseUnit reads the [Service] section of a unit file.
func ParseUnit(text []byte) (*Unit, error) {
	u := &Unit{KillSignal: syscall.SIGTERM, TimeoutStop: 90 * time.Second, Restart: "no", RestartDelay: 100 * time.Millisecond}
	section := ""
	var logical []string
	sc := bufio.NewScanner(bytes.NewReader(text))
	for cont := ""; sc.Scan(); {
		line := strings.TrimSpace(sc.Text())
		if cont == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		logical = append(logical, cont+line)
		cont = ""
	}
	for _, line := range logical {
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		if section != "Service" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("unit: %q is not KEY=VALUE", line)
		}
		var err error
		switch key {
		case "ExecStart":
			u.ExecStart = strings.Fields(val)
		case "KillSignal":
			u.KillSignal, err = parseSignal(val)
		case "RestartKillSignal":
			u.RestartKillSignal, err = parseSignal(val)
		case "TimeoutStopSec":
			u.TimeoutStop, err = parseSec(val)
		case "Restart":
			u.Restart = val
		case "RestartSec":
			u.RestartDelay, err = parseSec(val)
		case "RestartPreventExitStatus":
			u.RestartPreventExitStatus = strings.Fields(val)
		case "RuntimeDirectory":
			u.RuntimeDirectory = strings.Fields(val)
		case "RuntimeDirectoryPreserve":
			u.RuntimeDirectoryPreserve = val
		case "StateDirectory":
			u.StateDirectory = strings.Fields(val)
		case "LogsDirectory":
			u.LogsDirectory = strings.Fields(val)
		}
		if err != nil {
			return nil, fmt.Errorf("unit: %s: %w", key, err)
		}
	}
	if len(u.ExecStart) == 0 {
		return nil, fmt.Errorf("unit: no ExecStart")
	}
	if u.RestartKillSignal == 0 {
		u.RestartKillSignal = u.KillSignal
	}
	return u, sc.Err()
}

var signalNames = map[string]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGHUP": syscall.SIGHUP,
	"SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2, "SIGKILL": syscall.SIGKILL, "SIGQUIT": syscall.SIGQUIT,
}

func parseSignal(s string) (syscall.Signal, error) {
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	if sig, ok := signalNames[s]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// parseSec reads a plain number of seconds or a number with ms/s/min.
func parseSec(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	if strings.HasSuffix(s, "min") {
		n, err := strconv.ParseFloat(strings.TrimSuffix(s, "min"), 64)
		return time.Duration(n * float64(time.Minute)), err
	}
	return time.ParseDuration(s)
}

// unitPaths maps the unit's absolute paths into a lab folder.
type unitPaths struct {
	binary, config, dir string
	fail                string // replaces the unit's --fail, as an operator who edits it; "": the unit's
}

// rewrite maps one ExecStart word.
func (p unitPaths) rewrite(w string) string {
	for _, m := range []struct{ from, to string }{
		{"/usr/local/bin/keepstate", p.binary},
		{"/etc/keepstate", p.config},
		{"/var/lib/", filepath.Join(p.dir, "state") + "/"},
		{"/var/log/", filepath.Join(p.dir, "log") + "/"},
		{"/run/", filepath.Join(p.dir, "run") + "/"},
	} {
		if w == m.from {
			return m.to
		}
		if strings.HasPrefix(w, m.from) && strings.HasSuffix(m.from, "/") {
			return m.to + strings.TrimPrefix(w, m.from)
		}
	}
	return w
}

// args are the daemon's arguments (after the binary) in the lab folder.
func (u *Unit) args(p unitPaths) []string {
	var out []string
	for _, w := range u.ExecStart[1:] {
		out = append(out, p.rewrite(w))
	}
	if p.fail != "" {
		if i := slices.Index(out, "--fail"); i >= 0 && i+1 < len(out) {
			out[i+1] = p.fail
		}
	}
	return out
}

// flag returns the (rewritten) value of --name in ExecStart.
func (u *Unit) flag(p unitPaths, name string) string {
	args := u.args(p)
	if i := slices.Index(args, "--"+name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// makeDirs creates the directories systemd creates before ExecStart.
func (u *Unit) makeDirs(p unitPaths) error {
	for _, d := range []struct {
		names []string
		under string
	}{{u.RuntimeDirectory, "run"}, {u.StateDirectory, "state"}, {u.LogsDirectory, "log"}} {
		for _, n := range d.names {
			if err := os.MkdirAll(filepath.Join(p.dir, d.under, n), 0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeRuntime removes what systemd removes when the unit stops, a restart
// included, unless RuntimeDirectoryPreserve says otherwise.
func (u *Unit) removeRuntime(p unitPaths, restart bool) error {
	switch u.RuntimeDirectoryPreserve {
	case "yes":
		return nil
	case "restart":
		if restart {
			return nil
		}
	}
	for _, n := range u.RuntimeDirectory {
		if err := os.RemoveAll(filepath.Join(p.dir, "run", n)); err != nil {
			return err
		}
	}
	return nil
}

// restartsAfter says whether Restart= restarts a main process that ended with
// state ws, and why not when it does not (systemd.service(5): "on-failure" is an
// unclean exit code, an unclean signal, a timeout or the watchdog; SIGHUP, SIGINT,
// SIGTERM and SIGPIPE are clean signals).
func (u *Unit) restartsAfter(ws syscall.WaitStatus) (bool, string) {
	var what string
	clean := false
	switch {
	case ws.Exited():
		what = strconv.Itoa(ws.ExitStatus())
		clean = ws.ExitStatus() == 0
	case ws.Signaled():
		what = signalName(ws.Signal())
		switch ws.Signal() {
		case syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE:
			clean = true
		}
	}
	for _, p := range u.RestartPreventExitStatus {
		if p == what || "SIG"+p == what {
			return false, fmt.Sprintf("RestartPreventExitStatus=%s lists %s", strings.Join(u.RestartPreventExitStatus, " "), what)
		}
	}
	switch u.Restart {
	case "always":
		return true, ""
	case "on-failure", "on-abnormal":
		if !clean && (u.Restart == "on-failure" || ws.Signaled()) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("Restart=%s does not restart after %s", u.Restart, what)
}

func signalName(s syscall.Signal) string {
	for n, v := range signalNames {
		if v == s {
			return n
		}
	}
	return s.String()
}
