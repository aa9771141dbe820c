package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// DefaultSocket is where the admin socket lives unless --socket says otherwise.
const DefaultSocket = "/run/keepstate/admin.sock"

// Commands of the admin protocol.
const (
	CmdStatus         = "status"
	CmdStats          = "stats"
	CmdConntrackList  = "conntrack_list"
	CmdConntrackFlush = "conntrack_flush"
	CmdConfigExport   = "config_export"
	CmdConfigImport   = "config_import"
	CmdConfigConfirm  = "config_confirm"
	CmdInsights       = "insights"
	CmdInsightApply   = "insight_apply"
	CmdUserList       = "user_list"
	CmdUserSet        = "user_set" // UserOp add, passwd or role
	CmdUserDelete     = "user_delete"
)

// MaxRequestBytes bounds one request line: a configuration bundle (at most a few
// tens of MiB) in base64 fits; anything longer is refused unread.
const MaxRequestBytes = 64 << 20

// maxResponseBytes bounds what the client reads back: a listing of a full table of
// millions of connections fits.
const maxResponseBytes = 1 << 30

// Request is one admin request, sent as one JSON line.
type Request struct {
	Cmd string `json:"cmd"`

	// conntrack_list and conntrack_flush: filter words such as ["src",
	// "10.1.0.2", "dport", "8080"] (see ParseFilter); Limit caps the listing (0:
	// everything).
	Filter []string `json:"filter,omitempty"`
	Limit  int      `json:"limit,omitempty"`

	// config_import: the bytes of a bundle (.tgz) or of a lone winroute.cfg, the
	// name they came from (error positions read "name:line" or
	// "name/winroute.cfg:line"), and how long the daemon waits for config_confirm
	// before it rolls back (Go duration; empty or "0": no confirmation).
	Name          string `json:"name,omitempty"`
	Data          []byte `json:"data,omitempty"`
	ConfirmWithin string `json:"confirm_within,omitempty"`

	// insights: the changes after sequence number After (for --follow), or, with
	// ID, that one insight. insight_apply: the insight ID, its fix number Fix
	// (from 1; 0 its first configuration change) and ConfirmWithin, required.
	After uint64 `json:"after,omitempty"`
	ID    string `json:"id,omitempty"`
	Fix   int    `json:"fix,omitempty"`

	// user_set and user_delete: the user of the web administration, and for
	// user_set what to do (add, passwd, role), the role and the argon2id hash of
	// the password (the password itself never travels).
	UserOp       string `json:"user_op,omitempty"`
	UserName     string `json:"user_name,omitempty"`
	UserRole     string `json:"user_role,omitempty"`
	PasswordHash string `json:"password_hash,omitempty"`
}

// Response is the answer to one Request, sent as one JSON line.
type Response struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Errors []string        `json:"errors,omitempty"` // configuration problems, "file:line: message"
	Result json.RawMessage `json:"result,omitempty"`
}

// RemoteError is a request the daemon refused.
type RemoteError struct {
	Msg    string
	Errors []string // configuration problems, "file:line: message"
}

func (e *RemoteError) Error() string {
	if len(e.Errors) == 0 {
		return e.Msg
	}
	return e.Msg + ":\n" + strings.Join(e.Errors, "\n")
}

// errTooLong is a line longer than its limit.
var errTooLong = errors.New("line too long")

// readLine reads one newline-terminated line of at most limit bytes (the newline
// excluded). A line cut by EOF is returned whole when it is not empty.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > limit+1 {
			return nil, errTooLong
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}

// DecodeRequest parses one request line. Unknown fields are refused so that a
// misspelt field fails loudly instead of being ignored.
func DecodeRequest(line []byte) (*Request, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var req Request
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("bad request: %w", err)
	}
	if dec.More() {
		return nil, errors.New("bad request: more than one JSON value on the line")
	}
	if req.Cmd == "" {
		return nil, errors.New(`bad request: no "cmd"`)
	}
	if req.Limit < 0 {
		return nil, fmt.Errorf("bad request: negative limit %d", req.Limit)
	}
	return &req, nil
}

// Call sends req to the daemon listening on socket and decodes the result into
// result (which may be nil). A refusal comes back as *RemoteError. A daemon that
// is not running gives an error wrapping the dial error (syscall.ENOENT or
// ECONNREFUSED).
func Call(ctx context.Context, socket string, req *Request, result any) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	line, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := c.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("sending to %s: %w", socket, err)
	}
	answer, err := readLine(bufio.NewReaderSize(c, 64<<10), maxResponseBytes)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("reading from %s: %w", socket, err)
	}
	var resp Response
	if err := json.Unmarshal(answer, &resp); err != nil {
		return fmt.Errorf("reading from %s: %w", socket, err)
	}
	if !resp.OK {
		return &RemoteError{Msg: resp.Error, Errors: resp.Errors}
	}
	if result == nil || len(resp.Result) == 0 {
		return nil
	}
	return json.Unmarshal(resp.Result, result)
}
