package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"keepstate/config"
)

// packFolder packs the bundle members present in dir, byte for byte, into a
// .tgz: how a bundle folder travels to the daemon. Members that are links or not
// regular files are refused, as config.LoadBundle refuses them.
func packFolder(dir string) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	found := 0
	for _, m := range config.Members {
		fi, err := root.Lstat(m)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file: refused", filepath.Join(dir, m))
		}
		if fi.Size() > config.MaxFileSize {
			return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", filepath.Join(dir, m), fi.Size(), config.MaxFileSize)
		}
		data, err := root.ReadFile(m)
		if err != nil {
			return nil, err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: m, Size: int64(len(data)), Mode: 0o600, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
		found++
	}
	if found == 0 {
		return nil, fmt.Errorf("%s: no bundle files (%s) in this folder", dir, config.MemberWinroute)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
