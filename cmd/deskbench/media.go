package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/httpapi"
	"github.com/calldesk/desk/desk/redisstore"
)

// The media phase (issue 8): calls on a media-mode line, carried by the desk's
// media bridge, with G.711 both ways. It runs its own desk node, on its own Redis
// database (the next one after the harness's), with a YAML config whose line
// "media" is in media mode, so that the proxy-mode operators of the other phases
// are never rung and the node's CPU is the media calls' alone. Its peers are
// lightweight sipgo agents and raw RTP (media_sip.go, media_rtp.go).
//
// For each step of -media-calls it places that many calls at -media-rate calls/s,
// holds them all -media-hold once all are up, and counts what the peers received
// from the bridge (lost by sequence, late beyond a 40 ms jitter buffer) and what
// the bridge received from them (its desk_bridge_rtp_* counters). The search stops
// at the first step over 1%. Then, with the last clean step's calls up again, a
// supervisor asks -media-monitors times to listen to a call over the HTTP API,
// timed until his phone has answered and received the first RTP packet.

const (
	mediaLine    = "media"
	mediaSup     = "msup"
	mediaBadMax  = 0.01 // a step is clean under 1% of packets lost or late
	mediaOpExtra = 5    // operators beyond the largest step
	// mediaOtherMax is the CPU (% of a core) other processes may take during a step
	// before an unclean step is tried once more.
	mediaOtherMax = 20
)

func mediaOpLogin(i int) string { return "mop" + strconv.Itoa(i) }

type mediaResult struct {
	HoldSec   float64 `json:"hold_seconds"`
	SetupRate int     `json:"setup_rate"`
	Record    bool    `json:"record"`
	// CleanCalls is the largest step with every call up and under 1% of packets
	// lost or late in either direction; Ceiling when no step was over.
	CleanCalls int `json:"clean_calls"`
	// IdleCPU is the media node's CPU with no call up (its pages open), in ms per
	// second: part of every step's per-call figures, most at the small steps.
	IdleCPU float64           `json:"idle_desk_cpu_ms_per_second"`
	Ceiling bool              `json:"all_steps_clean,omitempty"`
	Steps   []mediaStepResult `json:"steps"`
	Monitor *monitorResult    `json:"monitor,omitempty"`
}

type mediaStepResult struct {
	Calls      int `json:"calls"`
	Answered   int `json:"answered"`
	Failed     int `json:"failed"`
	DeskHungUp int `json:"hung_up_by_desk"` // calls the desk ended before the caller's BYE
	// CallSetup is INVITE to 200 at the caller (ring included).
	CallSetup dist `json:"call_setup"`
	// Peers is what the callers' and operators' RTP sockets received from the
	// bridge (and what they sent); Bridge is the bridge's own count of what it
	// received from them (desk_bridge_rtp_*_total deltas).
	Peers        rtpCounts            `json:"peers"`
	PeersByParty map[string]rtpCounts `json:"peers_by_party"`
	Bridge       rtpCounts            `json:"bridge"`
	PeerBad      float64              `json:"peer_lost_or_late"`
	// PeerSteadyBad is the same over the steady window only (every call up, none
	// set up or ended), late reckoned from each stream's first packet in it.
	PeerSteadyBad float64 `json:"peer_steady_lost_or_late"`
	BridgeBad     float64 `json:"bridge_lost_or_late"`
	Clean         bool    `json:"clean"`
	// CPU: the desk's milliseconds per call-second over the steady hold (every
	// call up, nothing set up or torn down), and per call over the whole step
	// (setup, the hold, teardown, the wrap-up); Redis per call over the step.
	HoldSec          float64 `json:"hold_seconds"`
	CPUPerCallSecond float64 `json:"desk_cpu_ms_per_call_second"`
	CPUPerCall       float64 `json:"desk_cpu_ms_per_call"`
	// SetupCPUPerCall is CPUPerCall less the steady rate over the time each call
	// was up (hold + calls/rate): set-up, teardown and wrap-up.
	SetupCPUPerCall float64 `json:"desk_cpu_ms_per_call_setup_teardown_wrapup"`
	RedisCPUPerCall float64 `json:"redis_cpu_ms_per_call"`
	// MixWall is the bridge's time in its mixers' ticks (desk_bridge_mix_seconds_total,
	// wall time, preemption included) over the desk's CPU time in the step.
	MixWall float64 `json:"mix_wall_over_desk_cpu"`
	// The harness's own health: its CPU (% of one core), its sender's worst tick
	// lag and skipped frames, and UDP datagrams the host's kernel dropped for full
	// receive buffers (any socket: the desk's or the peers').
	HarnessCPUPct  float64 `json:"harness_cpu_pct"`
	SenderMaxLagMS float64 `json:"sender_max_lag_ms"`
	SenderSkipped  int64   `json:"sender_skipped_frames"`
	UDPDrops       int64   `json:"udp_rcvbuf_drops"`
	// OtherCPUPct is the host's CPU (% of one core) used by processes other than
	// the desk nodes, Redis and the harness during the step: other work on a shared
	// host, which makes a step's figures worse than the desk's own.
	OtherCPUPct float64  `json:"other_cpu_pct"`
	Retried     bool     `json:"retried,omitempty"`
	Monitors    int      `json:"monitors,omitempty"`
	Errors      []string `json:"errors,omitempty"`
}

