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

// backendChoice is the chosen way of hooking.
type backendChoice struct {
	describe string
	steps    []step
}

// chooseBackend picks the backend for want ("", auto, nft, iptables). auto takes
// nftables' native queue when the nft tool exists and the kernel accepts the
// expression, and the iptables tools otherwise.
func chooseBackend(ctx context.Context, want string, s hookSpec, run runner, have tools) (backendChoice, error) {
	nftChoice := func() (backendChoice, error) {
		if !have("nft") {
			return backendChoice{}, errors.New("the nft tool is not installed")
		}
		if err := run(ctx, nftProbe()); err != nil {
			return backendChoice{}, fmt.Errorf("the kernel has no native nftables queue expression: %w", err)
		}
		return backendChoice{describe: describeNft, steps: nftSteps(s)}, nil
	}
	iptChoice := func() (backendChoice, error) {
		for _, t := range []string{"iptables", "ip6tables"} {
			if !have(t) {
				return backendChoice{}, fmt.Errorf("the %s tool is not installed", t)
			}
		}
		steps := append(iptablesSteps("iptables", s), iptablesSteps("ip6tables", s)...)
		return backendChoice{describe: describeIptables, steps: steps}, nil
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

// staleCommands remove whatever an earlier keepstate that died left in place,
// for every backend whose tool exists, in the widest configuration (Input on).
func staleCommands(have tools) []command {
	wide := hookSpec{queues: 1, input: true}
	var cmds []command
	if have("nft") {
		cmds = append(cmds, staleCleanup(nftSteps(wide))...)
	}
	for _, t := range []string{"iptables", "ip6tables"} {
		if have(t) {
			cmds = append(cmds, staleCleanup(iptablesSteps(t, wide))...)
		}
	}
	return cmds
}

// maxDuplicateJumps bounds how often a stale jump is deleted: someone may have
// inserted the same jump more than once.
const maxDuplicateJumps = 8

// removeStale runs the stale cleanup; failures mean there was nothing to remove.
func removeStale(ctx context.Context, run runner, have tools) {
	for _, c := range staleCommands(have) {
		repeat := 1
		if isJumpDelete(c) {
			repeat = maxDuplicateJumps
		}
		for i := 0; i < repeat; i++ {
			if run(ctx, c) != nil {
				break
			}
		}
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
			if err := h.run(ctx, u); err != nil {
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
