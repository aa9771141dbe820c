package config

import (
	"fmt"
	"strings"
	"time"
)

// The companion files of a bundle. They use winroute.cfg's XML layout and its
// strictness, but decide no verdict: host.cfg and UserDB.cfg configure the admin
// socket, logs.cfg the log files.

// HostSettings is host.cfg: the machine and its administration socket.
type HostSettings struct {
	Hostname       string        // informational: the host that exported the bundle
	AdminSocket    string        // path of the admin socket of the daemon
	AdminGroup     string        // Unix group allowed on the socket besides root; empty = root only
	ConfirmTimeout time.Duration // a risky change not confirmed in time is rolled back
}

// LogSettings is logs.cfg: where logs go and how they rotate.
type LogSettings struct {
	Directory    string // log files: DIR/filter.log, DIR/debug.log, ...
	RotateSizeMB int    // rotate a log file when it reaches this size
	RotateKeep   int    // rotated files kept per log
	JSON         bool   // also write JSON lines (DIR/NAME.json)
	Syslog       bool   // also send lines to the local syslog
}

// User is one entry of UserDB.cfg: an administrator of the web administration
// and its JSON-RPC API. The admin socket is not concerned: its file mode and peer
// credentials decide who uses it.
type User struct {
	ID   int
	Name string // login name
	Role string // "admin" (may change configuration) or "read-only"
	// PasswordHash is a PHC string ("$argon2id$v=19$m=...,t=...,p=...$salt$hash")
	// written by `keepstate user add/passwd`; never the password. Empty: the user
	// cannot log in until a password is set.
	PasswordHash string
}

// Roles of UserDB.cfg.
const (
	RoleAdmin    = "admin"
	RoleReadOnly = "read-only"
)

const (
	tableHost = "Host"
	tableLogs = "Logs"
	listUsers = "Users"
)

// DefaultHost and DefaultLogs are the companions of a bundle made
// from a lone winroute.cfg.
func DefaultHost() HostSettings {
	return HostSettings{AdminSocket: "/run/keepstate/admin.sock", ConfirmTimeout: 30 * time.Second}
}

func DefaultLogs() LogSettings {
	return LogSettings{Directory: "/var/log/keepstate", RotateSizeMB: 100, RotateKeep: 5}
}

// DefaultUsers is empty: there is no default password, and nobody logs in to
// the web administration until `keepstate user add` created someone.
func DefaultUsers() []User { return []User{} }

func hfield[F any](f func(*HostSettings) *F) func(*HostSettings) any {
	return func(h *HostSettings) any { return f(h) }
}

func lfield[F any](f func(*LogSettings) *F) func(*LogSettings) any {
	return func(l *LogSettings) any { return f(l) }
}

var hostDefs = []valueDef[HostSettings]{
	{table: tableHost, name: "Hostname", doc: "host that exported the bundle (informational)",
		field: hfield(func(h *HostSettings) *string { return &h.Hostname })},
	{table: tableHost, name: "AdminSocket", doc: "path of the daemon's admin socket",
		field: hfield(func(h *HostSettings) *string { return &h.AdminSocket })},
	{table: tableHost, name: "AdminGroup", doc: "Unix group allowed on the admin socket besides root (empty: root only)",
		field: hfield(func(h *HostSettings) *string { return &h.AdminGroup })},
	{table: tableHost, name: "ConfirmTimeout", unit: "s", min: 5, max: 3600, doc: "a risky change not confirmed within this time is rolled back",
		field: hfield(func(h *HostSettings) *time.Duration { return &h.ConfirmTimeout })},
}

var logDefs = []valueDef[LogSettings]{
	{table: tableLogs, name: "Directory", doc: "directory of the log files",
		field: lfield(func(l *LogSettings) *string { return &l.Directory })},
	{table: tableLogs, name: "RotateSizeMB", unit: "MiB", min: 1, max: 1 << 20, doc: "rotate a log when it reaches this size",
		field: lfield(func(l *LogSettings) *int { return &l.RotateSizeMB })},
	{table: tableLogs, name: "RotateKeep", unit: "files", min: 0, max: 1000, doc: "rotated files kept per log",
		field: lfield(func(l *LogSettings) *int { return &l.RotateKeep })},
	{table: tableLogs, name: "JSON", doc: "also write JSON lines",
		field: lfield(func(l *LogSettings) *bool { return &l.JSON })},
	{table: tableLogs, name: "Syslog", doc: "also send log lines to syslog",
		field: lfield(func(l *LogSettings) *bool { return &l.Syslog })},
}

func byName[T any](defs []valueDef[T]) map[string]*valueDef[T] {
	m := make(map[string]*valueDef[T], len(defs))
	for i := range defs {
		m[defs[i].name] = &defs[i]
	}
	return m
}

