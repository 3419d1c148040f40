// gone-style: a Go HTTP daemon that does what One-com's gone/daemon does (written for these tests from gone's
// documented behaviour, not from its code), run unchanged under baton by tests/bats/clients.bats:
//
//   - its listeners taken by name from LISTEN_FDS / LISTEN_FDNAMES, parsed by itself;
//   - READY=1 through a minimal sd_notify of its own that knows only paths, as gone/sd does: it turns a leading '@'
//     into a NUL byte itself, and Go's socket layer then counts a trailing NUL in the address length, so an
//     abstract NOTIFY_SOCKET is never reached (ECONNREFUSED) with Go before 1.22 (golang/go#63579);
//   - on SIGUSR2 it replaces itself: fork+exec of its own binary with the listeners, the new copy says READY=1 +
//     MAINPID=<its pid> and then sends SIGTERM to its parent (gone's ReplaceProcess + SignalParentOnReady);
//   - on SIGHUP it reloads in-process: RELOADING=1 (with MONOTONIC_USEC=), then READY=1;
//   - on SIGTERM it stops accepting, finishes what it accepted, and exits 0.
//
// It answers every request with "hello from gone-style pid=P generation=G copy=C reloads=R".
//
//	gone-style NAME   serve on the listener named NAME (exit 2 when there is none by that name)
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const parentVar = "GONE_STYLE_PARENT" // set in a copy: the pid to SIGTERM once the copy is ready
const copyVar = "GONE_STYLE_COPY"

func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:] // what breaks on an abstract address: see above
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

type namedListener struct {
	name string
	l    *net.TCPListener
}

// The listeners passed in LISTEN_FDS, in order, with their LISTEN_FDNAMES. LISTEN_PID must be ours, except in a copy
// that its parent started (the parent cannot know the copy's pid before it starts).
func inherited() ([]namedListener, error) {
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("LISTEN_FDS=%q", os.Getenv("LISTEN_FDS"))
	}
	if os.Getenv(parentVar) == "" && os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return nil, fmt.Errorf("LISTEN_PID=%q is not %d", os.Getenv("LISTEN_PID"), os.Getpid())
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	if len(names) != n {
		return nil, fmt.Errorf("LISTEN_FDNAMES=%q for %d fds", os.Getenv("LISTEN_FDNAMES"), n)
	}
	var ls []namedListener
	for i := 0; i < n; i++ {
		f := os.NewFile(uintptr(3+i), names[i])
		l, err := net.FileListener(f) // a copy, close-on-exec
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("fd %d (%s): %v", 3+i, names[i], err)
		}
		ls = append(ls, namedListener{names[i], l.(*net.TCPListener)})
	}
	return ls, nil
}

// fork+exec of ourselves with the listeners at 3, 4, ... The copy is not waited for: once ready it stops us.
func replace(ls []namedListener, copyNo int) error {
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	var names []string
	for _, nl := range ls {
		f, err := nl.l.File()
		if err != nil {
			return err
		}
		defer f.Close()
		files = append(files, f)
		names = append(names, nl.name)
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "LISTEN_") && !strings.HasPrefix(e, parentVar+"=") &&
			!strings.HasPrefix(e, copyVar+"=") {
			env = append(env, e)
		}
	}
	env = append(env, "LISTEN_FDS="+strconv.Itoa(len(ls)), "LISTEN_FDNAMES="+strings.Join(names, ":"),
		parentVar+"="+strconv.Itoa(os.Getpid()), copyVar+"="+strconv.Itoa(copyNo+1))
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	p, err := os.StartProcess(exe, os.Args, &os.ProcAttr{Files: files, Env: env})
	if err != nil {
		return err
	}
	return p.Release()
}

func monotonicUsec() uint64 {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1 /* CLOCK_MONOTONIC */, uintptr(unsafe.Pointer(&ts)), 0)
	return uint64(ts.Sec)*1000000 + uint64(ts.Nsec)/1000
}

func main() {
	name := os.Args[1]
	ls, err := inherited()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gone-style:", err)
		os.Exit(2)
	}
	var serve *net.TCPListener
	for _, nl := range ls {
		if nl.name == name {
			serve = nl.l
		}
	}
	if serve == nil {
		fmt.Fprintf(os.Stderr, "gone-style: no listener named %q\n", name)
		os.Exit(2)
	}
	copyNo, _ := strconv.Atoi(os.Getenv(copyVar))
	if copyNo == 0 {
		copyNo = 1
	}
	var reloads int64
	gen := os.Getenv("BATON_GENERATION")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from gone-style pid=%d generation=%s copy=%d reloads=%d\n", os.Getpid(), gen, copyNo,
			atomic.LoadInt64(&reloads))
	})}
	srv.SetKeepAlivesEnabled(false)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serve) }()

	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR2)
	if parent, _ := strconv.Atoi(os.Getenv(parentVar)); parent > 0 {
		if err := sdNotify(fmt.Sprintf("READY=1\nMAINPID=%d\nSTATUS=copy %d", os.Getpid(), copyNo)); err != nil {
			fmt.Fprintln(os.Stderr, "gone-style: sd_notify:", err)
			os.Exit(3)
		}
		syscall.Kill(parent, syscall.SIGTERM)
	} else if err := sdNotify("READY=1\nSTATUS=copy 1"); err != nil {
		fmt.Fprintln(os.Stderr, "gone-style: sd_notify:", err)
		os.Exit(3)
	}
	for {
		select {
		case err := <-served:
			fmt.Fprintln(os.Stderr, "gone-style:", err)
			os.Exit(1)
		case s := <-sig:
			switch s {
			case syscall.SIGUSR2:
				if err := replace(ls, copyNo); err != nil {
					fmt.Fprintln(os.Stderr, "gone-style: replace:", err)
				}
			case syscall.SIGHUP:
				sdNotify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
				time.Sleep(50 * time.Millisecond) // the work of a reload
				atomic.AddInt64(&reloads, 1)
				sdNotify(fmt.Sprintf("READY=1\nSTATUS=reloaded %d", atomic.LoadInt64(&reloads)))
			case syscall.SIGTERM:
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				srv.Shutdown(ctx)
				cancel()
				os.Exit(0)
			}
		}
	}
}
