package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"keepstate/conntrack"
)

// restoreState reads the snapshot at --state, if there is one. Its times are
// rebased onto the moment it was written (the file's modification time, which
// saveState sets), so the downtime counts as idle time; connections whose time ran
// out meanwhile expire at once. A snapshot that does not read is set aside as
// FILE.corrupt: the firewall starts with an empty table rather than not at all.
func (d *Daemon) restoreState(now time.Time) {
	path := d.o.StatePath
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		d.say("no connection snapshot at %s: starting with an empty table", path)
		return
	}
	if err != nil {
		d.fail("reading connection snapshot: %v", err)
		return
	}
	defer f.Close()
	saved := now
	if fi, err := f.Stat(); err == nil && fi.ModTime().Before(now) {
		saved = fi.ModTime()
	}
	t := d.eng.Table()
	before := t.Len()
	if err := t.ReadSnapshot(f, saved.UnixNano()); err != nil {
		d.fail("connection snapshot %s: %v; set aside as %s.corrupt, starting with an empty table", path, err, path)
		f.Close()
		os.Rename(path, path+".corrupt")
		return
	}
	read := t.Len() - before
	d.eng.Expire(now.UnixNano())
	d.restored = t.Len() - before
	down := now.Sub(saved).Round(time.Millisecond)
	d.say("restored %d connection(s) from %s, saved %s ago (%d expired meanwhile)", d.restored, path, down, read-d.restored)
	f.Close()
	if err := os.Remove(path); err != nil {
		d.fail("removing restored snapshot: %v", err)
	}
}

// saveState writes the table to path atomically: a temporary file in the same
// folder, synced, stamped with now (the time restoreState rebases onto) and
// renamed over path. It returns how many connections were written.
func saveState(path string, t *conntrack.Table, now time.Time) (int, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(dir, ".snapshot-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	n := t.Len()
	if err := t.WriteSnapshot(tmp, now.UnixNano()); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if err := os.Chtimes(tmp.Name(), now, now); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, err
	}
	return n, syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
