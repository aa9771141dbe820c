//go:build !linux

package conformance

import (
	"context"
	"errors"
	"time"
)

// NamespacePrefix starts the name of every namespace a Kernel creates.
const NamespacePrefix = "kscf"

// KernelOptions shape a Kernel.
type KernelOptions struct {
	Settle      time.Duration
	DropInvalid bool
}

// Kernel is the Linux kernel's conntrack in a network namespace: Linux only.
type Kernel struct{}

// Missing says why a Kernel cannot be built here.
func Missing() string { return "the kernel comparison runs on Linux only" }

// NewKernel fails: Linux only.
func NewKernel(context.Context, Mode, KernelOptions) (*Kernel, error) {
	return nil, errors.New(Missing())
}

// Decide is never reached: NewKernel fails.
func (k *Kernel) Decide(*Stream) ([]Verdict, error) { return nil, errors.New(Missing()) }

// Close does nothing.
func (k *Kernel) Close() error { return nil }
