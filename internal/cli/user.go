package cli

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"keepstate/config"
	"keepstate/daemon"
	"keepstate/web"
)

func init() {
	register(&command{
		name:    "user",
		summary: "add, change, remove or list the users of the web administration (UserDB.cfg)",
		run:     runUser,
	})
}

const userUsage = `user add NAME --role admin|read-only [--socket SOCK | --config PATH]
       keepstate user passwd NAME [--socket SOCK | --config PATH]
       keepstate user role NAME admin|read-only [--socket SOCK | --config PATH]
       keepstate user del NAME [--socket SOCK | --config PATH]
       keepstate user list [--json] [--socket SOCK | --config PATH]

The password is read from standard input (its first line) or, on a terminal,
asked for twice without echo; only its argon2id hash is stored, in UserDB.cfg.
When keepstate runs, the change goes to the daemon, which saves it to its
--config at once (a user change cuts no connection: no confirmation); otherwise
the bundle at --config (default /etc/keepstate) is edited. A lone winroute.cfg
holds no users.`

// stdin is what `user` reads passwords from; tests replace it.
var stdin io.Reader = os.Stdin

func runUser(e *env, args []string) int {
	return runSubcommands(e, "user", userUsage, []subcommand{
		{"add", func(e *env, a []string) int { return userChange(e, "add", a) }},
		{"passwd", func(e *env, a []string) int { return userChange(e, "passwd", a) }},
		{"role", func(e *env, a []string) int { return userChange(e, "role", a) }},
		{"del", func(e *env, a []string) int { return userChange(e, "del", a) }},
		{"list", userList},
	}, args)
}

// userTarget says where users live: the running daemon or the files.
type userTarget struct {
	socket, config string
	daemon         bool
}

func userFlags(e *env, name string) (*flag.FlagSet, *userTarget) {
	fs := newFlagSet(e, "user "+name, userUsage)
	t := &userTarget{}
	fs.StringVar(&t.socket, "socket", daemon.DefaultSocket, "admin socket of the running keepstate")
	fs.StringVar(&t.config, "config", "", "bundle folder or .tgz to edit when keepstate does not run (default "+defaultConfigDir+")")
	return fs, t
}

func (t *userTarget) resolve(fs *flag.FlagSet) {
	t.daemon = flagGiven(fs, "socket") || (t.config == "" && daemonRunning(t.socket))
	if t.config == "" {
		t.config = defaultConfigDir
	}
}

func userChange(e *env, op string, args []string) int {
	fs, t := userFlags(e, op)
	role := fs.String("role", "", "admin (may change the configuration) or read-only")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	want := 1
	if op == "role" {
		want = 2
	}
	if len(pos) != want || (op == "add" && *role == "") || (op != "add" && op != "role" && *role != "") {
		fs.Usage()
		return exitUsage
	}
	name := pos[0]
	if op == "role" {
		*role = pos[1]
	}
	if err := config.CheckUserName(name); err != nil {
		e.errorf("user %s: %v", op, err)
		return exitUsage
	}
	if *role != "" && *role != config.RoleAdmin && *role != config.RoleReadOnly {
		e.errorf("user %s: --role %q: want %s or %s", op, *role, config.RoleAdmin, config.RoleReadOnly)
		return exitUsage
	}
	t.resolve(fs)
	hash := ""
	if op == "add" || op == "passwd" {
		pw, err := readPassword(e, name)
		if err != nil {
			e.errorf("user %s: %v", op, err)
			return exitUsage
		}
		if hash, err = web.HashPassword(pw); err != nil {
			e.errorf("user %s: %v", op, err)
			return exitUsage
		}
	}
	if t.daemon {
		req := &daemon.Request{Cmd: daemon.CmdUserSet, UserOp: op, UserName: name, UserRole: *role, PasswordHash: hash}
		if op == "del" {
			req = &daemon.Request{Cmd: daemon.CmdUserDelete, UserName: name}
		}
		if code := callDaemon(e, t.socket, req, nil); code != exitOK {
			return code
		}
	} else if code := editUserFiles(e, t.config, func(us []config.User) ([]config.User, error) {
		return daemon.EditUsers(us, op, name, *role, hash)
	}); code != exitOK {
		return code
	}
	done := map[string]string{"add": "added", "passwd": "password changed", "role": "role changed", "del": "removed"}[op]
	fmt.Fprintf(e.stdout, "user %s %s\n", name, done)
	return exitOK
}

