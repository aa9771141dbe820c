package nfqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Backend names accepted in Options.Backend, and what Plane.Backend reports.
const (
	BackendAuto     = "auto"
	BackendNft      = "nft"
	BackendIptables = "iptables"

	describeNft      = "nftables (native queue)"
	describeIptables = "iptables (xt NFQUEUE)"
)

// runner runs one command; tests replace it.
type runner func(ctx context.Context, c command) error

// execRunner runs c and returns its output in the error when it fails.
func execRunner(ctx context.Context, c command) error {
	cmd := exec.CommandContext(ctx, c.name, c.args...)
	if c.stdin != "" {
		cmd.Stdin = strings.NewReader(c.stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", c, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// tools reports which rule tools exist; tests replace it.
type tools func(name string) bool

func haveTool(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// backendChoice is the chosen way of hooking: the install steps, and the
// commands that then remove what a keepstate that died left and this install
// did not replace (the other backend's hooks, chains of a wider configuration).
type backendChoice struct {
	describe string
	steps    []step
	stale    []command
}

// chooseBackend picks the backend for want ("", auto, nft, iptables). auto takes
// nftables' native queue when the nft tool exists and the kernel accepts the
// expression, and the iptables tools otherwise.
func chooseBackend(ctx context.Context, want string, s hookSpec, run runner, have tools) (backendChoice, error) {
	wide := hookSpec{queues: 1, input: true} // every chain any configuration makes
	nftChoice := func() (backendChoice, error) {
		if !have("nft") {
			return backendChoice{}, errors.New("the nft tool is not installed")
		}
		if err := run(ctx, nftProbe()); err != nil {
			return backendChoice{}, fmt.Errorf("the kernel has no native nftables queue expression: %w", err)
		}
		c := backendChoice{describe: describeNft, steps: nftSteps(s)}
		for _, t := range []string{"iptables", "ip6tables"} {
			if have(t) {
				c.stale = append(c.stale, iptablesRemoval(t, iptablesChains(t == "ip6tables", wide))...)
			}
		}
		return c, nil
	}
	iptChoice := func() (backendChoice, error) {
		for _, t := range []string{"iptables", "ip6tables", "iptables-restore", "ip6tables-restore"} {
			if !have(t) {
				return backendChoice{}, fmt.Errorf("the %s tool is not installed", t)
			}
		}
		c := backendChoice{describe: describeIptables}
		for _, t := range []string{"iptables", "ip6tables"} {
			exists := func(ch ipChain) bool { return run(ctx, iptablesJumpCheck(t, ch)) == nil }
			c.steps = append(c.steps, iptablesSteps(t, s, exists)...)
			used := map[string]bool{}
			for _, ch := range iptablesChains(t == "ip6tables", s) {
				used[ch.chain] = true
			}
			var unused []ipChain
			for _, ch := range iptablesChains(t == "ip6tables", wide) {
				if !used[ch.chain] {
					unused = append(unused, ch)
				}
			}
			c.stale = append(c.stale, iptablesRemoval(t, unused)...)
		}
		if have("nft") {
			c.stale = append(c.stale, nftSteps(s)[0].undo...)
		}
		return c, nil
	}
	switch want {
	case BackendNft:
		c, err := nftChoice()
		if err != nil {
			return c, fmt.Errorf("nfqueue: backend nft: %w", err)
		}
		return c, nil
	case BackendIptables:
		c, err := iptChoice()
		if err != nil {
			return c, fmt.Errorf("nfqueue: backend iptables: %w", err)
		}
		return c, nil
	case "", BackendAuto:
		c, nerr := nftChoice()
		if nerr == nil {
			return c, nil
		}
		c, ierr := iptChoice()
		if ierr == nil {
			return c, nil
		}
		return c, fmt.Errorf("nfqueue: no backend: nft: %v; iptables: %v", nerr, ierr)
	}
	return backendChoice{}, fmt.Errorf("nfqueue: unknown backend %q (want auto, nft or iptables)", want)
}

// maxDuplicateJumps bounds how often a jump is deleted: someone may have
// inserted the same jump more than once.
const maxDuplicateJumps = 8

// runRemoval runs one removal command; a jump deletion is repeated until it
// fails, so duplicate jumps go too. Only a failure of the first attempt counts.
func runRemoval(ctx context.Context, run runner, c command) error {
	err := run(ctx, c)
	if err != nil || !isJumpDelete(c) {
		return err
	}
	for i := 1; i < maxDuplicateJumps; i++ {
		if run(ctx, c) != nil {
			break
		}
	}
	return nil
}

// removeStale runs the stale cleanup; failures mean there was nothing to remove.
func removeStale(ctx context.Context, run runner, cmds []command) {
	for _, c := range cmds {
		_ = runRemoval(ctx, run, c)
	}
}

func isJumpDelete(c command) bool {
	for _, a := range c.args {
		if a == "-D" {
			return true
		}
	}
	return false
}

// hookSet is the hooks one plane installed, in order, so that exactly those are
// removed.
type hookSet struct {
	run       runner
	installed []step
}

// install runs the steps in order. When one fails, the steps already done are
// undone before the error is returned: a Start that fails half-way leaves
// nothing behind.
func (h *hookSet) install(ctx context.Context, steps []step) error {
	for _, st := range steps {
		if err := h.run(ctx, st.do); err != nil {
			return errors.Join(fmt.Errorf("nfqueue: install hooks: %w", err), h.remove(ctx))
		}
		h.installed = append(h.installed, st)
	}
	return nil
}

// remove undoes every installed step, newest first; every undo is tried even
// when one fails, and the failures are returned together.
func (h *hookSet) remove(ctx context.Context) error {
	var errs []error
	for i := len(h.installed) - 1; i >= 0; i-- {
		for _, u := range h.installed[i].undo {
			if err := runRemoval(ctx, h.run, u); err != nil {
				errs = append(errs, err)
			}
		}
	}
	h.installed = nil
	if len(errs) > 0 {
		return fmt.Errorf("nfqueue: remove hooks: %w", errors.Join(errs...))
	}
	return nil
}

// RemoveHooks removes, from the current network namespace, every hook any
// keepstate configuration installs (both backends, every chain, both address
// families): what a stop with fail closed, a restart or a crash left in place,
// for an administrator who takes keepstate out of the path. It returns the
// commands that removed something; commands that find nothing to remove are not
// errors.
func RemoveHooks(ctx context.Context) []string {
	return removeAll(ctx, execRunner, haveTool)
}

func removeAll(ctx context.Context, run runner, have tools) []string {
	wide := hookSpec{queues: 1, input: true} // every chain any configuration makes
	var cmds []command
	for _, t := range []string{"iptables", "ip6tables"} {
		if have(t) {
			cmds = append(cmds, iptablesRemoval(t, iptablesChains(t == "ip6tables", wide))...)
		}
	}
	if have("nft") {
		cmds = append(cmds, nftSteps(wide)[0].undo...)
	}
	var done []string
	for _, c := range cmds {
		if runRemoval(ctx, run, c) == nil {
			done = append(done, c.String())
		}
	}
	return done
}
