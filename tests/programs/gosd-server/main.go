// gosd-server: a Go HTTP service written against go-systemd (Debian's golang-github-coreos-go-systemd-dev), as a
// program for systemd would be, run unchanged under baton by tests/bats/clients.bats: its listener taken by name
// (activation.ListenersWithNames), READY=1 through daemon.SdNotify, WATCHDOG=1 at half of what
// daemon.SdWatchdogEnabled says, and a graceful stop on SIGTERM. It answers every request with
// "hello from gosd-server pid=P generation=G".
//
//	gosd-server NAME   serve on the listener named NAME (exit 2 when there is none by that name)
//	GOSD_NO_PING=FILE  stop pinging the watchdog once FILE exists
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/activation"
	"github.com/coreos/go-systemd/daemon"
)

func main() {
	name := os.Args[1]
	byName, err := activation.ListenersWithNames()
	if err != nil || len(byName[name]) != 1 {
		fmt.Fprintf(os.Stderr, "gosd-server: no listener named %q (%v, %d names)\n", name, err, len(byName))
		os.Exit(2)
	}
	gen := os.Getenv("BATON_GENERATION")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from gosd-server pid=%d generation=%s\n", os.Getpid(), gen)
	})}
	srv.SetKeepAlivesEnabled(false)
	done := make(chan struct{})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		// Stop accepting, finish what was accepted: a replaced generation loses no request.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		close(done)
	}()
	if interval, err := daemon.SdWatchdogEnabled(false); err == nil && interval > 0 {
		fmt.Fprintf(os.Stderr, "gosd-server: watchdog every %v\n", interval)
		go func() {
			for range time.Tick(interval / 2) {
				if f := os.Getenv("GOSD_NO_PING"); f != "" {
					if _, err := os.Stat(f); err == nil {
						continue
					}
				}
				daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			}
		}()
	}
	if ok, err := daemon.SdNotify(false, daemon.SdNotifyReady); !ok {
		fmt.Fprintf(os.Stderr, "gosd-server: SdNotify: %v (NOTIFY_SOCKET=%q)\n", err, os.Getenv("NOTIFY_SOCKET"))
		os.Exit(3)
	}
	if err := srv.Serve(byName[name][0]); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "gosd-server:", err)
		os.Exit(1)
	}
	<-done
}
