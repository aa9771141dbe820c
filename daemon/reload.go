package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"keepstate/config"
	"keepstate/logging"
)

// MaxConfirmWithin bounds how long a change may wait for its confirmation.
const MaxConfirmWithin = time.Hour

// pending is a configuration in force that rolls back unless confirmed.
type pending struct {
	v        *version
	deadline time.Time
	timer    *time.Timer
}

func (d *Daemon) pendingInfoLocked() *PendingInfo {
	p := d.pending
	if p == nil {
		return nil
	}
	return &PendingInfo{Hash: p.v.hash, Source: p.v.source, Deadline: p.deadline,
		SecondsLeft: max(p.deadline.Sub(d.now()).Seconds(), 0), RollbackHash: d.confirmed.hash}
}

// warn writes a line to warning.log (every configuration change goes there) and
// tells the operator.
func (d *Daemon) warn(kind, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	d.logs.logger.Warning(&logging.WarningEvent{Time: d.now(), Kind: kind, Message: msg})
	d.say("%s", msg)
}

// ConfigError is a configuration refused because it does not load or compile;
// nothing changed.
type ConfigError struct {
	Source string
	Err    error
}

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Problems lists the problems one per element, "file:line: message".
func (e *ConfigError) Problems() []string {
	var list config.ErrorList
	if errors.As(e.Err, &list) {
		out := make([]string, len(list))
		for i, p := range list {
			out[i] = p.Error()
		}
		return out
	}
	return []string{e.Err.Error()}
}

// decodeImport reads what config_import sent: a bundle (told by its gzip magic)
// or a lone winroute.cfg, which keeps the companions (host.cfg, logs.cfg,
// UserDB.cfg) of the configuration in force.
func decodeImport(name string, data []byte, companions *config.Bundle) (*config.Bundle, bool, error) {
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		b, err := config.ReadBundle(name, bytes.NewReader(data))
		return b, true, err
	}
	if len(data) > config.MaxFileSize {
		return nil, false, fmt.Errorf("%s: %d bytes, more than the %d allowed", name, len(data), config.MaxFileSize)
	}
	c, err := config.Parse(name, data)
	if err != nil {
		return nil, false, err
	}
	b := config.NewBundle(c)
	b.Host, b.Logs, b.Users = companions.Host, companions.Logs, companions.Users
	return b, false, nil
}

