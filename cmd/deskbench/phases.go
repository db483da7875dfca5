package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// run runs the phases in an order that keeps them apart: pops, fan-out and the
// rate search need only the -operators phones; the media phase has a node of its
// own; the memory phase adds -live more (whose REGISTERs are the registration
// figure); Kamailio runs last, alone.
func (b *bench) run(ctx context.Context) (*results, error) {
	res := newResults(b.o)
	n := b.o.Operators
	port1, err := freePort()
	if err != nil {
		return res, err
	}
	reg, err := b.register(ctx, b.sipAddr, 1, n, 1000, port1, port1, "desk_register_operators")
	if err != nil {
		return res, err
	}
	if _, err := b.startPhone(port1); err != nil {
		return res, err
	}
	b.logf("registered %d operator phones with the desk in %.2fs", reg.Successful, reg.Seconds)
	if err := b.operators.open(ctx, 1, n); err != nil {
		return res, err
	}

	if b.o.phase("pop") {
		if res.Pop, err = b.popPhase(ctx); err != nil {
			return res, err
		}
	}
	if b.o.phase("fanout") {
		if res.Fanout, err = b.fanoutPhase(ctx); err != nil {
			return res, err
		}
	}
	// The rate search runs after the pops and the fan-out: its unclean steps leave
	// work behind (hunts, wrap-ups) that would show in their figures.
	if b.o.phase("rate") {
		b.logf("desk: searching the clean rate")
		if res.Desk, err = b.cleanRate(ctx, "desk", b.sipAddr, b.deskPID()); err != nil {
			return res, err
		}
	}
	// The media phase runs its own node on its own Redis database: it comes before
	// the memory phase's 2,000 pages, which would load the host it measures.
	if b.o.phase("media") {
		if res.Media, err = b.mediaPhase(ctx); err != nil {
			return res, err
		}
	}
	port2 := 0
	if b.o.phase("register") || b.o.phase("memory") {
		from, to := n+1, n+b.o.Registrations
		if port2, err = freePort(); err != nil {
			return res, err
		}
		if err := b.addOperators(ctx, from, to); err != nil {
			return res, err
		}
		b.logf("desk: %d digest REGISTERs", b.o.Registrations)
		var prof func() error
		if b.o.Profile != "" {
			if prof, err = b.startProfile(ctx, 2*time.Second, "register"); err != nil {
				return res, err
			}
		}
		if res.Registrations, err = b.register(ctx, b.sipAddr, from, to, 5000, port2, port2, "desk_register"); err != nil {
			return res, err
		}
		if prof != nil {
			if err := prof(); err != nil {
				return res, err
			}
		}
		if _, err := b.startPhone(port2); err != nil {
			return res, err
		}
		if b.o.phase("memory") {
			if err := b.operators.open(ctx, from, to); err != nil {
				return res, err
			}
			if res.Memory, err = b.memoryPhase(ctx); err != nil {
				return res, err
			}
		}
	}
	if b.kamailio() {
		if res.Kamailio, res.KamailioRegistrations, err = b.kamailioPhase(ctx, port1, port2); err != nil {
			return res, err
		}
	}
	res.finish(b.o)
	return res, nil
}