// dist is a distribution in milliseconds.
type dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	Max float64 `json:"max_ms"`
}

func distOf(d []time.Duration) dist {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return dist{}
	}
	return dist{N: len(s), P50: msf(percentile(s, 0.5)), P95: msf(percentile(s, 0.95)), Max: msf(s[len(s)-1])}
}

type monitorResult struct {
	Calls  int `json:"calls_up"`
	Tries  int `json:"tries"`
	Joined int `json:"joined"`
	// Answered is from the POST to the supervisor's phone sending 200 (it answers
	// at once); FirstRTP to the first RTP packet from the bridge on that phone;
	// HTTP is the POST's own round trip (202).
	Answered dist `json:"answered"`
	FirstRTP dist `json:"first_rtp"`
	HTTP     dist `json:"http"`
	// The bridge's desk_bridge_monitor_setup_seconds over the same tries: from the
	// request to the phone's answer, as the bridge saw it.
	HistCount  int      `json:"histogram_count"`
	HistMeanMS float64  `json:"histogram_mean_ms"`
	HistP95LE  float64  `json:"histogram_p95_le_ms"` // the bucket bound under which 95% fell
	Errors     []string `json:"errors,omitempty"`
}

// mediaRig is the media node and its peers.
type mediaRig struct {
	b       *bench
	node    *deskNode
	rdb     *redis.Client
	rtp     *rtpEngine
	ops     *mediaPhone
	sup     *mediaPhone
	callers *callerAgent
	pool    *operatorPool
	hc      *http.Client
	supCh   chan supAnswer
	seq     atomic.Int64 // caller numbers

	lastMonitor *monitorResult
}

type supAnswer struct {
	at     time.Time
	s      *rtpStream
	ended  <-chan struct{}
	callee string
}

func (m *mediaRig) close() {
	if m.pool != nil {
		m.pool.close()
	}
	if m.callers != nil {
		m.callers.close()
	}
	if m.ops != nil {
		m.ops.close()
	}
	if m.sup != nil {
		m.sup.close()
	}
	if m.rtp != nil {
		m.rtp.close()
	}
	if m.node != nil {
		m.node.proc.stop()
	}
	if m.rdb != nil {
		m.rdb.Close()
	}
}

