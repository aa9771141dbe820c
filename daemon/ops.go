package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"keepstate/config"
	"keepstate/conntrack"
	"keepstate/logging"
)

// The operations below are what the web administration calls besides those the
// admin socket already serves (Status, Stats, ListConns, FlushConns, Export,
// Import, Confirm): one set of operations, two transports.

// Change puts in force a copy of the configuration in force that edit changed.
// The copy goes through everything Import does: written as a bundle, read back
// with the configuration's own checks (problems as "source/winroute.cfg:line:
// message"), compiled, applied, and with confirmWithin > 0 rolled back unless
// confirmed. edit's own error refuses the change as a *ConfigError; nothing
// changes then.
func (d *Daemon) Change(source string, confirmWithin time.Duration, edit func(*config.Bundle) error) (*ImportResult, error) {
	if confirmWithin < 0 || confirmWithin > MaxConfirmWithin {
		return nil, fmt.Errorf("confirmation time %v out of range (0 to %v)", confirmWithin, MaxConfirmWithin)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := copyBundle(d.cur.bundle)
	if err != nil {
		return nil, err
	}
	if err := edit(b); err != nil {
		d.warn("config_refused", "change from %s refused, nothing changed: %v", source, firstLine(err))
		return nil, &ConfigError{Source: source, Err: err}
	}
	var buf bytes.Buffer
	if err := config.WriteBundle(&buf, b); err != nil {
		return nil, err
	}
	return d.importLocked(source, buf.Bytes(), confirmWithin)
}

// copyBundle returns a deep copy of b, made the way a bundle travels: written
// and read back.
func copyBundle(b *config.Bundle) (*config.Bundle, error) {
	var buf bytes.Buffer
	if err := config.WriteBundle(&buf, b); err != nil {
		return nil, err
	}
	return config.ReadBundle("in force", &buf)
}

// Bundle returns a copy of the configuration in force, companions included.
func (d *Daemon) Bundle() (*config.Bundle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return copyBundle(d.cur.bundle)
}

// ConfirmTimeout is host.cfg's ConfirmTimeout in force: how long a change made
// from the web administration waits for its confirmation.
func (d *Daemon) ConfirmTimeout() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur.bundle.Host.ConfirmTimeout
}

// Users lists UserDB.cfg's users in force.
func (d *Daemon) Users() []config.User {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.cur.bundle.Users)
}

// ErrUsersNeedBundle refuses a user change when --config is a lone winroute.cfg,
// which has no UserDB.cfg to keep users in.
var ErrUsersNeedBundle = errors.New("--config is a lone winroute.cfg, which holds no users: use a bundle folder or a .tgz bundle (keepstate config import --dir)")

// SetUsers replaces UserDB.cfg's users with what edit makes of them, in the
// configuration in force, in the confirmed one (a pending change does not take
// a new password with it when it rolls back) and in --config, at once: a user
// change cannot cut any connection, so it needs no confirmation. It is written
// to warning.log as who.
func (d *Daemon) SetUsers(who string, edit func([]config.User) ([]config.User, error)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return errors.New("keepstate is stopping")
	}
	if !configHoldsUsers(d.o.ConfigPath) {
		return ErrUsersNeedBundle
	}
	users, err := edit(slices.Clone(d.confirmed.bundle.Users))
	if err != nil {
		return err
	}
	if err := checkUsers(users); err != nil {
		return err
	}
	withUsers := func(v *version) *version {
		b := *v.bundle
		b.Users = users
		nv := *v
		nv.bundle, nv.raw = &b, nil // what was imported no longer holds these users
		return &nv
	}
	confirmed := withUsers(d.confirmed)
	if _, err := d.persist(confirmed); err != nil {
		return fmt.Errorf("saving users to %s: %w; nothing changed", d.o.ConfigPath, err)
	}
	if d.cur == d.confirmed {
		d.cur = confirmed
	} else {
		d.cur = withUsers(d.cur)
		d.pending.v = d.cur
	}
	d.confirmed = confirmed
	d.warn("users_changed", "UserDB.cfg changed by %s: %d user(s), saved to %s", who, len(users), d.o.ConfigPath)
	return nil
}

// checkUsers applies UserDB.cfg's checks to a list about to be saved.
func checkUsers(users []config.User) error {
	seen := map[string]bool{}
	for _, u := range users {
		if err := config.CheckUserName(u.Name); err != nil {
			return err
		}
		if seen[u.Name] {
			return fmt.Errorf("user %q twice", u.Name)
		}
		seen[u.Name] = true
		if u.Role != config.RoleAdmin && u.Role != config.RoleReadOnly {
			return fmt.Errorf("user %s: role %q: want %s or %s", u.Name, u.Role, config.RoleAdmin, config.RoleReadOnly)
		}
		if err := config.CheckPasswordHash(u.PasswordHash); err != nil {
			return fmt.Errorf("user %s: %v", u.Name, err)
		}
	}
	return nil
}

// configHoldsUsers says whether --config is a bundle (folder or .tgz), which has
// a UserDB.cfg.
func configHoldsUsers(path string) bool {
	path, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	if fi.IsDir() {
		return true
	}
	head := make([]byte, 2)
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	f.Read(head)
	return head[0] == 0x1f && head[1] == 0x8b
}

// SecurityLog writes a line to security.log: logins, failed logins, refusals of
// the web administration.
func (d *Daemon) SecurityLog(kind string, addr netip.Addr, format string, a ...any) {
	d.logs.logger.Security(&logging.WarningEvent{Time: d.now(), Kind: kind, Addr: addr, Message: fmt.Sprintf(format, a...)})
}

// TimeoutUse counts the tracked connections by the timeout setting that
// governs each now ("TcpEstablishedTimeout": 1200, ...).
func (d *Daemon) TimeoutUse() map[string]int {
	out := map[string]int{}
	d.eng.Table().Range(func(ci conntrack.ConnInfo) bool {
		out[conntrack.TimeoutName(ci.State, ci.Assured)]++
		return true
	})
	return out
}
