package logging

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// RotatingFile is an io.WriteCloser that appends to a file and, when the next
// write would take it past maxBytes, renames it to path.1 (path.1 to path.2, and so
// on, keeping keep old files) and starts a new one. A write is never split between
// two files, so a log line is always whole in one of them. Safe for concurrent use.
type RotatingFile struct {
	mu       sync.Mutex
	path     string
	maxBytes int64
	keep     int
	f        *os.File
	size     int64
	closed   bool
}

// NewRotatingFile opens (or creates) path for appending, creating its directory if
// needed. maxBytes <= 0 disables rotation by size; keep < 1 keeps no old file (the
// log is truncated instead of rotated).
func NewRotatingFile(path string, maxBytes int64, keep int) (*RotatingFile, error) {
	r := &RotatingFile{path: path, maxBytes: maxBytes, keep: max(keep, 0)}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, st.Size()
	return nil
}

// Write appends p, rotating first if p would not fit in the current file. A p
// larger than maxBytes goes whole into a fresh file.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, os.ErrClosed
	}
	if r.f == nil { // a previous rotation failed to reopen: try again
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	if r.maxBytes > 0 && r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotateLocked(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// Rotate starts a new file now, e.g. on SIGHUP.
func (r *RotatingFile) Rotate() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return os.ErrClosed
	}
	return r.rotateLocked()
}

// rotateLocked shifts path.N-1 to path.N down to path to path.1, dropping the
// oldest, then opens a new path.
func (r *RotatingFile) rotateLocked() error {
	if r.f != nil {
		err := r.f.Close()
		r.f = nil
		if err != nil {
			return err
		}
	}
	if r.keep == 0 {
		if err := os.Remove(r.path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return r.open()
	}
	if err := os.Remove(r.backup(r.keep)); err != nil && !os.IsNotExist(err) {
		return err
	}
	for i := r.keep - 1; i >= 1; i-- {
		if err := os.Rename(r.backup(i), r.backup(i+1)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := os.Rename(r.path, r.backup(1)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return r.open()
}

func (r *RotatingFile) backup(i int) string { return r.path + "." + strconv.Itoa(i) }

// Close closes the current file; later writes fail with os.ErrClosed.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
