package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"keepstate/config"
	"keepstate/dataplane"
	"keepstate/logging"
)

// Log file names inside the log folder. The JSON twin of NAME.log is NAME.json.
var logNames = [...]string{"debug", "filter", "connection", "warning", "error", "security"}

// DropsFile is the pcapng of dropped packets in the log folder. The one of the
// previous run is kept as DropsFile+".1".
const DropsFile = "drops.pcapng"

// logFiles is everything the daemon writes into its log folder.
type logFiles struct {
	dir      string
	logger   *logging.Logger
	drops    *dataplane.DropWriter
	dropFile *os.File
}

// openLogs opens the six logs (rotated by size as logs.cfg says, JSON lines as
// well when asked) and the drop capture in dir. The debug log shows the drops the
// configuration's Logging table selects, at its rate.
func openLogs(dir string, jsonLines bool, ls config.LogSettings, s *config.Settings) (*logFiles, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	maxBytes := int64(ls.RotateSizeMB) << 20
	lf := &logFiles{dir: dir}
	var closers []io.Closer
	fail := func(err error) (*logFiles, error) {
		for _, c := range closers {
			c.Close()
		}
		return nil, err
	}
	var sinks [len(logNames)]logging.Sink
	for i, name := range logNames {
		text, err := logging.NewRotatingFile(filepath.Join(dir, name+".log"), maxBytes, ls.RotateKeep)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, text)
		sinks[i].Text = text
		if jsonLines {
			js, err := logging.NewRotatingFile(filepath.Join(dir, name+".json"), maxBytes, ls.RotateKeep)
			if err != nil {
				return fail(err)
			}
			closers = append(closers, js)
			sinks[i].JSON = js
		}
	}
	lc := logging.Config{Debug: sinks[0], Filter: sinks[1], Connection: sinks[2], Warning: sinks[3], Error: sinks[4], Security: sinks[5]}
	lc.Drops = DropFilter(s)
	lc.DropRate, lc.DropBurst = float64(s.DropLogRatePerSecond), s.DropLogBurst

	drops, f, err := openDropCapture(filepath.Join(dir, DropsFile), maxBytes)
	if err != nil {
		return fail(err)
	}
	lf.logger = logging.New(lc)
	lf.drops, lf.dropFile = drops, f
	return lf, nil
}

// DropFilter is what the Logging table asks of the debug log; by default (as in
// Kerio Control) no drop is logged there, but every one is counted and captured.
func DropFilter(s *config.Settings) logging.DropFilter {
	switch {
	case s.LogDroppedPackets:
		return logging.AnyDrop()
	case len(s.LogDropReasons) > 0:
		return logging.DropsFor(s.LogDropReasons...)
	}
	return logging.DropFilter{}
}

// openDropCapture starts a new pcapng at path, keeping the previous run's as
// path.1. The capture stops growing at maxBytes (a flood of drops must not fill
// the disk); the logs and counters still see every drop.
func openDropCapture(path string, maxBytes int64) (*dataplane.DropWriter, *os.File, error) {
	if _, err := os.Lstat(path); err == nil {
		if err := os.Rename(path, path+".1"); err != nil {
			return nil, nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, nil, err
	}
	var w io.Writer = f
	if maxBytes > 0 {
		w = &cappedWriter{w: f, left: maxBytes}
	}
	dw, err := dataplane.NewDropWriter(w)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return dw, f, nil
}

// errCaptureFull stops the drop capture once it reached its size.
var errCaptureFull = errors.New("drop capture reached its maximum size")

// cappedWriter refuses writes past a byte budget. The pcapng writer buffers, so
// the capture may end with a cut block; capture readers report where it is cut
// and read every whole packet before it.
type cappedWriter struct {
	mu   sync.Mutex
	w    io.Writer
	left int64
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if int64(len(p)) > c.left {
		c.left = 0
		return 0, errCaptureFull
	}
	n, err := c.w.Write(p)
	c.left -= int64(n)
	return n, err
}

// close flushes and closes everything, returning the first error. A capture that
// stopped at its size limit is not an error.
func (lf *logFiles) close() error {
	var errs []error
	if lf.drops != nil {
		if err := lf.drops.Close(); err != nil && !errors.Is(err, errCaptureFull) {
			errs = append(errs, fmt.Errorf("%s: %w", DropsFile, err))
		}
		errs = append(errs, lf.dropFile.Close())
	}
	errs = append(errs, lf.logger.Close())
	return errors.Join(errs...)
}