// cleanRate steps the caller rate up until a step is not clean, then tries the
// midpoint between the last clean rate and the first unclean one, once.
func (b *bench) cleanRate(ctx context.Context, who, target string, serverPID int) (*rateSearch, error) {
	rs := &rateSearch{}
	try := func(rate int) (bool, error) {
		r, err := b.runCallers(ctx, callerLoad{target: target, rate: rate, dur: b.o.Step, hold: b.o.Talk,
			name: fmt.Sprintf("%s_rate_%d", who, rate), server: serverPID})
		if err != nil {
			return false, err
		}
		rs.Steps = append(rs.Steps, *r)
		b.logf("%s: %d calls/s for %.0fs: %d/%d ok, %d failed, %d retransmissions", who, rate, b.o.Step.Seconds(),
			r.Successful, r.Calls, r.Failed, r.Retrans)
		if r.Clean && r.Rate > rs.CleanRate {
			rs.CleanRate = r.Rate
		}
		b.operators.settle(10 * time.Second)
		b.operators.report()
		if !r.Clean {
			// A phone whose caller gave up retransmits its 200 for half a minute;
			// the next step must not count those.
			if err := b.restartPhones(); err != nil {
				return false, err
			}
		}
		time.Sleep(time.Second)
		return r.Clean, nil
	}
	unclean := 0
	for _, rate := range b.o.Rates {
		ok, err := try(rate)
		if err != nil {
			return rs, err
		}
		if !ok {
			unclean = rate
			break
		}
	}
	if mid := (rs.CleanRate + unclean) / 2; unclean > 0 && mid > rs.CleanRate && mid < unclean && unclean-rs.CleanRate >= 20 {
		if _, err := try(mid); err != nil {
			return rs, err
		}
	}
	if unclean == 0 {
		rs.Ceiling = true // every rate asked for was clean: the figure is a floor
	}
	return rs, nil
}

// popPhase drives -pop-rate calls/s and matches each INVITE's send time (sipp's
// trace) with the moment the operator's page read its call.ringing frame.
func (b *bench) popPhase(ctx context.Context) (*popResult, error) {
	b.logf("desk: pop latency at %d calls/s for %s", b.o.PopRate, b.o.PopFor)
	b.operators.takePops()
	var prof func() error
	if b.o.Profile != "" {
		var err error
		if prof, err = b.startProfile(ctx, b.o.PopFor, "pop"); err != nil {
			return nil, err
		}
	}
	within0, count0 := b.metricLine(ctx, popBucket5ms), b.metricLine(ctx, "desk_pop_latency_seconds_count")
	r, err := b.runCallers(ctx, callerLoad{target: b.sipAddr, rate: b.o.PopRate, dur: b.o.PopFor, hold: b.o.Talk,
		trace: true, name: "desk_pop"})
	if err != nil {
		return nil, err
	}
	if prof != nil {
		if err := prof(); err != nil {
			return nil, err
		}
	}
	b.operators.settle(10 * time.Second)
	pops := b.operators.takePops()
	sent, err := inviteTimes(r.traceFile)
	if err != nil {
		return nil, err
	}
	var lat []time.Duration
	for id, t := range sent {
		if p, ok := pops[id]; ok {
			lat = append(lat, p.Sub(t))
		}
	}
	pr := &popResult{Load: *r, Matched: len(lat), Latency: summarize(lat)}
	if n := b.metricLine(ctx, "desk_pop_latency_seconds_count") - count0; n > 0 {
		pr.PublishedWithin5ms = (b.metricLine(ctx, popBucket5ms) - within0) / n
	}
	if len(lat) == 0 {
		return pr, fmt.Errorf("pop phase: no call.ringing frame matched an INVITE (%d sent, %d pops)", len(sent), len(pops))
	}
	return pr, nil
}

// fanoutPhase connects -pages supervisor pages and measures, for every event frame
// each one reads, the delay from the event's publish time.
func (b *bench) fanoutPhase(ctx context.Context) (*fanoutResult, error) {
	b.logf("desk: opening %d supervisor pages", b.o.Pages)
	f, err := b.openFanout(ctx, b.o.Pages)
	if err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second) // snapshots sent, pages idle
	slowBefore := b.metric(ctx, "desk_hub_slow_pages_total")
	f.counting.Store(true)
	b.logf("desk: fan-out at %d calls/s for %s", b.o.FanoutRate, b.o.FanoutFor)
	r, err := b.runCallers(ctx, callerLoad{target: b.sipAddr, rate: b.o.FanoutRate, dur: b.o.FanoutFor, hold: b.o.Talk, name: "desk_fanout"})
	if err != nil {
		f.close()
		return nil, err
	}
	b.operators.settle(10 * time.Second)
	time.Sleep(2 * time.Second)
	f.counting.Store(false)
	slow := b.metric(ctx, "desk_hub_slow_pages_total") - slowBefore
	delays := f.close()
	fr := &fanoutResult{Pages: b.o.Pages, Load: *r, Frames: len(delays), SlowPagesDropped: int(slow), Delay: summarize(delays)}
	if len(delays) == 0 {
		return fr, fmt.Errorf("fan-out phase: no event frame carried a publish time")
	}
	return fr, nil
}

