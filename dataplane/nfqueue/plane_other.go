//go:build !linux

package nfqueue

import (
	"context"
	"errors"
)

// errNotLinux: NFQUEUE exists only on Linux.
var errNotLinux = errors.New("nfqueue: the live data plane needs Linux")

// Plane is the live data plane; on this system it cannot start.
type Plane struct{}

// New fails: NFQUEUE exists only on Linux.
func New(o Options) (*Plane, error) { return nil, errNotLinux }

// Start fails: NFQUEUE exists only on Linux.
func (p *Plane) Start(ctx context.Context) error { return errNotLinux }

// Close does nothing.
func (p *Plane) Close() error { return nil }

// Detach does nothing.
func (p *Plane) Detach() error { return nil }

// Wait returns at once.
func (p *Plane) Wait() error { return nil }

// Err returns nil.
func (p *Plane) Err() error { return nil }

// Backend is empty.
func (p *Plane) Backend() string { return "" }

// Stats are empty.
func (p *Plane) Stats() Stats { return Stats{} }
