package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"keepstate/config"
)

func withStdin(t *testing.T, s string) {
	saved := stdin
	stdin = strings.NewReader(s)
	t.Cleanup(func() { stdin = saved })
}

// TestUserFiles: without a running keepstate, `user` edits the bundle at
// --config; only the argon2id hash is stored.
func TestUserFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc")
	if err := config.InstallBundle(dir, config.NewBundle(config.Default())); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runCLI("user", "list", "--config", dir); code != exitOK || !strings.Contains(out, "no users") {
		t.Errorf("list: %d %q", code, out)
	}
	withStdin(t, "a long enough password\n")
	if code, out, errs := runCLI("user", "add", "alice", "--role", "admin", "--config", dir); code != exitOK || out != "user alice added\n" {
		t.Fatalf("add: %d %q %q", code, out, errs)
	}
	db, _ := os.ReadFile(filepath.Join(dir, "UserDB.cfg"))
	if !strings.Contains(string(db), "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(string(db), "long enough") {
		t.Errorf("UserDB.cfg:\n%s", db)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "UserDB.cfg")); fi.Mode().Perm() != 0o600 {
		t.Errorf("UserDB.cfg mode %v", fi.Mode())
	}
	withStdin(t, "short\n")
	if code, _, errs := runCLI("user", "add", "bob", "--role", "read-only", "--config", dir); code != exitUsage || !strings.Contains(errs, "password too short") {
		t.Errorf("short password: %d %q", code, errs)
	}
	for _, bad := range [][]string{
		{"user", "add", "bob", "--config", dir},                     // no role
		{"user", "add", "bob", "--role", "root", "--config", dir},   // bad role
		{"user", "add", "-bob", "--role", "admin", "--config", dir}, // bad name
		{"user", "frobnicate"},
	} {
		withStdin(t, "a long enough password\n")
		if code, _, _ := runCLI(bad...); code != exitUsage {
			t.Errorf("%v: exit %d", bad, code)
		}
	}
	withStdin(t, "a long enough password\n")
	if code, _, errs := runCLI("user", "add", "alice", "--role", "admin", "--config", dir); code != exitUsage || !strings.Contains(errs, "exists already") {
		t.Errorf("add twice: %d %q", code, errs)
	}
	if code, _, _ := runCLI("user", "role", "alice", "read-only", "--config", dir); code != exitOK {
		t.Error("role")
	}
	if code, out, _ := runCLI("user", "list", "--config", dir); code != exitOK || !strings.Contains(out, "alice") || !strings.Contains(out, "read-only") {
		t.Errorf("list: %q", out)
	}
	if code, _, _ := runCLI("user", "del", "alice", "--config", dir); code != exitOK {
		t.Error("del")
	}
	if code, _, errs := runCLI("user", "del", "alice", "--config", dir); code != exitUsage || !strings.Contains(errs, `no user "alice"`) {
		t.Errorf("del twice: %q", errs)
	}
	lone := filepath.Join(t.TempDir(), "winroute.cfg")
	os.WriteFile(lone, config.Marshal(config.Default()), 0o644)
	withStdin(t, "a long enough password\n")
	if code, _, errs := runCLI("user", "add", "x", "--role", "admin", "--config", lone); code != exitUsage || !strings.Contains(errs, "lone winroute.cfg") {
		t.Errorf("lone file: %d %q", code, errs)
	}
}

// TestUserDaemon: with keepstate running, `user` goes through the admin socket
// and the daemon saves UserDB.cfg at once.
func TestUserDaemon(t *testing.T) {
	stubPlanes(t)
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	config.InstallBundle(etc, config.NewBundle(config.Default()))
	sock := filepath.Join(dir, "admin.sock")
	done := make(chan string, 1)
	go func() {
		_, _, errs := runCLI("run", "--config", etc, "--log-dir", filepath.Join(dir, "log"), "--socket", sock)
		done <- errs
	}()
	waitFor(t, "the admin socket", func() bool { return daemonRunning(sock) })
	withStdin(t, "a long enough password\n")
	if code, _, errs := runCLI("user", "add", "carol", "--role", "admin", "--socket", sock); code != exitOK {
		t.Fatalf("add: %q", errs)
	}
	if code, out, _ := runCLI("user", "list", "--socket", sock); code != exitOK || !strings.Contains(out, "carol") {
		t.Errorf("list: %q", out)
	}
	b, err := config.LoadBundle(etc)
	if err != nil || len(b.Users) != 1 || b.Users[0].Name != "carol" {
		t.Errorf("saved users: %v %+v", err, b)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case errs := <-done:
		if !strings.Contains(errs, "web administration on https://127.0.0.1:") || !strings.Contains(errs, "SHA-256 fingerprint") {
			t.Errorf("run's stderr lacks the web administration:\n%s", errs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
}