// mediaRedis is the harness's Redis URL on the next database.
func mediaRedis(base string) (string, *redis.Options, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	db := 0
	if p := strings.Trim(u.Path, "/"); p != "" {
		if db, err = strconv.Atoi(p); err != nil {
			return "", nil, fmt.Errorf("redis URL %q: database %q", base, p)
		}
	}
	u.Path = "/" + strconv.Itoa((db+1)%16)
	opt, err := redis.ParseURL(u.String())
	return u.String(), opt, err
}

// mediaConfig is the media node's DESK_CONFIG: the media line, and sales in
// proxy mode as in the demo config.
func (b *bench) mediaConfig() (string, error) {
	rec := ""
	if b.o.MediaRecord {
		rec = ", record: true, retention: 1d"
	}
	y := fmt.Sprintf(`# deskbench media phase
lines:
  - {number: %s, name: Media line, media: true%s}
  - {number: sales, name: Sales, source: web_search}
media:
  recordings: {dir: %q}
`, mediaLine, rec, filepath.Join(b.dir, "recordings"))
	return b.writeFile("media.yaml", y)
}

// startMedia provisions the media node's users, starts it and its peers.
func (b *bench) startMedia(ctx context.Context, operators int) (m *mediaRig, err error) {
	m = &mediaRig{b: b, supCh: make(chan supAnswer, 8),
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	defer func() {
		if err != nil {
			m.close()
		}
	}()
	rurl, ropt, err := mediaRedis(b.redisURL)
	if err != nil {
		return nil, err
	}
	m.rdb = redis.NewClient(ropt)
	store := redisstore.New(m.rdb, redisstore.WithPrefix(deskPrefix))
	add := func(u *desk.User) error {
		if err := store.CreateUser(ctx, u); err != nil && !errors.Is(err, desk.ErrExists) {
			return fmt.Errorf("media: provision %s: %w", u.Login, err)
		}
		tok, err := store.CreateSession(ctx, u.Login, sessionLife)
		if err != nil {
			return fmt.Errorf("media: session %s: %w", u.Login, err)
		}
		b.mu.Lock()
		b.sessions[u.Login] = tok
		b.mu.Unlock()
		return nil
	}
	if err := add(&desk.User{Login: mediaSup, Name: "Media supervisor", Role: desk.RoleSupervisor, PasswordHash: b.hash,
		SIPHA1: desk.SIPHA1(mediaSup, domain, password)}); err != nil {
		return nil, err
	}
	logins := make([]string, operators)
	for i := range logins {
		l := mediaOpLogin(i + 1)
		logins[i] = l
		if err := add(&desk.User{Login: l, Name: "Media operator " + strconv.Itoa(i+1), Role: desk.RoleOperator,
			PasswordHash: b.hash, SIPHA1: desk.SIPHA1(l, domain, password)}); err != nil {
			return nil, err
		}
	}
	cfg, err := b.mediaConfig()
	if err != nil {
		return nil, err
	}
	if m.node, err = b.startNode(ctx, "media", "DESK_REDIS_URL="+rurl, "DESK_CONFIG="+cfg); err != nil {
		return nil, err
	}
	b.logf("media: desk node pid %d: web %s, sip %s (Redis %s)", m.node.proc.cmd.Process.Pid, m.node.web, m.node.sipAddr, rurl)
	if _, ok := m.metrics(ctx)["desk_bridge_calls_active"]; !ok {
		return nil, fmt.Errorf("media: the desk serves no desk_bridge_* metrics: is the media bridge wired into cmd/desk? (see %s)", m.node.logPath)
	}

	if m.rtp, err = newRTPEngine(); err != nil {
		return nil, err
	}
	if m.ops, err = newMediaPhone("operator", m.rtp, b.o.Ring, toneOperator); err != nil {
		return nil, err
	}
	if m.sup, err = newMediaPhone("supervisor", m.rtp, 0, toneSupervisor); err != nil {
		return nil, err
	}
	m.sup.answered = func(login string, at time.Time, s *rtpStream, ended <-chan struct{}) {
		select {
		case m.supCh <- supAnswer{at: at, s: s, ended: ended, callee: login}:
		default:
		}
	}
	if m.callers, err = newCallerAgent(m.rtp, m.node.sipAddr); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := dialMany(ctx, len(logins), func(i int) error {
		return m.ops.register(ctx, m.node.sipAddr, logins[i], password)
	}); err != nil {
		return nil, err
	}
	if err := m.sup.register(ctx, m.node.sipAddr, mediaSup, password); err != nil {
		return nil, err
	}
	b.logf("media: registered %d operator phones and the supervisor's in %.2fs", len(logins)+1, time.Since(start).Seconds())
	m.pool = newOperatorPool(b, m.node.web)
	if err := m.pool.openLogins(ctx, logins); err != nil {
		return nil, err
	}
	return m, nil
}

// mediaPhase steps the concurrent bridged calls up, then times supervisor legs.
func (b *bench) mediaPhase(ctx context.Context) (*mediaResult, error) {
	o := b.o
	most := slices.Max(o.MediaCalls)
	m, err := b.startMedia(ctx, most+mediaOpExtra)
	if err != nil {
		return nil, err
	}
	defer m.close()
	res := &mediaResult{HoldSec: o.MediaHold.Seconds(), SetupRate: o.MediaRate, Record: o.MediaRecord}
	time.Sleep(time.Second) // the pages' snapshots sent
	pid := m.node.proc.cmd.Process.Pid
	c0, t0 := procCPU(pid), time.Now()
	time.Sleep(3 * time.Second)
	res.IdleCPU = float64((procCPU(pid) - c0).Microseconds()) / 1000 / time.Since(t0).Seconds()
	unclean := 0
	for _, n := range o.MediaCalls {
		b.logf("media: %d bridged calls at once, set up at %d/s, held %s", n, o.MediaRate, o.MediaHold)
		st, err := m.step(ctx, n, 0)
		if err != nil {
			return res, err
		}
		if !st.Clean && st.OtherCPUPct > mediaOtherMax {
			// Other work on this host took the cores the step needed: once more.
			b.logf("media: %d calls not clean while other processes took %.0f%% of a core; trying again", n, st.OtherCPUPct)
			res.Steps = append(res.Steps, *st)
			if st, err = m.step(ctx, n, 0); err != nil {
				return res, err
			}
			st.Retried = true
		}
		res.Steps = append(res.Steps, *st)
		b.logf("media: %d calls: %d up, %d failed; peers lost %d late %d of %d (%.3f%%), bridge lost %d late %d of %d (%.3f%%); desk CPU %.3f ms per call-second; harness %.0f%%, other processes %.0f%% of a core",
			n, st.Answered, st.Failed, st.Peers.Lost, st.Peers.Late, st.Peers.Received+st.Peers.Lost, 100*st.PeerBad,
			st.Bridge.Lost, st.Bridge.Late, st.Bridge.Received+st.Bridge.Lost, 100*st.BridgeBad, st.CPUPerCallSecond, st.HarnessCPUPct, st.OtherCPUPct)
		if !st.Clean {
			unclean = n
			break
		}
		res.CleanCalls = n
	}
	res.Ceiling = unclean == 0
	if o.MediaMonitors > 0 {
		n := res.CleanCalls
		if n == 0 {
			n = o.MediaCalls[0]
		}
		b.logf("media: %d supervisor legs with %d calls up", o.MediaMonitors, n)
		st, err := m.step(ctx, n, o.MediaMonitors)
		if err != nil {
			return res, err
		}
		st.Monitors = o.MediaMonitors
		res.Steps = append(res.Steps, *st)
		res.Monitor = m.lastMonitor
		if res.Monitor != nil {
			res.Monitor.Calls = st.Answered
		}
	}
	if len(res.Steps) == 0 || res.Steps[0].Answered == 0 {
		return res, fmt.Errorf("media phase: no call was bridged (see %s)", m.node.logPath)
	}
	return res, nil
}

// step runs calls at once, each held until all are up and -media-hold more; with
// monitors, a supervisor joins that many times meanwhile.
func (m *mediaRig) step(ctx context.Context, calls, monitors int) (*mediaStepResult, error) {
	b, o := m.b, m.b.o
	pid, redisPID, self := m.node.proc.cmd.Process.Pid, b.redisPID(ctx), os.Getpid()
	m.rtp.take() // forget what earlier steps left
	before := m.metrics(ctx)
	cpu0, redis0, self0, udp0 := procCPU(pid), procCPU(redisPID), procCPU(self), udpRcvbufErrors()
	host0, main0 := hostCPU(), procCPU(b.deskPID())
	t0 := time.Now()

	st := &mediaStepResult{Calls: calls, HoldSec: o.MediaHold.Seconds()}
	results := make([]mediaCall, calls)
	release := make([]chan struct{}, calls)
	var settledN atomic.Int64
	allSettled := make(chan struct{})
	settled := func() {
		if settledN.Add(1) == int64(calls) {
			close(allSettled)
		}
	}
	var wg sync.WaitGroup
	gap := time.Second / time.Duration(o.MediaRate)
	var profSetup func() error
	if o.Profile != "" {
		var err error
		if profSetup, err = b.profileAt(ctx, m.node.pprof, time.Duration(calls)*gap, fmt.Sprintf("media_setup_%d", calls)); err != nil {
			return nil, err
		}
	}
	pace := time.NewTicker(gap)
	for i := 0; i < calls; i++ {
		release[i] = make(chan struct{})
		n := int(m.seq.Add(1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = m.callers.call(ctx, mediaLine, unknownNumber(n%10000), "Media caller "+strconv.Itoa(n), settled, release[i])
		}()
		if i < calls-1 {
			select {
			case <-pace.C:
			case <-ctx.Done():
			}
		}
	}
	pace.Stop()
	select {
	case <-allSettled:
	case <-time.After(30*time.Second + time.Duration(calls)*gap):
		st.Errors = append(st.Errors, fmt.Sprintf("only %d of %d calls answered or failed within the setup time", settledN.Load(), calls))
	case <-ctx.Done():
	}
	tUp := time.Now()
	// The calls end in the order they were placed, as fast as they came: each is
	// held about the same time, and all are up together for -media-hold.
	go func() {
		for i := range release {
			if d := time.Until(tUp.Add(o.MediaHold + time.Duration(i)*gap)); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
			close(release[i])
		}
	}()
	// The steady window: every call up, none set up or torn down.
	margin := time.Duration(0)
	if o.MediaHold >= 4*time.Second {
		margin = time.Second
	}
	winA, winB := tUp.Add(margin), tUp.Add(o.MediaHold-margin)
	m.rtp.window(winA, winB)
	defer m.rtp.window(time.Time{}, time.Time{})
	if profSetup != nil {
		if err := profSetup(); err != nil {
			st.Errors = append(st.Errors, err.Error())
		}
	}
	time.Sleep(time.Until(winA))
	var profHold func() error
	if o.Profile != "" && winB.Sub(winA) >= time.Second {
		var err error
		if profHold, err = b.profileAt(ctx, m.node.pprof, winB.Sub(winA), fmt.Sprintf("media_hold_%d", calls)); err != nil {
			return nil, err
		}
	}
	cpuA := procCPU(pid)
	if monitors > 0 {
		m.lastMonitor = m.monitor(ctx, monitors, winB.Add(-500*time.Millisecond))
	}
	time.Sleep(time.Until(winB))
	cpuB, tB := procCPU(pid), time.Now()
	if profHold != nil {
		if err := profHold(); err != nil {
			st.Errors = append(st.Errors, err.Error())
		}
	}
	wg.Wait()

	// The bridge counts a leg's packets when it ends: wait for every leg to end.
	end := time.Now().Add(20 * time.Second)
	for time.Now().Before(end) && (m.metrics(ctx).family("desk_bridge_calls_active") > 0 || m.rtp.live.Load() > 0) {
		time.Sleep(100 * time.Millisecond)
	}
	if m.node.proc.exited() {
		return nil, fmt.Errorf("media: the desk node exited during the step (%v); see %s", m.node.proc.err, m.node.logPath)
	}
	after := m.metrics(ctx)
	cpu1, redis1, self1, udp1 := procCPU(pid), procCPU(redisPID), procCPU(self), udpRcvbufErrors()
	host1, main1 := hostCPU(), procCPU(b.deskPID())
	wall := time.Since(t0)
	if host0 > 0 && host1 > 0 {
		ours := (cpu1 - cpu0) + (redis1 - redis0) + (self1 - self0) + (main1 - main0)
		st.OtherCPUPct = max(0, 100*(host1-host0-ours).Seconds()/wall.Seconds())
	}

	var setups []time.Duration
	errs := map[string]int{}
	for _, r := range results {
		switch {
		case r.Answered:
			st.Answered++
			setups = append(setups, r.Setup)
			if r.HungUpByDesk {
				st.DeskHungUp++
			}
		default:
			st.Failed++
		}
		if r.Err != nil {
			errs[r.Err.Error()]++
		}
	}
	for e, n := range errs {
		if len(st.Errors) < 8 {
			st.Errors = append(st.Errors, fmt.Sprintf("%d× %s", n, e))
		}
	}
	st.CallSetup = distOf(setups)
	by, lag, skipped := m.rtp.take()
	st.PeersByParty = by
	for _, c := range by {
		st.Peers.add(c)
	}
	d := func(name string) int64 { return int64(math.Round(after.family(name) - before.family(name))) }
	st.Bridge = rtpCounts{Sent: d("desk_bridge_rtp_sent_total"), Received: d("desk_bridge_rtp_received_total"),
		Lost: d("desk_bridge_rtp_lost_total"), Late: d("desk_bridge_rtp_late_total")}
	st.PeerBad, st.BridgeBad, st.PeerSteadyBad = st.Peers.badShare(), st.Bridge.badShare(), st.Peers.steadyBadShare()
	st.Clean = st.Answered == calls && st.Failed == 0 && st.DeskHungUp == 0 && len(st.Errors) == 0 &&
		st.Peers.Received > 0 && st.PeerBad < mediaBadMax && st.BridgeBad < mediaBadMax
	if win := tB.Sub(winA).Seconds(); win > 0 && st.Answered > 0 {
		st.CPUPerCallSecond = float64((cpuB - cpuA).Microseconds()) / 1000 / (float64(st.Answered) * win)
	}
	if st.Answered > 0 {
		st.CPUPerCall = float64((cpu1 - cpu0).Microseconds()) / 1000 / float64(st.Answered)
		st.RedisCPUPerCall = float64((redis1 - redis0).Microseconds()) / 1000 / float64(st.Answered)
		up := o.MediaHold + time.Duration(calls)*gap // each call is up about this long
		st.SetupCPUPerCall = max(0, st.CPUPerCall-st.CPUPerCallSecond*up.Seconds())
	}
	if c := (cpu1 - cpu0).Seconds(); c > 0 {
		st.MixWall = (after.family("desk_bridge_mix_seconds_total") - before.family("desk_bridge_mix_seconds_total")) / c
	}
	st.HarnessCPUPct = 100 * (self1 - self0).Seconds() / wall.Seconds()
	st.SenderMaxLagMS, st.SenderSkipped = msf(lag), skipped
	if udp0 >= 0 && udp1 >= 0 {
		st.UDPDrops = udp1 - udp0
	}
	m.pool.settle(15 * time.Second)
	m.pool.report()
	return st, nil
}

// monitor has the supervisor listen to live calls n times, one after the other,
// until deadline: POST /api/calls/:id/monitor, his phone answers at once, the
// first RTP packet from the bridge; then DELETE and the leg's end.
func (m *mediaRig) monitor(ctx context.Context, n int, deadline time.Time) *monitorResult {
	mr := &monitorResult{}
	fail := func(format string, args ...any) {
		if len(mr.Errors) < 8 {
			mr.Errors = append(mr.Errors, fmt.Sprintf(format, args...))
		}
	}
	before := m.metrics(ctx)
	status, body, err := m.supRequest(ctx, "GET", "/api/calls/live", nil)
	var live []struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Media bool   `json:"media"`
	}
	if err == nil && status == 200 {
		err = json.Unmarshal(body, &live)
	}
	var ids []string
	for _, c := range live {
		if c.Media && c.State == string(desk.CallAnswered) {
			ids = append(ids, c.ID)
		}
	}
	if len(ids) == 0 {
		fail("no answered media call among the live calls (HTTP %d, %v): %.200s", status, err, body)
		return mr
	}
	var answered, first, httpRT []time.Duration
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		mr.Tries++
		id := ids[i%len(ids)]
		for len(m.supCh) > 0 { // a stale answer from an earlier try
			<-m.supCh
		}
		t0 := time.Now()
		status, body, err := m.supRequest(ctx, "POST", "/api/calls/"+id+"/monitor", map[string]string{"mode": "listen"})
		rt := time.Since(t0)
		if err != nil || status != http.StatusAccepted {
			fail("POST monitor %s: HTTP %d %v: %.200s", id, status, err, body)
			continue
		}
		httpRT = append(httpRT, rt)
		var a supAnswer
		select {
		case a = <-m.supCh:
		case <-time.After(10 * time.Second):
			fail("monitor %s: the supervisor's phone was not rung within 10 s", id)
			m.supRequest(ctx, "DELETE", "/api/calls/"+id+"/monitor", nil)
			continue
		}
		answered = append(answered, a.at.Sub(t0))
		select {
		case <-a.s.first:
			first = append(first, a.s.firstPacket().Sub(t0))
			mr.Joined++
		case <-a.ended:
			fail("monitor %s: the leg ended before any RTP", id)
		case <-time.After(5 * time.Second):
			fail("monitor %s: no RTP on the supervisor's phone within 5 s of his answer", id)
		}
		if status, body, err := m.supRequest(ctx, "DELETE", "/api/calls/"+id+"/monitor", nil); err != nil || status != http.StatusNoContent {
			fail("DELETE monitor %s: HTTP %d %v: %.200s", id, status, err, body)
		}
		select {
		case <-a.ended:
		case <-time.After(5 * time.Second):
			fail("monitor %s: the supervisor's leg was not hung up within 5 s of DELETE", id)
		}
	}
	mr.Answered, mr.FirstRTP, mr.HTTP = distOf(answered), distOf(first), distOf(httpRT)
	// The bridge observes a setup once the leg is mixed in, just after the answer.
	time.Sleep(200 * time.Millisecond)
	after := m.metrics(ctx)
	const h = "desk_bridge_monitor_setup_seconds"
	count := after.family(h+"_count") - before.family(h+"_count")
	mr.HistCount = int(math.Round(count))
	if count > 0 {
		mr.HistMeanMS = 1000 * (after.family(h+"_sum") - before.family(h+"_sum")) / count
		type bucket struct{ le, n float64 }
		var bs []bucket
		for k, v := range after {
			rest, ok := strings.CutPrefix(k, h+`_bucket{le="`)
			if !ok {
				continue
			}
			le, err := strconv.ParseFloat(strings.TrimSuffix(rest, `"}`), 64)
			if err != nil {
				continue // +Inf
			}
			bs = append(bs, bucket{le, v - before[k]})
		}
		slices.SortFunc(bs, func(a, b bucket) int { return int(math.Copysign(1, a.le-b.le)) })
		for _, bk := range bs {
			if bk.n >= 0.95*count {
				mr.HistP95LE = 1000 * bk.le
				break
			}
		}
	}
	return mr
}

