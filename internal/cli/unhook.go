package cli

import (
	"context"
	"fmt"
	"time"

	"keepstate/daemon"
	"keepstate/dataplane/nfqueue"
)

func init() {
	register(&command{
		name:    "unhook",
		summary: "remove the hooks a stopped keepstate left (fail closed): its traffic then follows the kernel's own rules",
		run:     runUnhook,
	})
}

const unhookUsage = `unhook [--socket PATH]

With --fail closed, a stopped or crashed keepstate leaves its hooks in place, so
that nothing it filters passes unfiltered: the kernel drops what they queue.
unhook removes them (every chain and table keepstate creates, iptables and
nftables, IPv4 and IPv6) from the current network namespace; forwarding then
follows the kernel's own rules. It refuses while a keepstate answers on --socket.`

func runUnhook(e *env, args []string) int {
	fs := newFlagSet(e, "unhook", unhookUsage)
	socket := socketFlag(fs)
	if !parseNoArgs(fs, args) {
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var st daemon.Status
	if daemon.Call(ctx, *socket, &daemon.Request{Cmd: daemon.CmdStatus}, &st) == nil {
		e.errorf("unhook: keepstate is running (pid %d, %s): stop it first; its hooks are its own", st.PID, *socket)
		return exitFail
	}
	done := nfqueue.RemoveHooks(ctx)
	if len(done) == 0 {
		fmt.Fprintln(e.stdout, "no keepstate hooks found")
		return exitOK
	}
	for _, c := range done {
		fmt.Fprintln(e.stdout, "removed:", c)
	}
	return exitOK
}
