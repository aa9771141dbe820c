package daemon

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"keepstate/conntrack"
)

// MarkerSuffix names the marker file beside the snapshot: --state FILE has
// FILE.running while a keepstate runs on it. A clean stop removes it after writing
// the final snapshot; a crash, SIGKILL or power loss leaves it, so the next start
// knows that it is an unclean one and that its snapshot may miss the last
// connections. The daemon holds an exclusive lock (flock) on it for its life: the
// kernel drops the lock when the process dies however it dies, and a second
// keepstate on the same --state refuses to start.
const MarkerSuffix = ".running"

// stateFiles are the snapshot and its marker.
type stateFiles struct {
	path    string   // --state
	marker  *os.File // path + MarkerSuffix, locked
	unclean bool     // the marker was there at start: the previous run did not stop
	// previous is what the marker said of the run that left it, e.g.
	// "pid 812, started 2024-03-01T12:00:00Z".
	previous string
}

// openStateFiles takes the marker of path (creating its folder), which tells
// whether the previous run stopped cleanly, and writes this run's into it.
func openStateFiles(path string, now time.Time) (*stateFiles, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	name := path + MarkerSuffix
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		said, _ := os.ReadFile(name)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("--state %s is in use by another keepstate (%s)", path, strings.TrimSpace(string(said)))
		}
		return nil, fmt.Errorf("locking %s: %w", name, err)
	}
	sf := &stateFiles{path: path, marker: f}
	fail := func(err error) (*stateFiles, error) {
		f.Close()
		return nil, err
	}
	buf := make([]byte, 256)
	n, err := f.ReadAt(buf, 0)
	if err != nil && n == 0 && !errors.Is(err, io.EOF) {
		return fail(err)
	}
	if n > 0 {
		sf.unclean = true
		sf.previous = strings.TrimSpace(string(buf[:n]))
	}
	if err := f.Truncate(0); err != nil {
		return fail(err)
	}
	if _, err := f.WriteAt([]byte(fmt.Sprintf("pid %d, started %s\n", os.Getpid(), now.UTC().Format(time.RFC3339))), 0); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	return sf, nil
}

// close releases the marker; clean (the final snapshot is written) removes it, so
// that the next start is a clean one.
func (sf *stateFiles) close(clean bool) error {
	var err error
	if clean {
		if err = os.Remove(sf.marker.Name()); err == nil {
			err = syncDir(filepath.Dir(sf.path))
		}
	}
	return errors.Join(err, sf.marker.Close())
}

// restoreState reads the snapshot at --state, if there is one. Its times are
// rebased onto the moment it was written (the file's modification time, which
// saveState sets), so the downtime counts as idle time; connections whose time ran
// out meanwhile expire at once. Restored TCP connections learn their windows again
// from their next packets (see conntrack's "Taking connections over"); those the
// rules in force refuse are closed, as a configuration change would. A snapshot
// that does not read is set aside as FILE.corrupt: the firewall starts with an
// empty table rather than not at all.
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
	d.savedAt = saved
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
	expired := read - (t.Len() - before)
	refused := d.eng.CloseRefused()
	d.restored = t.Len() - before
	down := now.Sub(saved).Round(time.Millisecond)
	msg := fmt.Sprintf("restored %d connection(s) from %s, saved %s ago (%d expired meanwhile", d.restored, path, down, expired)
	if refused > 0 {
		msg += fmt.Sprintf(", %d closed: the rules in force refuse them", refused)
	}
	d.say("%s)", msg)
	f.Close()
	if d.o.StateInterval <= 0 {
		// Nothing rewrites the snapshot until the stop: a crash meanwhile must
		// not bring back this run's start.
		if err := os.Remove(path); err != nil {
			d.fail("removing restored snapshot: %v", err)
		}
	}
}

// saveState writes the table to path atomically: a temporary file in the same
// folder, synced, stamped with now (the time restoreState rebases onto) and
// renamed over path. It returns how many connections and bytes were written.
func saveState(path string, t *conntrack.Table, now time.Time) (conns int, size int64, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, 0, err
	}
	tmp, err := os.CreateTemp(dir, ".snapshot-*")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	n := t.Len()
	if err := t.WriteSnapshot(tmp, now.UnixNano()); err != nil {
		tmp.Close()
		return 0, 0, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, 0, err
	}
	fi, err := tmp.Stat()
	if err != nil {
		tmp.Close()
		return 0, 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, 0, err
	}
	if err := os.Chtimes(tmp.Name(), now, now); err != nil {
		return 0, 0, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, 0, err
	}
	return n, fi.Size(), syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