// Import puts the configuration in data in force. A configuration that does not
// load or compile changes nothing and returns a *ConfigError. With confirmWithin
// > 0 the change rolls back by itself unless Confirm is called in time, and
// --config is rewritten only on confirmation; otherwise --config is rewritten now
// (and the change undone if that fails). A new import while another awaits
// confirmation replaces it; the rollback target stays the last confirmed one.
func (d *Daemon) Import(name string, data []byte, confirmWithin time.Duration) (*ImportResult, error) {
	if confirmWithin < 0 || confirmWithin > MaxConfirmWithin {
		return nil, fmt.Errorf("confirmation time %v out of range (0 to %v)", confirmWithin, MaxConfirmWithin)
	}
	if name == "" {
		name = "import"
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.importLocked(name, data, confirmWithin)
}

// importLocked is Import with d.mu held.
func (d *Daemon) importLocked(name string, data []byte, confirmWithin time.Duration) (*ImportResult, error) {
	if d.stopped {
		return nil, errors.New("keepstate is stopping")
	}
	b, gz, err := decodeImport(name, data, d.cur.bundle)
	if err != nil {
		d.warn("config_refused", "configuration from %s refused, nothing changed: %v", name, firstLine(err))
		return nil, &ConfigError{Source: name, Err: err}
	}
	v := &version{bundle: b, source: name, hash: ConfigHash(b.Config), raw: data, rawGzip: gz}
	res, err := d.applyLocked(v)
	if err != nil {
		d.warn("config_refused", "configuration from %s refused, nothing changed: %v", name, firstLine(err))
		return nil, &ConfigError{Source: name, Err: err}
	}
	res.Warnings = append(res.Warnings, importWarnings(b, d.confirmed.bundle)...)

	if confirmWithin > 0 {
		if p := d.takePendingLocked(); p != nil {
			d.warn("config_superseded", "unconfirmed configuration %s from %s replaced by %s from %s", p.v.hash, p.v.source, v.hash, name)
		}
		p := &pending{v: v, deadline: d.now().Add(confirmWithin)}
		p.timer = time.AfterFunc(confirmWithin, func() { d.expire(p) })
		d.pending = p
		res.Pending = d.pendingInfoLocked()
		d.warn("config_pending", "configuration %s from %s in force (%d connection(s) closed, %d kept); it rolls back to %s unless confirmed within %v (by %s)",
			v.hash, name, res.Closed, res.Kept, d.confirmed.hash, confirmWithin, p.deadline.Format(time.RFC3339))
		return res, nil
	}

	saved, err := d.persist(v)
	if err != nil {
		// In force but not saved would be undone by the next restart without anyone
		// knowing: undo it now and say so.
		prev := d.confirmed
		d.takePendingLocked()
		if _, rerr := d.applyLocked(prev); rerr != nil {
			err = errors.Join(err, fmt.Errorf("and going back failed: %w", rerr))
		}
		d.fail("configuration %s from %s not saved to %s, so not kept: %v", v.hash, name, d.o.ConfigPath, err)
		return nil, fmt.Errorf("saving to %s: %w; the previous configuration %s is back in force", d.o.ConfigPath, err, prev.hash)
	}
	d.takePendingLocked()
	d.confirmed = v
	res.Saved = saved
	d.warn("config_applied", "configuration %s from %s in force and saved to %s (%d connection(s) closed, %d kept)",
		v.hash, name, saved, res.Closed, res.Kept)
	return res, nil
}

// applyLocked puts v in force: the engine compiles it first and changes nothing
// when it does not compile.
func (d *Daemon) applyLocked(v *version) (*ImportResult, error) {
	closed, err := v.bundle.Config.ApplyTo(d.eng)
	if err != nil {
		return nil, err
	}
	// The Logging table takes effect at once: switching on "packets dropped for
	// any reason" is how an administrator starts looking into a problem.
	s := &v.bundle.Config.Settings
	d.logs.logger.SetDrops(DropFilter(s), float64(s.DropLogRatePerSecond), s.DropLogBurst)
	d.gen++
	v.gen, v.applied = d.gen, d.now()
	d.cur = v
	d.insights.Monitor().SetConfig(v.bundle.Config, d.eng.Ruleset(), v.applied.UnixNano())
	return &ImportResult{Config: v.info(d.o.ConfigPath), Closed: closed, Kept: d.eng.Table().Len()}, nil
}

// expire rolls p back when its deadline passed and nobody confirmed it.
func (d *Daemon) expire(p *pending) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending != p || d.stopped {
		return // confirmed, replaced or stopping meanwhile
	}
	d.pending = nil
	back := d.confirmed
	res, err := d.applyLocked(back)
	if err != nil {
		// It compiled when it was in force; only a bug gets here.
		d.fail("rolling back to %s failed, %s stays in force: %v", back.hash, p.v.hash, err)
		return
	}
	d.warn("config_rolled_back", "configuration %s from %s not confirmed within the time given: rolled back to %s from %s (%d connection(s) closed, %d kept)",
		p.v.hash, p.v.source, back.hash, back.source, res.Closed, res.Kept)
}

// Confirm keeps the configuration awaiting confirmation and saves it to --config.
func (d *Daemon) Confirm() (*ConfirmResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.pending
	if p == nil {
		return nil, fmt.Errorf("no configuration change awaits confirmation (in force: %s from %s)", d.cur.hash, d.cur.source)
	}
	saved, err := d.persist(p.v)
	if err != nil {
		d.fail("confirmed configuration %s not saved to %s: %v", p.v.hash, d.o.ConfigPath, err)
		return nil, fmt.Errorf("saving to %s: %w; the change is still unconfirmed and rolls back at %s", d.o.ConfigPath, err, p.deadline.Format(time.RFC3339))
	}
	d.takePendingLocked()
	d.confirmed = p.v
	d.warn("config_confirmed", "configuration %s from %s confirmed and saved to %s", p.v.hash, p.v.source, saved)
	return &ConfirmResult{Config: p.v.info(d.o.ConfigPath), Saved: saved}, nil
}