// metricsSnap is one reading of a node's /metrics: sample line → value.
type metricsSnap map[string]float64

func (m *mediaRig) metrics(ctx context.Context) metricsSnap {
	body, err := httpGet(ctx, m.node.web+"/metrics")
	snap := metricsSnap{}
	if err != nil {
		return snap
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			snap[line[:i]] = v
		}
	}
	return snap
}

// family sums every sample of a metric family.
func (s metricsSnap) family(name string) float64 {
	var sum float64
	for k, v := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			sum += v
		}
	}
	return sum
}

// hostCPU is the CPU time all of the host's processors have spent busy, from
// /proc/stat; 0 when unknown.
func hostCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// udpRcvbufErrors is the host's count of UDP datagrams dropped for a full receive
// buffer (/proc/net/snmp), -1 when unknown.
func udpRcvbufErrors() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return -1
	}
	var head []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i, h := range head {
			if h == "RcvbufErrors" && i < len(f) {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				return n
			}
		}
	}
	return -1
}

// supRequest sends the supervisor's request to the media node, as his page does.
func (m *mediaRig) supRequest(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.node.web+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if method != "GET" {
		req.Header.Set("Content-Type", "application/json") // as the page sends, body or not
	}
	req.Header.Set("Origin", m.node.web)
	req.AddCookie(&http.Cookie{Name: httpapi.CookieName, Value: m.b.session(mediaSup)})
	resp, err := m.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(resp.Body)
	return resp.StatusCode, msg, err
}