// memoryPhase holds -live calls at once and reads the desk's memory and
// goroutines before, at the peak and -settle after the calls ended.
func (b *bench) memoryPhase(ctx context.Context) (*memoryResult, error) {
	m := &memoryResult{Target: b.o.Live}
	var err error
	// The baseline must not hold what earlier phases left for a while (finished
	// Call-IDs are kept two minutes, pages just opened are sending snapshots):
	// read until the live heap stops falling (two readings within 2%), or give
	// up after 150 s and say so.
	deadline := time.Now().Add(150 * time.Second)
	prev, err := b.reading(ctx, "before")
	if err != nil {
		return nil, err
	}
	for {
		time.Sleep(max(b.o.Settle/12, time.Second))
		if m.Before, err = b.reading(ctx, "before"); err != nil {
			return nil, err
		}
		if float64(m.Before.HeapLive) >= 0.98*float64(prev.HeapLive) {
			break
		}
		if time.Now().After(deadline) {
			b.logf("desk: the live heap was still falling after 150 s; the per-call figure is not reliable")
			break
		}
		prev = m.Before
	}
	build := time.Duration(float64(b.o.Live) / float64(b.o.LiveRate) * float64(time.Second))
	hold := build + 15*time.Second
	b.logf("desk: building %d live calls at %d calls/s, each held %s", b.o.Live, b.o.LiveRate, hold.Round(time.Second))
	p, load, err := b.startCallers(ctx, callerLoad{target: b.sipAddr, rate: b.o.LiveRate, dur: build, hold: hold, name: "desk_live"})
	if err != nil {
		return nil, err
	}
	// The peak: every call placed and none ended yet.
	select {
	case <-time.After(build + 5*time.Second):
	case <-p.done:
		return nil, fmt.Errorf("memory phase: the callers ended early: %v", p.err)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	st, _ := readStats(load.statFile)
	m.Live = st.Current
	if m.Peak, err = b.reading(ctx, "peak"); err != nil {
		p.stop()
		return nil, err
	}
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	st, _ = readStats(load.statFile)
	load.Successful, load.Failed, load.Retrans = st.Successful, st.Failed, st.Retransmissions
	load.Clean = load.Successful == load.Calls && load.Failed == 0
	m.Load = *load
	b.operators.settle(20 * time.Second)
	b.logf("desk: calls ended; waiting %s for the baseline", b.o.Settle)
	select {
	case <-time.After(b.o.Settle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if m.After, err = b.reading(ctx, "after"); err != nil {
		return nil, err
	}
	m.finish()
	return m, nil
}

// reading forces a collection through pprof (so the heap is what is live, not
// what waits for the collector) and reads the desk's RSS, heap and goroutines.
// With -profile the heap profile of each reading is kept as heap_NAME.pprof.
func (b *bench) reading(ctx context.Context, name string) (memReading, error) {
	if _, err := httpGet(ctx, "http://"+b.pprof+"/debug/pprof/heap?gc=1"); err != nil {
		return memReading{}, err
	}
	// Twice: finalizers and the sweep of the first collection free more.
	heap, err := httpGet(ctx, "http://"+b.pprof+"/debug/pprof/heap?gc=1")
	if err != nil {
		return memReading{}, err
	}
	if b.o.Profile != "" {
		if err := os.MkdirAll(b.o.Profile, 0o755); err != nil {
			return memReading{}, err
		}
		if err := os.WriteFile(filepath.Join(b.o.Profile, "heap_"+name+".pprof"), heap, 0o644); err != nil {
			return memReading{}, err
		}
	}
	var r memReading
	r.RSS = procRSS(b.desk.cmd.Process.Pid)
	r.HeapLive = int64(b.metric(ctx, "go_memstats_heap_alloc_bytes"))
	r.Goroutines = int(b.metric(ctx, "go_goroutines"))
	return r, nil
}

// metric sums the samples of one metric family from the desk's /metrics.
func (b *bench) metric(ctx context.Context, name string) float64 {
	body, err := httpGet(ctx, b.web+"/metrics")
	if err != nil {
		return 0
	}
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		fields := strings.Fields(rest)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// popBucket5ms counts the pops the desk published within 5 ms of the INVITE.
const popBucket5ms = `desk_pop_latency_seconds_bucket{le="0.005"}`

// metricLine is the value of one exact sample line (name and labels) of /metrics.
func (b *bench) metricLine(ctx context.Context, sample string) float64 {
	body, err := httpGet(ctx, b.web+"/metrics")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

// procRSS is the resident set of pid in bytes, from /proc.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// startProfile starts a CPU profile of the desk for d; the returned func waits
// for it and also saves a heap profile.
func (b *bench) startProfile(ctx context.Context, d time.Duration, name string) (func() error, error) {
	return b.profileAt(ctx, b.pprof, d, name)
}

// profileAt is startProfile for the desk node whose pprof listens on addr.
func (b *bench) profileAt(ctx context.Context, addr string, d time.Duration, name string) (func() error, error) {
	if err := os.MkdirAll(b.o.Profile, 0o755); err != nil {
		return nil, err
	}
	secs := max(1, int(d.Seconds()))
	type got struct {
		body []byte
		err  error
	}
	ch := make(chan got, 1)
	go func() {
		body, err := httpGet(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
		ch <- got{body, err}
	}()
	return func() error {
		g := <-ch
		if g.err != nil {
			return fmt.Errorf("cpu profile: %w", g.err)
		}
		cpu := filepath.Join(b.o.Profile, "cpu_"+name+".pprof")
		if err := os.WriteFile(cpu, g.body, 0o644); err != nil {
			return err
		}
		heap, err := httpGet(ctx, "http://"+addr+"/debug/pprof/heap")
		if err != nil {
			return err
		}
		b.logf("profiles in %s (go tool pprof -top %s)", b.o.Profile, cpu)
		return os.WriteFile(filepath.Join(b.o.Profile, "heap_"+name+".pprof"), heap, 0o644)
	}, nil
}

// kamailio reports whether the Kamailio side runs.
func (b *bench) kamailio() bool {
	if b.o.Kamailio == "off" || !b.o.phase("rate") {
		return false
	}
	_, err := exec.LookPath("kamailio")
	return err == nil || b.o.Kamailio == "on"
}

// kamailioPhase runs Kamailio with the repo's minimal stateful proxy and
// registrar, registers the same phones and searches its clean rate with the
// same sipp load. The desk is idle meanwhile.
func (b *bench) kamailioPhase(ctx context.Context, port1, port2 int) (*rateSearch, *registrations, error) {
	k, addr, err := b.startKamailio(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer k.stop()
	// Kamailio, without nathelper, sends to the Contact: the phones already listen.
	if _, err := b.register(ctx, addr, 1, b.o.Operators, 1000, 0, port1, "kamailio_register_operators"); err != nil {
		return nil, nil, err
	}
	var regs *registrations
	if port2 != 0 {
		b.logf("kamailio: %d digest REGISTERs", b.o.Registrations)
		from := b.o.Operators + 1
		if regs, err = b.register(ctx, addr, from, from+b.o.Registrations-1, 5000, 0, port2, "kamailio_register"); err != nil {
			return nil, nil, err
		}
	}
	b.logf("kamailio: searching the clean rate")
	rs, err := b.cleanRate(ctx, "kamailio", addr, k.cmd.Process.Pid)
	return rs, regs, err
}

// percentile returns the q-quantile (0..1) of sorted d, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func summarize(d []time.Duration) latency {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return latency{}
	}
	return latency{N: len(s), P50: msf(percentile(s, 0.50)), P99: msf(percentile(s, 0.99)), Max: msf(s[len(s)-1])}
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