// parseTables reads a companion file made of one table.
func parseTables[T any](file string, data []byte, table string, defs []valueDef[T], target *T) ErrorList {
	d := &diag{file: file}
	return parseCompanion(d, data, func(b xblock) bool {
		if b.list || b.name != table {
			return false
		}
		decodeTable(d, b, defs, byName(defs), target, map[string]pos{})
		return true
	}, table)
}

// parseCompanion reads the blocks of a companion file, handing each to handle and
// reporting the ones it refuses and repeated blocks.
func parseCompanion(d *diag, data []byte, handle func(xblock) bool, known ...string) ErrorList {
	if len(data) > MaxFileSize {
		d.errorf(pos{}, "file is %d bytes, larger than the %d allowed", len(data), MaxFileSize)
		return d.errs
	}
	blocks, ok := readTree(d, data)
	if !ok {
		return d.errs
	}
	seen := map[string]pos{}
	for _, b := range blocks {
		if first, dup := seen[b.name]; dup {
			d.errorf(b.pos, "%q appears twice (first at line %d)", b.name, first.line)
			continue
		}
		seen[b.name] = b.pos
		if !handle(b) {
			d.errorf(b.pos, "unknown %s %q%s (this file holds %s)", blockKind(b), b.name, suggest(b.name, known), strings.Join(known, ", "))
		}
	}
	return d.errs
}

func blockKind(b xblock) string {
	if b.list {
		return "list"
	}
	return "table"
}

func parseHost(file string, data []byte) (HostSettings, ErrorList) {
	h := DefaultHost()
	errs := parseTables(file, data, tableHost, hostDefs, &h)
	return h, errs
}

func parseLogs(file string, data []byte) (LogSettings, ErrorList) {
	l := DefaultLogs()
	errs := parseTables(file, data, tableLogs, logDefs, &l)
	return l, errs
}

func parseUsers(file string, data []byte) ([]User, ErrorList) {
	d := &diag{file: file}
	users := []User{}
	dec := &decoder{d: d}
	errs := parseCompanion(d, data, func(b xblock) bool {
		if !b.list || b.name != listUsers {
			return false
		}
		ids, names := map[int]pos{}, map[string]pos{}
		for _, it := range b.items {
			f := dec.fields(listUsers, it)
			u := User{ID: f.id(ids)}
			if v, ok := f.need("Name"); ok {
				if err := CheckUserName(v.value); err != nil {
					d.errorf(v.pos, "Name: %v", err)
				} else {
					dec.unique(names, "user", v.value, v.pos)
				}
				u.Name = v.value
			}
			if v, ok := f.need("Role"); ok {
				u.Role = strings.TrimSpace(v.value)
				if u.Role != RoleAdmin && u.Role != RoleReadOnly {
					d.errorf(v.pos, "Role: want %s or %s, got %q%s", RoleAdmin, RoleReadOnly, v.value, suggest(u.Role, []string{RoleAdmin, RoleReadOnly}))
				}
			}
			if v, ok := f.get("PasswordHash"); ok {
				u.PasswordHash = strings.TrimSpace(v.value)
				if err := CheckPasswordHash(u.PasswordHash); err != nil {
					d.errorf(v.pos, "PasswordHash: %v", err)
				}
			}
			users = append(users, u)
		}
		return true
	}, listUsers)
	return users, errs
}

// CheckUserName accepts what a login name may be: 1 to 32 letters, digits and
// "._-", not starting with "-" (so it never reads as a flag).
func CheckUserName(s string) error {
	if s == "" || len(s) > 32 || strings.HasPrefix(s, "-") {
		return fmt.Errorf("%q is not a user name (1 to 32 letters, digits, '.', '_' or '-', not starting with '-')", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q is not a user name (1 to 32 letters, digits, '.', '_' or '-', not starting with '-')", s)
		}
	}
	return nil
}

// CheckPasswordHash accepts the PHC strings of the hashes keepstate verifies. It
// checks the form only; the web administration checks the parameters when it
// verifies a password.
func CheckPasswordHash(s string) error {
	if s == "" {
		return nil
	}
	if !strings.HasPrefix(s, "$argon2id$") || strings.Count(s, "$") != 5 || strings.ContainsAny(s, " \t\n<>&") {
		return fmt.Errorf("want an argon2id hash as `keepstate user passwd` writes it ($argon2id$v=19$m=...,t=...,p=...$SALT$HASH), never a password")
	}
	return nil
}

func marshalTable[T any](table string, defs []valueDef[T], v *T) []byte {
	var w xmlWriter
	w.header()
	w.open("table", table)
	for i := range defs {
		w.variable(defs[i].name, defs[i].format(v))
	}
	w.close("table")
	w.buf.WriteString("</config>\n")
	return w.buf.Bytes()
}

func marshalUsers(users []User) []byte {
	var w xmlWriter
	w.header()
	recs := make([]record, len(users))
	for i, u := range users {
		recs[i] = record{u.ID, []string{u.Name, u.Role, u.PasswordHash}}
	}
	w.list(listUsers, recs)
	w.buf.WriteString("</config>\n")
	return w.buf.Bytes()
}
