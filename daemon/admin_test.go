package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"keepstate/dataplane"
	"keepstate/firewall"
)

func TestStaleSocketReplaced(t *testing.T) {
	h := newHarness(t, "base.cfg")
	os.MkdirAll(filepath.Dir(h.opts.SocketPath), 0o700)
	// A keepstate that died leaves its socket file behind.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: h.opts.SocketPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(h.opts.SocketPath); err != nil {
		t.Fatalf("stale socket not there: %v", err)
	}
	h.start()
	if st := h.status(); st.Backend != "fake" {
		t.Errorf("status %+v", st)
	}
}

func TestSocketPathNotASocket(t *testing.T) {
	h := newHarness(t, "base.cfg")
	os.MkdirAll(filepath.Dir(h.opts.SocketPath), 0o700)
	os.WriteFile(h.opts.SocketPath, []byte("precious"), 0o600)
	o := h.opts
	o.NewPlane = func(*firewall.Engine, *dataplane.Reporter) (DataPlane, error) { return &fakePlane{}, nil }
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	err = d.Start(context.Background())
	if err == nil || err.Error() != "admin socket "+o.SocketPath+" exists and is not a socket: refusing to replace it" {
		t.Errorf("Start: %v", err)
	}
	if b, _ := os.ReadFile(o.SocketPath); string(b) != "precious" {
		t.Error("file replaced")
	}
}

func TestSocketRefusals(t *testing.T) {
	saved := peerAllowed
	peerAllowed = func(uid uint32) bool { return false }
	closed := newHarness(t, "base.cfg")
	closed.start() // the server copies peerAllowed at start
	peerAllowed = saved
	err := closed.call(&Request{Cmd: CmdStatus}, nil)
	var re *RemoteError
	if !errors.As(err, &re) || !strings.HasSuffix(re.Msg, " may not use the admin socket") || !strings.HasPrefix(re.Msg, "uid ") {
		t.Errorf("denied peer: %v", err)
	}

	// A request line longer than the limit is refused without being parsed.
	h := newHarness(t, "base.cfg")
	h.start()
	c, err := net.Dial("unix", h.opts.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = 'x'
		}
		for sent := 0; sent <= MaxRequestBytes; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var resp Response
	if json.Unmarshal(line, &resp) != nil || resp.OK || resp.Error != "request longer than 67108864 bytes" {
		t.Errorf("oversized request: %s", line)
	}

	// peerAllowed itself: root and the daemon's own user.
	if !peerAllowed(0) || !peerAllowed(uint32(os.Geteuid())) || peerAllowed(uint32(os.Geteuid())+12345) {
		t.Error("peerAllowed")
	}
}
