package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems/sessions"
)

// storeWatch is how a replica notices that it lost its store: it reads the
// store's revision every second. Once reads have failed for longer than
// store.lost_grace, it cuts every live session (fail_closed, the default):
// a replica that cannot see revocations must not keep doors open. New
// work is refused meanwhile by the store errors themselves, and /healthz
// reports the loss so that a load balancer stops sending connections.
type storeWatch struct {
	feed   store.Changes
	grace  time.Duration
	cut    bool // lost_mode fail_closed
	endAll func(reason string)
	log    *slog.Logger
	every  time.Duration
	health *storeHealth // bastion_store_up (nil: not exported)
}

func (w storeWatch) run(ctx context.Context) {
	if w.every <= 0 {
		w.every = time.Second
	}
	var downSince time.Time
	cutThisOutage := false
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, w.every*2)
		_, err := w.feed.Rev(rctx)
		cancel()
		w.health.checked(err)
		switch {
		case err == nil:
			if !downSince.IsZero() {
				w.log.Info("the store is reachable again", "after", time.Since(downSince).Round(time.Millisecond))
			}
			downSince, cutThisOutage = time.Time{}, false
		case downSince.IsZero():
			downSince = time.Now()
			w.log.Error("the store cannot be reached; new logins, forwards and commands are refused", "err", err)
		case w.cut && !cutThisOutage && time.Since(downSince) > w.grace:
			cutThisOutage = true
			w.log.Error("the store has been unreachable beyond store.lost_grace: cutting every live session", "grace", w.grace)
			w.endAll(sessions.ReasonStoreLost)
		}
	}
}
