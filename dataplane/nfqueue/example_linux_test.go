//go:build linux

package nfqueue_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"keepstate/config"
	"keepstate/dataplane"
	"keepstate/dataplane/nfqueue"
	"keepstate/firewall"
)

// How a daemon runs the live data plane: start it, say which hooks it uses, run
// until a signal, and always Close, which removes the hooks.
func ExamplePlane() {
	cfg := config.Default()
	eng, err := cfg.NewEngine(firewall.Options{})
	if err != nil {
		log.Fatal(err)
	}
	p, err := nfqueue.New(nfqueue.Options{
		Engine:   eng,
		Reporter: &dataplane.Reporter{Engine: eng},
		QueueNum: 0,
		Queues:   2,
		FailOpen: false, // traffic stops while keepstate is not running
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	log.Printf("filtering forwarded traffic through %s", p.Backend())
	if err := p.Wait(); err != nil {
		log.Print(err)
	}
	s := p.Stats()
	log.Printf("%d packets, %d dropped, %d rejected, %d lost in the kernel's queues",
		s.Packets, s.Dropped, s.Rejected, s.QueueDropped+s.UserDropped)
}