// write prints the media rows of the table.
func (mr *mediaResult) write(tw io.Writer) {
	if mr == nil {
		return
	}
	pct := func(f float64) string { return strconv.FormatFloat(100*f, 'f', 2, 64) + "%" }
	for _, s := range mr.Steps {
		name := "media step"
		if s.Monitors > 0 {
			name = "media step, supervisors"
		}
		verdict := "clean"
		if !s.Clean {
			verdict = "NOT clean"
		}
		fmt.Fprintf(tw, "%s\t%d calls\t%d up, %d failed; peers got %d, lost %d, late %d (%s; steady %s); bridge got %d, lost %d, late %d (%s)\t%s; desk CPU %.2f ms per call-second, %.1f ms per call set-up+end+wrap-up; harness %.0f%%, others %.0f%% of a core\n",
			name, s.Calls, s.Answered, s.Failed, s.Peers.Received, s.Peers.Lost, s.Peers.Late, pct(s.PeerBad), pct(s.PeerSteadyBad),
			s.Bridge.Received, s.Bridge.Lost, s.Bridge.Late, pct(s.BridgeBad), verdict,
			s.CPUPerCallSecond, s.SetupCPUPerCall, s.HarnessCPUPct, s.OtherCPUPct)
	}
	ceiling := ""
	if mr.Ceiling {
		ceiling = " (every step tried was clean)"
	}
	fmt.Fprintf(tw, "media clean calls\t%d at once%s\tunder 1%% of packets lost or late both ways\tthe media node idle: %.1f ms CPU per second\n", mr.CleanCalls, ceiling, mr.IdleCPU)
	if m := mr.Monitor; m != nil {
		fmt.Fprintf(tw, "media supervisor setup\tp50 %.2f ms\tp95 %.2f ms, max %.2f ms\t%d of %d joined with %d calls up (request to first RTP); phone answered p50 %.2f ms; bridge histogram mean %.2f ms, 95%% under %.0f ms\n",
			m.FirstRTP.P50, m.FirstRTP.P95, m.FirstRTP.Max, m.Joined, m.Tries, m.Calls, m.Answered.P50, m.HistMeanMS, m.HistP95LE)
	}
}
