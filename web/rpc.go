package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"keepstate/config"
	"keepstate/daemon"
)

// JSON-RPC 2.0 error codes: the standard ones, and the application's (Kerio's
// web administration uses -32001 for an expired session and -32002 for
// missing rights).
const (
	codeParse          = -32700
	codeInvalidRequest = -32600
	codeNoMethod       = -32601
	codeBadParams      = -32602
	codeInternal       = -32603
	codeAuth           = -32001 // not logged in, or the session expired
	codeRights         = -32002 // a read-only user asked for a change
	codeTooMany        = -32003 // too many failed logins from this address
	codeConfig         = 1001   // the configuration refused the change; data.messages holds file:line problems
	codeFailed         = 1000   // the operation failed
	codeSelfCut        = 1002   // the change would cut the caller's own connection; send again with force
)

// maxRPCBody bounds one request: a configuration bundle in base64 fits.
const maxRPCBody = 48 << 20

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *rpcError) Error() string { return e.Message }

func errorf(code int, format string, a ...any) *rpcError {
	return &rpcError{Code: code, Message: fmt.Sprintf(format, a...)}
}

// toRPCError turns a method's error into its JSON-RPC form; a configuration
// refused carries its problems, "file:line: message", one per element.
func toRPCError(err error) *rpcError {
	var re *rpcError
	if errors.As(err, &re) {
		return re
	}
	var ce *daemon.ConfigError
	if errors.As(err, &ce) {
		probs := ce.Problems()
		return &rpcError{Code: codeConfig, Message: fmt.Sprintf("configuration refused, nothing changed: %s", strings.Join(probs, "; ")),
			Data: map[string]any{"messages": probs}}
	}
	var list config.ErrorList
	if errors.As(err, &list) {
		msgs := make([]string, len(list))
		for i, p := range list {
			msgs[i] = p.Error()
		}
		return &rpcError{Code: codeConfig, Message: strings.Join(msgs, "; "), Data: map[string]any{"messages": msgs}}
	}
	return &rpcError{Code: codeFailed, Message: err.Error()}
}

type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

// serveRPC answers POST /admin/api/jsonrpc/. Every method but Session.login
// needs the session's token in X-Token: a header a cross-site page cannot set,
// which is the API's protection against cross-site request forgery (the
// session cookie alone is not accepted here).
func (s *Server) serveRPC(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null"),
			Error: errorf(codeInvalidRequest, "Content-Type must be application/json")})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRPCBody))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null"),
			Error: errorf(codeInvalidRequest, "request body: %v", err)})
		return
	}
	var req rpcRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusOK, rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: errorf(codeParse, "parse error: %v", err)})
		return
	}
	id := req.ID
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	resp := rpcResponse{JSONRPC: "2.0", ID: id}
	if req.JSONRPC != "2.0" || req.Method == "" {
		resp.Error = errorf(codeInvalidRequest, `invalid request: want "jsonrpc": "2.0" and a "method"`)
		writeJSON(w, http.StatusOK, resp)
		return
	}
	var sess *session
	if req.Method != "Session.login" {
		if sess = s.ss.lookup(r.Header.Get("X-Token")); sess == nil {
			resp.Error = errorf(codeAuth, "not logged in or session expired: call Session.login and send its token in X-Token")
			writeJSON(w, http.StatusOK, resp)
			return
		}
	}
	result, err := s.invoke(&call{s: s, r: r, w: w, sess: sess, params: req.Params}, req.Method)
	if err != nil {
		resp.Error = toRPCError(err)
	} else {
		resp.Result = result
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// call is one method call: its HTTP request, the caller's session (nil only for
// Session.login) and its parameters.
type call struct {
	s      *Server
	r      *http.Request
	w      http.ResponseWriter
	sess   *session
	params json.RawMessage
}

// decode reads the parameters into v, refusing unknown fields.
func (c *call) decode(v any) error {
	if len(c.params) == 0 || string(c.params) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(c.params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(codeBadParams, "invalid params: %v", err)
	}
	return nil
}

// who names the caller in logs and as the source of a change.
func (c *call) who() string {
	if c.sess == nil {
		return "web@" + remoteAddr(c.r).String()
	}
	return "web:" + c.sess.user + "@" + remoteAddr(c.r).String()
}

// method is one API method; write methods change something and are refused to
// read-only users.
type method struct {
	write bool
	fn    func(c *call) (any, error)
}

// invoke runs a method for the caller after checking the caller's role, read
// from UserDB.cfg in force at each call: a user demoted or deleted loses the
// right at once. The page's handlers call it too: the one place roles are
// enforced.
func (s *Server) invoke(c *call, name string) (any, error) {
	m, ok := methods[name]
	if !ok {
		return nil, errorf(codeNoMethod, "no method %q", name)
	}
	if c.sess != nil {
		u, ok := s.user(c.sess.user)
		if !ok || !sameHashSum(c.sess, u) {
			s.ss.remove(c.sess.token)
			return nil, errorf(codeAuth, "session ended: user %q was removed or its password changed", c.sess.user)
		}
		if m.write && u.Role != config.RoleAdmin {
			s.d.SecurityLog("web_refused", remoteAddr(c.r), "web administration: %s (read-only) refused %s", c.sess.user, name)
			return nil, errorf(codeRights, "%s is read-only: %s changes the configuration", c.sess.user, name)
		}
	}
	return m.fn(c)
}

func (s *Server) user(name string) (config.User, bool) {
	for _, u := range s.d.Users() {
		if u.Name == name {
			return u, true
		}
	}
	return config.User{}, false
}

// role is the caller's role now.
func (c *call) role() string {
	if c.sess == nil {
		return ""
	}
	u, _ := c.s.user(c.sess.user)
	return u.Role
}
