package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// kamailio is a running Kamailio with its log, read line by line as it comes.
type kamailio struct {
	proc *process
	addr string
	log  string

	mu    sync.Mutex
	lines []logLine
	more  chan struct{}
}

type logLine struct {
	at   time.Time
	text string
}

// startKamailio starts deploy/kamailio/bench.cfg, the baseline of the clean rate,
// on a free loopback port with 4 children, as the reference figure was taken.
func (b *bench) startKamailio(ctx context.Context) (*process, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	k, err := b.runKamailio(ctx, "bench.cfg", "127.0.0.1:"+strconv.Itoa(port),
		"-A", "BENCH_OPERATORS="+strconv.Itoa(b.o.Operators), "-A", `BENCH_PASSWORD="`+password+`"`)
	if err != nil {
		return nil, "", err
	}
	return k.proc, k.addr, nil
}

// runKamailio starts deploy/kamailio/CFG listening on addr (UDP), in the
// foreground with its log on stderr, and waits until it holds its port.
func (b *bench) runKamailio(ctx context.Context, cfg, addr string, defines ...string) (*kamailio, error) {
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		return nil, fmt.Errorf("kamailio is not installed (Debian: apt-get install kamailio; .ci/test does it): %w", err)
	}
	run, err := os.MkdirTemp(b.dir, "kamailio-")
	if err != nil {
		return nil, err
	}
	k := &kamailio{addr: addr, log: filepath.Join(run, "kamailio.log"), more: make(chan struct{}, 1)}
	logf, err := os.Create(k.log)
	if err != nil {
		return nil, err
	}
	args := []string{"-f", filepath.Join(b.repo, "deploy", "kamailio", cfg), "-l", "udp:" + addr, "-n", "4",
		"-DD", "-E", "-Y", run, "-w", run, "-m", "1024", "-M", "16"}
	cmd := exec.Command(bin, append(args, defines...)...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = logf
	if k.proc, err = b.start("kamailio", cmd); err != nil {
		return nil, err
	}
	go k.read(pipe, logf)
	for i := 0; i < 100; i++ {
		if k.proc.exited() {
			return nil, fmt.Errorf("kamailio exited at start (%v); see %s", k.proc.err, k.log)
		}
		if !udpFree(addr) {
			time.Sleep(200 * time.Millisecond)
			b.logf("kamailio (%s) pid %d on %s", cfg, cmd.Process.Pid, addr)
			return k, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	k.proc.stop()
	return nil, fmt.Errorf("kamailio did not listen on %s; see %s", addr, k.log)
}

func (k *kamailio) read(r io.Reader, copyTo io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		at := time.Now()
		fmt.Fprintf(copyTo, "%s %s\n", at.Format("15:04:05.000000"), sc.Text())
		k.mu.Lock()
		k.lines = append(k.lines, logLine{at: at, text: sc.Text()})
		k.mu.Unlock()
		select {
		case k.more <- struct{}{}:
		default:
		}
	}
}

// waitLog returns when the first line containing text after since was read.
func (k *kamailio) waitLog(ctx context.Context, text string, since time.Time, limit time.Duration) (time.Time, error) {
	deadline := time.After(limit)
	for {
		k.mu.Lock()
		for _, l := range k.lines {
			if l.at.After(since) && strings.Contains(l.text, text) {
				k.mu.Unlock()
				return l.at, nil
			}
		}
		k.mu.Unlock()
		select {
		case <-k.more:
		case <-deadline:
			return time.Time{}, fmt.Errorf("kamailio logged no %q within %s; see %s", text, limit, k.log)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

func udpFree(addr string) bool {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
