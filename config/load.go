package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Load reads the configuration at path: a bundle (.tgz), an unpacked bundle folder
// (such as /etc/keepstate), or a lone winroute.cfg.
func Load(path string) (*Config, error) {
	b, err := LoadBundle(path)
	if err != nil {
		return nil, err
	}
	return b.Config, nil
}

// LoadBundle reads a bundle, a bundle folder or a lone winroute.cfg (whose
// companions take their defaults). The file kind is told by content, not name.
func LoadBundle(path string) (*Bundle, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return loadFolder(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if head, _ := br.Peek(len(gzipMagic)); isGzip(head) {
		return ReadBundle(path, br)
	}
	data, err := io.ReadAll(io.LimitReader(br, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	return NewBundle(c), nil
}

// loadFolder reads the members present in dir through an os.Root, so that no name
// can lead outside it; members that are links or not regular files are refused.
func loadFolder(dir string) (*Bundle, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	files := map[string][]byte{}
	for _, m := range Members {
		where := filepath.Join(dir, m)
		fi, err := root.Lstat(m)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return nil, fmt.Errorf("%s is a symbolic link: refused", where)
		case !fi.Mode().IsRegular():
			return nil, fmt.Errorf("%s is not a regular file: refused", where)
		case fi.Size() > MaxFileSize:
			return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", where, fi.Size(), MaxFileSize)
		}
		data, err := readRootFile(root, m)
		if err != nil {
			return nil, err
		}
		files[m] = data
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no bundle files (%s) in this folder", dir, MemberWinroute)
	}
	return decodeBundle(filepath.Clean(dir), files)
}

func readRootFile(root *os.Root, name string) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err == nil && len(data) > MaxFileSize {
		err = fmt.Errorf("%s grew past %d bytes while being read", name, MaxFileSize)
	}
	return data, err
}

// InstallBundle writes b into dir as its member files. Every file is written and
// synced in a staging folder inside dir first, then renamed into place with
// winroute.cfg last; a failure before the renames changes nothing. The bundle is
// re-read from its own bytes before anything is written, so what lands in dir is
// known to load.
func InstallBundle(dir string, b *Bundle) error {
	files := b.Files()
	if _, err := decodeBundle(dir, files); err != nil {
		return fmt.Errorf("refusing to install a bundle that does not load back: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stage, err := os.MkdirTemp(dir, ".import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	for _, m := range Members {
		mode := os.FileMode(0o644)
		if m == MemberUsers {
			mode = 0o600
		}
		if err := writeSynced(filepath.Join(stage, m), files[m], mode); err != nil {
			return err
		}
	}
	for _, m := range Members { // winroute.cfg is last in Members
		if err := os.Rename(filepath.Join(stage, m), filepath.Join(dir, m)); err != nil {
			return fmt.Errorf("installing %s: %w (files before it in %v are already replaced)", m, err, Members)
		}
	}
	return syncDir(dir)
}

func writeSynced(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	return finishSynced(f, data)
}

// finishSynced writes data to f, syncs it and closes it, closing it whatever
// fails.
func finishSynced(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFileAtomic replaces path with data through a synced temporary file in the
// same folder and a rename: whoever reads path sees the old file or the new one,
// never half of one, even if the machine stops in between.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".keepstate-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := finishSynced(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