// Reload re-reads --config and puts it in force (SIGHUP). A change awaiting
// confirmation is dropped: the file is what the administrator asked for.
func (d *Daemon) Reload() (*ImportResult, error) {
	path := d.o.ConfigPath
	b, err := config.LoadBundle(path)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil, errors.New("keepstate is stopping")
	}
	if err != nil {
		d.warn("config_refused", "reload of %s refused, nothing changed: %v", path, firstLine(err))
		return nil, &ConfigError{Source: path, Err: err}
	}
	v := &version{bundle: b, source: path, hash: ConfigHash(b.Config)}
	old := d.confirmed.bundle
	res, err := d.applyLocked(v)
	if err != nil {
		d.warn("config_refused", "reload of %s refused, nothing changed: %v", path, firstLine(err))
		return nil, &ConfigError{Source: path, Err: err}
	}
	if p := d.takePendingLocked(); p != nil {
		d.warn("config_superseded", "unconfirmed configuration %s from %s dropped by the reload of %s", p.v.hash, p.v.source, path)
	}
	d.confirmed = v
	res.Warnings = importWarnings(b, old)
	d.warn("config_reloaded", "configuration %s reloaded from %s (%d connection(s) closed, %d kept)", v.hash, path, res.Closed, res.Kept)
	return res, nil
}

// Export returns the configuration in force as a bundle.
func (d *Daemon) Export() (*ExportResult, error) {
	d.mu.Lock()
	v, unconfirmed := d.cur, d.pending != nil
	d.mu.Unlock()
	var buf bytes.Buffer
	if err := config.WriteBundle(&buf, v.bundle); err != nil {
		return nil, err
	}
	return &ExportResult{Bundle: buf.Bytes(), Hash: v.hash, Unconfirmed: unconfirmed}, nil
}

// persist writes v to --config in the form --config already has: a bundle folder
// (config.InstallBundle), a .tgz bundle or a lone winroute.cfg. What was imported
// is written byte for byte when it has that form, comments included. It returns
// the path written.
func (d *Daemon) persist(v *version) (string, error) {
	path, err := filepath.EvalSymlinks(d.o.ConfigPath)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		return path, config.InstallBundle(path, v.bundle)
	}
	head := make([]byte, 2)
	if f, err := os.Open(path); err == nil {
		f.Read(head)
		f.Close()
	}
	var data []byte
	switch isGzip := head[0] == 0x1f && head[1] == 0x8b; {
	case v.raw != nil && v.rawGzip == isGzip:
		data = v.raw
	case isGzip:
		var buf bytes.Buffer
		if err := config.WriteBundle(&buf, v.bundle); err != nil {
			return "", err
		}
		data = buf.Bytes()
	default:
		data = config.Marshal(v.bundle.Config)
	}
	return path, config.WriteFileAtomic(path, data, fi.Mode().Perm())
}

// localDevices lists this machine's network devices; a variable for tests.
var localDevices = func() []string {
	ifs, _ := net.Interfaces()
	out := make([]string, 0, len(ifs))
	for _, i := range ifs {
		out = append(out, i.Name)
	}
	return out
}

// importWarnings are the new configuration's own warnings, devices this machine
// lacks, and changes that only take effect at the next start.
func importWarnings(b, old *config.Bundle) []string {
	var out []string
	for _, w := range b.Config.Warnings() {
		out = append(out, fmt.Sprintf("%s:%d: warning: %s", w.File, w.Line, w.Msg))
	}
	devs := localDevices()
	for _, ifc := range b.Config.Policy.Interfaces {
		if ifc.Device != "" && !slices.Contains(devs, ifc.Device) {
			out = append(out, fmt.Sprintf("warning: interface %q uses device %q, which this machine does not have", ifc.Name, ifc.Device))
		}
	}
	if b.Logs != old.Logs {
		out = append(out, "note: logs.cfg changed; it takes effect at the next start")
	}
	if b.Host.AdminSocket != old.Host.AdminSocket || b.Host.AdminGroup != old.Host.AdminGroup {
		out = append(out, "note: host.cfg's admin socket settings changed; they take effect at the next start")
	}
	if !slices.Equal(b.Users, old.Users) {
		out = append(out, fmt.Sprintf("note: UserDB.cfg changed: %d user(s) of the web administration (%d before)", len(b.Users), len(old.Users)))
	}
	return out
}

// firstLine shortens a multi-problem error for a log line; the answer to the
// client lists them all.
func firstLine(err error) string {
	var list config.ErrorList
	if errors.As(err, &list) && len(list) > 1 {
		return fmt.Sprintf("%v (and %d more)", list[0], len(list)-1)
	}
	return err.Error()
}

// takePendingLocked forgets the unconfirmed import, if any, stops its rollback
// timer and returns it (nil if there was none). d.mu is held.
func (d *Daemon) takePendingLocked() *pending {
	p := d.pending
	if p != nil {
		p.timer.Stop()
		d.pending = nil
	}
	return p
}
