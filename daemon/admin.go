package daemon

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"keepstate/config"
)

// requestTimeout bounds one admin exchange; a client that stalls is cut off.
const requestTimeout = 30 * time.Second

// adminServer serves the admin socket.
type adminServer struct {
	d     *Daemon
	allow func(uid uint32) bool
	ln    *net.UnixListener
	wg    sync.WaitGroup
	once  sync.Once
}

// listenAdmin creates the socket at path, mode 0600, in a folder created 0700 if
// missing; start serves it. A socket file left by a keepstate that died is removed; one that
// answers belongs to a running keepstate, and listenAdmin fails.
func listenAdmin(d *Daemon, path string) (*adminServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return &adminServer{d: d, ln: ln, allow: peerAllowed}, nil
}

// start serves requests. Until then the kernel queues connections: nobody reads
// the state of a daemon that is still starting.
func (s *adminServer) start() {
	s.wg.Add(1)
	go s.serve()
}

func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("admin socket %s exists and is not a socket: refusing to replace it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("admin socket %s answers: another keepstate is running", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("admin socket %s: %w", path, err)
	}
	return os.Remove(path)
}

func (s *adminServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // EMFILE and the like: the next Accept may work
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

// close stops accepting, waits for the requests in progress, and removes the
// socket file.
func (s *adminServer) close() {
	s.once.Do(func() {
		s.ln.Close()
		s.wg.Wait()
	})
}

// peerAllowed says whether a peer of this uid may use the socket: root, and the
// user the daemon runs as. The socket's mode already says so; this also holds if
// someone loosens it.
var peerAllowed = func(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var uid uint32
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		uid, credErr = peerUIDOfFD(int(fd))
	}); err != nil {
		return 0, err
	}
	return uid, credErr
}

func (s *adminServer) handle(c *net.UnixConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(requestTimeout))
	// The request is read before the peer is judged, so that a refused client
	// reads its refusal instead of a broken pipe.
	line, err := readLine(bufio.NewReaderSize(c, 64<<10), MaxRequestBytes)
	var resp *Response
	uid, credErr := peerUID(c)
	switch {
	case credErr != nil:
		resp = errorResponse(fmt.Errorf("peer credentials: %w", credErr))
	case !s.allow(uid):
		resp = errorResponse(fmt.Errorf("uid %d may not use the admin socket", uid))
	case errors.Is(err, errTooLong):
		resp = errorResponse(fmt.Errorf("request longer than %d bytes", MaxRequestBytes))
	case err != nil:
		return // the client went away
	default:
		resp = s.d.serveLine(line)
	}
	out, err := json.Marshal(resp)
	if err != nil {
		out, _ = json.Marshal(errorResponse(err))
	}
	c.Write(append(out, '\n'))
}

func errorResponse(err error) *Response {
	r := &Response{Error: err.Error()}
	var ce *ConfigError
	if errors.As(err, &ce) {
		r.Errors = ce.Problems()
		r.Error = fmt.Sprintf("configuration from %s refused (%d problem(s)); nothing changed", ce.Source, len(r.Errors))
	}
	return r
}

// serveLine answers one request line.
func (d *Daemon) serveLine(line []byte) *Response {
	req, err := DecodeRequest(line)
	if err != nil {
		return errorResponse(err)
	}
	result, err := d.serve(req)
	if err != nil {
		return errorResponse(err)
	}
	raw, err := json.Marshal(result)
	if err != nil {
		return errorResponse(err)
	}
	return &Response{OK: true, Result: raw}
}

func (d *Daemon) serve(req *Request) (any, error) {
	switch req.Cmd {
	case CmdStatus:
		return d.Status(), nil
	case CmdStats:
		return d.Stats(), nil
	case CmdConntrackList:
		f, err := ParseFilter(req.Filter)
		if err != nil {
			return nil, err
		}
		return d.ListConns(f, req.Limit), nil
	case CmdConntrackFlush:
		f, err := ParseFilter(req.Filter)
		if err != nil {
			return nil, err
		}
		return d.FlushConns(f), nil
	case CmdConfigExport:
		return d.Export()
	case CmdConfigImport:
		var within time.Duration
		if req.ConfirmWithin != "" {
			var err error
			if within, err = time.ParseDuration(req.ConfirmWithin); err != nil {
				return nil, fmt.Errorf("confirm_within: %w", err)
			}
		}
		if len(req.Data) == 0 {
			return nil, errors.New("config_import: no data")
		}
		return d.Import(req.Name, req.Data, within)
	case CmdConfigConfirm:
		return d.Confirm()
	case CmdInsights:
		if req.ID != "" {
			return d.Insight(req.ID)
		}
		return d.Insights(req.After), nil
	case CmdInsightApply:
		within, err := time.ParseDuration(req.ConfirmWithin)
		if req.ConfirmWithin == "" || err != nil {
			return nil, fmt.Errorf("confirm_within: want a Go duration such as 5m (%v)", err)
		}
		if req.ID == "" {
			return nil, errors.New("insight_apply: no id")
		}
		return d.ApplyInsight(req.ID, req.Fix, within)
	case CmdUserList:
		return UserList(d.Users()), nil
	case CmdUserSet:
		return struct{}{}, d.SetUsers("the admin socket", func(us []config.User) ([]config.User, error) {
			return EditUsers(us, req.UserOp, req.UserName, req.UserRole, req.PasswordHash)
		})
	case CmdUserDelete:
		return struct{}{}, d.SetUsers("the admin socket", func(us []config.User) ([]config.User, error) {
			return EditUsers(us, "del", req.UserName, "", "")
		})
	}
	return nil, fmt.Errorf("unknown command %q", req.Cmd)
}