func userList(e *env, args []string) int {
	fs, t := userFlags(e, "list")
	asJSON := fs.Bool("json", false, "JSON output")
	if !parseNoArgs(fs, args) {
		return exitUsage
	}
	t.resolve(fs)
	var users []daemon.UserInfo
	if t.daemon {
		if code := callDaemon(e, t.socket, &daemon.Request{Cmd: daemon.CmdUserList}, &users); code != exitOK {
			return code
		}
	} else {
		b, code := loadBundle(e, t.config)
		if b == nil {
			return code
		}
		users = daemon.UserList(b.Users)
	}
	if *asJSON {
		if err := writeJSON(e.stdout, users); err != nil {
			e.errorf("user list: %v", err)
			return exitFail
		}
		return exitOK
	}
	if len(users) == 0 {
		fmt.Fprintln(e.stdout, "no users: nobody can log in to the web administration (keepstate user add NAME --role admin)")
		return exitOK
	}
	for _, u := range users {
		pw := ""
		if !u.HasPassword {
			pw = "  (no password: cannot log in)"
		}
		fmt.Fprintf(e.stdout, "%-20s %s%s\n", u.Name, u.Role, pw)
	}
	return exitOK
}

// editUserFiles changes the users of the bundle at path (a folder or a .tgz)
// when no keepstate runs.
func editUserFiles(e *env, path string, edit func([]config.User) ([]config.User, error)) int {
	b, code := loadBundle(e, path)
	if b == nil {
		return code
	}
	fi, err := os.Stat(path)
	if err != nil {
		e.errorf("user: %v", err)
		return exitFail
	}
	gz := false
	if !fi.IsDir() {
		head := make([]byte, 2)
		if f, err := os.Open(path); err == nil {
			f.Read(head)
			f.Close()
		}
		gz = head[0] == 0x1f && head[1] == 0x8b
		if !gz {
			e.errorf("user: %v", daemon.ErrUsersNeedBundle)
			return exitUsage
		}
	}
	users, err := edit(b.Users)
	if err != nil {
		e.errorf("user: %v", err)
		return exitUsage
	}
	b.Users = users
	if fi.IsDir() {
		err = config.InstallBundle(path, b)
	} else {
		var buf bytes.Buffer
		if err = config.WriteBundle(&buf, b); err == nil {
			err = config.WriteFileAtomic(path, buf.Bytes(), 0o600)
		}
	}
	if err != nil {
		e.errorf("user: writing %s: %v", path, err)
		return exitFail
	}
	return exitOK
}

// readPassword reads a password: asked twice without echo on a terminal, else
// the first line of standard input.
func readPassword(e *env, name string) (string, error) {
	if f, ok := stdin.(*os.File); ok {
		if t, err := unix.IoctlGetTermios(int(f.Fd()), ioctlGetTermios); err == nil {
			first, err := promptNoEcho(f, t, fmt.Sprintf("password for %s: ", name))
			if err != nil {
				return "", err
			}
			second, err := promptNoEcho(f, t, "again: ")
			if err != nil {
				return "", err
			}
			if first != second {
				return "", errors.New("the two passwords differ")
			}
			return first, nil
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", fmt.Errorf("reading the password from standard input: %v", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func promptNoEcho(f *os.File, t *unix.Termios, prompt string) (string, error) {
	fmt.Fprint(os.Stderr, prompt)
	noEcho := *t
	noEcho.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(int(f.Fd()), ioctlSetTermios, &noEcho); err != nil {
		return "", err
	}
	defer func() {
		unix.IoctlSetTermios(int(f.Fd()), ioctlSetTermios, t)
		fmt.Fprintln(os.Stderr)
	}()
	line, err := bufio.NewReader(f).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}
