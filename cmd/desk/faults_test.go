package main

// The fault tests of issue 5: a Redis outage under load, a desk killed and
// restarted mid-call, a graceful drain, retransmitted SIP events and a dropped
// websocket. Each prints its figures on lines starting with "FIGURE ", on stdout,
// so they show in CI's output without -v.

import (
	"context"
	"encoding/json"

	"fmt"
	"net"

	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"

	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
)

// figure prints one figure line on stdout (seen by CI without -v) and in the log.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	fmt.Println("FIGURE " + fmt.Sprintf(format, args...))
}

// ---------------------------------------------------------------------------
// Helpers: resumable pages, an outbox-like client, sipp runs, the desk binary.

// tryDo is webClient.send with a network error as status 0, as the page's outbox sees it.
func (c *webClient) tryDo(method, path string, body any) (int, []byte) {
	status, data, _ := c.send(method, path, body)
	return status, data
}

// retryable is static/outbox.js's rule: the network, the server's own trouble, a
// timeout, a throttle and a lost session are retried; other 4xx never will succeed.
func retryable(status int) bool {
	return status == 0 || status == 401 || status == 408 || status == 429 || status >= 500
}

// outboxSend sends one request like the page's outbox: again and again on
// retryable failures (with a short backoff) until a final answer or the deadline.
// It returns the final status, the body and how many tries it took.
func (c *webClient) outboxSend(method, path string, body any, deadline time.Time) (int, []byte, int) {
	backoff := 100 * time.Millisecond
	for tries := 1; ; tries++ {
		code, data := c.tryDo(method, path, body)
		if !retryable(code) || time.Now().After(deadline) {
			return code, data, tries
		}
		time.Sleep(backoff)
		if backoff < time.Second {
			backoff *= 2
		}
	}
}

// outboxPending counts the ops queued in every pageOutbox.
var outboxPending atomic.Int64

// outboxOp is one answer op waiting in a pageOutbox.
type outboxOp struct {
	callID string
	body   map[string]any
	queued time.Time
	tries  int
}

// pageOutbox sends answer ops like static/outbox.js: one at a time, in order; a
// retryable failure stops the queue until a backoff (here 100 ms doubling to 1 s,
// the page's is 1 s to 30 s) or the next op pushed; a final answer removes the op.
type pageOutbox struct {
	c      *webClient
	onDone func(o *outboxOp, status int, body []byte)
	mu     sync.Mutex
	queue  []*outboxOp
	wake   chan struct{}
}

func newPageOutbox(c *webClient) *pageOutbox {
	return &pageOutbox{c: c, wake: make(chan struct{}, 1)}
}

func (b *pageOutbox) push(callID string, body map[string]any) {
	outboxPending.Add(1)
	b.mu.Lock()
	b.queue = append(b.queue, &outboxOp{callID: callID, body: body, queued: time.Now()})
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// run sends until deadline; ops still queued then are reported with status 0.
func (b *pageOutbox) run(deadline time.Time) {
	backoff := 100 * time.Millisecond
	for time.Now().Before(deadline) {
		b.mu.Lock()
		var o *outboxOp
		if len(b.queue) > 0 {
			o = b.queue[0]
		}
		b.mu.Unlock()
		if o == nil {
			select {
			case <-b.wake:
			case <-time.After(time.Until(deadline)):
			}
			continue
		}
		o.tries++
		code, body := b.c.tryDo("PUT", "/api/calls/"+o.callID+"/answers", o.body)
		if retryable(code) {
			select {
			case <-b.wake:
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		b.mu.Lock()
		b.queue = b.queue[1:]
		b.mu.Unlock()
		if b.onDone != nil {
			b.onDone(o, code, body)
		}
		outboxPending.Add(-1)
	}
	b.mu.Lock()
	left := b.queue
	b.queue = nil
	b.mu.Unlock()
	for _, o := range left {
		if b.onDone != nil {
			b.onDone(o, 0, nil)
		}
		outboxPending.Add(-1)
	}
}

// livePage is a page's websocket that can be dropped and resumed with
// ?since=SEQ&epoch=E like static/common.js does. It keeps every frame of every
// connection and calls onFrame for each.
type livePage struct {
	c       *webClient
	onFrame func(frame)

	mu     sync.Mutex
	frames []frame
	conn   *websocket.Conn
	epoch  string
	last   int64
	more   chan struct{}
}

func newLivePage(c *webClient, onFrame func(frame)) *livePage {
	p := &livePage{c: c, onFrame: onFrame, last: -1, more: make(chan struct{}, 1)}
	c.t.Cleanup(p.drop)
	return p
}

// connect opens the websocket, resuming from the last frame seen when there is one.
func (p *livePage) connect() error {
	p.mu.Lock()
	q := ""
	if p.epoch != "" && p.last >= 0 {
		q = "?since=" + strconv.FormatInt(p.last, 10) + "&epoch=" + url.QueryEscape(p.epoch)
	}
	p.mu.Unlock()
	u, _ := url.Parse(p.c.base + "/ws")
	h := http.Header{}
	var cookies []string
	for _, ck := range p.c.hc.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	h.Set("Cookie", strings.Join(cookies, "; "))
	h.Set("Origin", p.c.base)
	d := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	conn, resp, err := d.Dial(strings.Replace(p.c.base, "http", "ws", 1)+"/ws"+q, h)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("websocket: %w (HTTP %d)", err, resp.StatusCode)
		}
		return err
	}
	p.mu.Lock()
	p.conn = conn
	p.mu.Unlock()
	go func() {
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var head struct {
				Type  string `json:"type"`
				Seq   *int64 `json:"seq"`
				Epoch string `json:"epoch"`
			}
			json.Unmarshal(msg, &head)
			f := frame{At: time.Now(), Type: head.Type, Raw: msg}
			p.mu.Lock()
			if p.conn != conn { // dropped: what still arrives on it is not the page's
				p.mu.Unlock()
				return
			}
			p.frames = append(p.frames, f)
			if head.Seq != nil {
				p.last = *head.Seq
			}
			if head.Type == "snapshot" {
				p.epoch = head.Epoch
			}
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
			if p.onFrame != nil {
				p.onFrame(f)
			}
		}
	}()
	return nil
}

// drop closes the websocket as a lost connection would.
func (p *livePage) drop() {
	p.mu.Lock()
	conn := p.conn
	p.conn = nil
	p.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

func (p *livePage) all() []frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]frame(nil), p.frames...)
}

func (p *livePage) position() (string, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epoch, p.last
}

// waitFor returns the first frame for which match is true, waiting up to d.
func (p *livePage) waitFor(t *testing.T, what string, d time.Duration, match func(frame) bool) frame {
	t.Helper()
	deadline := time.After(d)
	for {
		for _, f := range p.all() {
			if match(f) {
				return f
			}
		}
		select {
		case <-p.more:
		case <-deadline:
			var types []string
			for _, f := range p.all() {
				types = append(types, f.Type)
			}
			t.Fatalf("no %s frame within %v; got %s", what, d, strings.Join(types, ","))
		}
	}
}

func ofType(typ string) func(frame) bool { return func(f frame) bool { return f.Type == typ } }

func ofCall(typ, callID string) func(frame) bool {
	return func(f frame) bool { return f.Type == typ && str(jsonGet(f.Raw, "call", "id")) == callID }
}

func seqOf(f frame) int64 {
	var h struct {
		Seq int64 `json:"seq"`
	}
	json.Unmarshal(f.Raw, &h)
	return h.Seq
}

// run is sipp with an overall timeout of its own (harness' command has 20 s).
func (s *sipp) run(ctx context.Context, timeout time.Duration, args ...string) *exec.Cmd {
	base := []string{"-i", "127.0.0.1", "-nostdin", "-timeout", strconv.Itoa(int(timeout.Seconds())), "-timeout_error"}
	cmd := exec.CommandContext(ctx, "sipp", append(base, args...)...)
	cmd.Dir = s.dir
	return cmd
}

// sippStats reads the last line of sipp's -trace_stat file into name → value.
func sippStats(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("sipp stats: %v", err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) < 2 {
		t.Fatalf("sipp stats %s: %q", path, b)
	}
	head, last := strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";")
	out := map[string]string{}
	for i, h := range head {
		if i < len(last) {
			out[strings.TrimSpace(h)] = strings.TrimSpace(last[i])
		}
	}
	return out
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// deskProcess is the desk binary run as a process, so it can be killed.
type deskProcess struct {
	t    *testing.T
	bin  string
	env  []string
	cmd  *exec.Cmd
	out  *syncBuffer
	exit chan error
	Base string
	SIP  string
}

// buildDesk builds the desk binary into a temporary directory.
func buildDesk(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "desk")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// newDeskProcess prepares the binary on fixed free ports, with a private Redis.
func newDeskProcess(t *testing.T, bin, redisAddr string, extra map[string]string) *deskProcess {
	httpPort, sipPort := freePort(t), freePort(t)
	vars := map[string]string{
		"DESK_HTTP_ADDR":     "127.0.0.1:" + strconv.Itoa(httpPort),
		"DESK_SIP_ADDR":      "127.0.0.1:" + strconv.Itoa(sipPort),
		"DESK_SIP_DOMAIN":    "127.0.0.1",
		"DESK_REGION":        "RU",
		"DESK_SCRIPTS":       mustAbs(t, "../../scripts"),
		"DESK_REDIS_URL":     "redis://" + redisAddr + "/0",
		"DESK_ADMIN":         "admin:Adm1n-pass",
		"DESK_DRAIN_TIMEOUT": "2s",
	}
	for k, v := range extra {
		vars[k] = v
	}
	d := &deskProcess{t: t, bin: bin,
		Base: "http://127.0.0.1:" + strconv.Itoa(httpPort), SIP: "127.0.0.1:" + strconv.Itoa(sipPort)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DESK_") {
			d.env = append(d.env, kv)
		}
	}
	for k, v := range vars {
		d.env = append(d.env, k+"="+v)
	}
	t.Cleanup(func() { d.kill() })
	return d
}

// start runs the binary and waits until it printed its addresses.
func (d *deskProcess) start() {
	d.t.Helper()
	d.out = &syncBuffer{}
	d.cmd = exec.Command(d.bin)
	d.cmd.Env = d.env
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.exit = make(chan error, 1)
	go func(cmd *exec.Cmd, exit chan error) { exit <- cmd.Wait() }(d.cmd, d.exit)
	deadline := time.Now().Add(15 * time.Second)
	for !webLine.MatchString(d.out.String()) || !sipLine.MatchString(d.out.String()) {
		if time.Now().After(deadline) {
			d.t.Fatalf("the desk did not start:\n%s", d.out.String())
		}
		select {
		case err := <-d.exit:
			d.t.Fatalf("the desk exited at start: %v\n%s", err, d.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL and waits for the process.
func (d *deskProcess) kill() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exit
	d.cmd = nil
}

// testDesk is the running process as harness helpers want it.
func (d *deskProcess) testDesk() *testDesk {
	return &testDesk{Base: d.Base, SIPAddr: d.SIP, Out: d.out}
}

// setupOperator creates an operator (as admin) and logs a web client in as him.
func setupOperator(t *testing.T, admin *webClient, base, login string) *webClient {
	t.Helper()
	admin.mustDo("POST", "/api/users", map[string]string{"login": login, "name": "Operator " + login,
		"role": "operator", "password": login + "-Web-pass1", "sip_password": login + "-sip"}, nil)
	op := newWebClient(t, base)
	op.login(login, login+"-Web-pass1")
	return op
}

// startPhone runs a sipp phone (uas.xml) answering up to calls calls after ringing ring.
func startPhone(ctx context.Context, t *testing.T, s *sipp, port string, calls int, ring time.Duration, timeout time.Duration) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := s.run(ctx, timeout, "-sf", mustAbs(t, "testdata/sipp/uas.xml"), "-p", port,
		"-m", strconv.Itoa(calls), "-d", strconv.Itoa(int(ring.Milliseconds())))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// processDesk is the desk binary running as its own process on a private Redis,
// with operator ivan's page connected and his sipp phone registered and waiting to
// answer one call: what the restart and drain tests start from.
type processDesk struct {
	d        *deskProcess
	op       *webClient
	page     *livePage
	s        *sipp
	phone    *exec.Cmd
	phoneOut *syncBuffer
}

func startDeskProcessWithPhone(ctx context.Context, t *testing.T, env map[string]string) *processDesk {
	t.Helper()
	rs := redistest.StartServer(t)
	p := &processDesk{d: newDeskProcess(t, buildDesk(t), rs.Addr, env)}
	p.d.start()
	admin := newWebClient(t, p.d.Base)
	admin.login("admin", "Adm1n-pass")
	p.op = setupOperator(t, admin, p.d.Base, "ivan")
	p.page = newLivePage(p.op, nil)
	if err := p.page.connect(); err != nil {
		t.Fatal(err)
	}
	p.page.waitFor(t, "snapshot", 5*time.Second, ofType("snapshot"))
	p.s = newSipp(t)
	phonePort := strconv.Itoa(freePort(t))
	p.s.register(ctx, p.d.testDesk(), "ivan", "ivan-sip", phonePort, "u1", "600")
	p.phone, p.phoneOut = startPhone(ctx, t, p.s, phonePort, 1, 100*time.Millisecond, 30*time.Second)
	return p
}

// ---------------------------------------------------------------------------
// 1. Redis outage under load.

// TestRedisOutageUnderLoad stops Redis for 30 s in the middle of a 20 calls/s load
// on eight operators whose pages and phones answer every call: the desk must fail no
// call, pop the calls of the outage with lookup "unavailable", report the outage on
// /readyz, and store after recovery every answer the pages typed during it.
//
// The operators behave like people on the desk: each page answers the "source"
// question of every call it talked on, through an outbox that retries like
// static/outbox.js, and closes the wrap-up when the call ended (the desk holds an
// operator off calls until he does). Redis is stopped with SHUTDOWN SAVE and
// started again on the same file, as a Redis with persistence comes back.
func TestRedisOutageUnderLoad(t *testing.T) {
	const (
		// Eight, not five: at 20 calls/s each of five operators gets a call every
		// 250 ms, and a call holds him for its ring, its 100 ms hold, the SIP round
		// trips and, before the outage, his wrap-up (a websocket frame and two HTTP
		// requests from his page). Under -race on two busy cores that cycle reaches
		// 250 ms and calls got 480 with all five legitimately busy, outage or not.
		operators = 8
		rate      = 20 // calls per second
		before    = 5 * time.Second
		outage    = 30 * time.Second
		after     = 5 * time.Second
		ring      = 20 * time.Millisecond
		hold      = 100 * time.Millisecond
	)
	total := int((before + outage + after).Seconds()) * rate

	d, admin, rs := startDeskAsAdmin(t, nil)
	// The callers are 100 known contacts, so the wrap-up needs only a source and an
	// outcome, and no one contact's history takes every call.
	var callerLines strings.Builder
	callerLines.WriteString("SEQUENTIAL\n")
	for i := range 100 {
		number := fmt.Sprintf("+7916001%04d", i)
		admin.mustDo("POST", "/api/contacts", map[string]any{"name": fmt.Sprintf("Caller %d", i), "company": "Load LLC",
			"phones": []string{number}}, nil)
		fmt.Fprintf(&callerLines, "%s;Caller %d;\n", number, i)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	s := newSipp(t)

	var outageFrom, outageTo atomic.Int64 // unix nanos, set when Redis stops and is back
	inOutage := func(at time.Time) bool {
		from, to := outageFrom.Load(), outageTo.Load()
		return from != 0 && at.UnixNano() >= from && (to == 0 || at.UnixNano() < to)
	}

	type sent struct {
		callID, op string
		first      time.Time // first try
		status     int       // final status
		tries      int
	}
	var (
		sentMu    sync.Mutex
		answers   []sent
		wrapFails []string
		work      atomic.Int64 // outbox sends under way
	)
	stopWork := time.Now().Add(90 * time.Second)

	pages := make([]*livePage, operators)
	for i := range operators {
		login := fmt.Sprintf("op%d", i+1)
		op := setupOperator(t, admin, d.Base, login)
		// The operator answers the source question once the call is answered, through
		// an outbox like the page's; once it is stored he closes the wrap-up (before
		// the caller hangs up, as the desk allows: he is free again as soon as the
		// call ends).
		box := newPageOutbox(op)
		box.onDone = func(o *outboxOp, status int, _ []byte) {
			sentMu.Lock()
			answers = append(answers, sent{callID: o.callID, op: login, first: o.queued, status: status, tries: o.tries})
			sentMu.Unlock()
			if status != 200 {
				return
			}
			work.Add(1)
			go func() {
				defer work.Add(-1)
				code, body, _ := op.outboxSend("POST", "/api/calls/"+o.callID+"/wrapup",
					map[string]string{"outcome": "not_prospective"}, stopWork)
				if code != 200 {
					sentMu.Lock()
					wrapFails = append(wrapFails, fmt.Sprintf("%s %s: HTTP %d %s", login, o.callID, code, body))
					sentMu.Unlock()
				}
			}()
		}
		go box.run(stopWork)
		onFrame := func(f frame) {
			if f.Type != desk.EventCallAnswered {
				return
			}
			id := str(jsonGet(f.Raw, "call", "id"))
			box.push(id, map[string]any{"op": "src-" + id, "step": "source", "fields": map[string]string{"source": "exhibition"}})
		}
		pages[i] = newLivePage(op, onFrame)
		if err := pages[i].connect(); err != nil {
			t.Fatal(err)
		}
		pages[i].waitFor(t, "snapshot", 5*time.Second, ofType("snapshot"))
		port := strconv.Itoa(freePort(t))
		s.register(ctx, d, login, login+"-sip", port, "u1", "600")
		startPhone(ctx, t, s, port, 100000, ring, 95*time.Second)
	}
	time.Sleep(300 * time.Millisecond) // the phones bind their ports

	// /readyz, four times a second, for the whole run.
	type probe struct {
		at   time.Time
		code int
	}
	var (
		probes  []probe
		probeMu sync.Mutex
	)
	probeCtx, stopProbes := context.WithCancel(ctx)
	probesDone := make(chan struct{})
	go func() {
		defer close(probesDone)
		hc := &http.Client{Timeout: 3 * time.Second}
		for probeCtx.Err() == nil {
			code := 0
			if resp, err := hc.Get(d.Base + "/readyz"); err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
			probeMu.Lock()
			probes = append(probes, probe{time.Now(), code})
			probeMu.Unlock()
			select {
			case <-probeCtx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()

	callers := s.file("load_callers.csv", callerLines.String())
	statFile := filepath.Join(s.dir, "uac_stat.csv")
	errFile, msgFile := filepath.Join(s.dir, "uac_errors.log"), filepath.Join(s.dir, "uac_msgs.csv")
	uac := s.run(ctx, before+outage+after+30*time.Second, "-sf", mustAbs(t, "testdata/sipp/uac.xml"), "-inf", callers,
		d.SIPAddr, "-s", "sales", "-p", strconv.Itoa(freePort(t)), "-r", strconv.Itoa(rate), "-l", "60",
		"-m", strconv.Itoa(total), "-d", strconv.Itoa(int(hold.Milliseconds())),
		"-trace_stat", "-stf", statFile, "-fd", "1",
		"-trace_err", "-error_file", errFile, "-trace_shortmsg", "-shortmessage_file", msgFile)
	uacOut := &syncBuffer{}
	uac.Stdout, uac.Stderr = uacOut, uacOut
	loadStart := time.Now()
	if err := uac.Start(); err != nil {
		t.Fatal(err)
	}
	uacDone := make(chan error, 1)
	go func() { uacDone <- uac.Wait() }()

	// The outage: SHUTDOWN SAVE, then the same server started again 30 s later.
	time.Sleep(before)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	outageFrom.Store(time.Now().UnixNano())
	rdb.ShutdownSave(ctx) // its error is the connection closing
	rdb.Close()
	rs.Stop()
	time.Sleep(outage)
	if err := rs.Start(); err != nil {
		t.Fatalf("redis did not start again: %v", err)
	}
	outageTo.Store(time.Now().UnixNano())
	recovered := time.Now()

	uacErr := <-uacDone
	loadTime := time.Since(loadStart)
	stats := sippStats(t, statFile)
	attempted, succeeded, failed := atoi(stats["TotalCallCreated"]), atoi(stats["SuccessfulCall(C)"]), atoi(stats["FailedCall(C)"])

	// The outboxes drain after recovery.
	for quiet := 0; quiet < 5; time.Sleep(100 * time.Millisecond) { // 0.5 s without anything under way
		if work.Load() > 0 || outboxPending.Load() > 0 {
			quiet = 0
		} else {
			quiet++
		}
		if time.Now().After(stopWork.Add(5 * time.Second)) {
			t.Errorf("the pages' outboxes did not drain")
			break
		}
	}
	drained := time.Since(recovered)
	time.Sleep(time.Second) // a last /readyz after recovery
	stopProbes()
	<-probesDone

	// Pops: during the outage every one says the lookup is unavailable.
	var pops, popsOutage, popsUnavailable, popsUnavailableAfter int
	for _, p := range pages {
		for _, f := range p.all() {
			if f.Type != desk.EventCallRinging {
				continue
			}
			pops++
			unavailable := str(jsonGet(f.Raw, "lookup")) == "unavailable"
			switch {
			case inOutage(f.At.Add(-200 * time.Millisecond)): // a pop just before the stop may arrive late
				popsOutage++
				if unavailable {
					popsUnavailable++
				}
			case f.At.After(recovered.Add(7 * time.Second)):
				if unavailable {
					popsUnavailableAfter++
				}
			}
		}
	}

	// /readyz: 503 all through the outage (after a second to notice), 200 after.
	var readyOutage, ready503, readyAfter, ready200After int
	probeMu.Lock()
	for _, p := range probes {
		switch {
		case p.at.After(time.Unix(0, outageFrom.Load()).Add(time.Second)) && p.at.Before(recovered):
			readyOutage++
			if p.code == 503 {
				ready503++
			}
		case p.at.After(recovered.Add(time.Second)):
			readyAfter++
			if p.code == 200 {
				ready200After++
			}
		}
	}
	probeMu.Unlock()

	// Answers typed during the outage, counted in the records after recovery.
	sentMu.Lock()
	all := append([]sent(nil), answers...)
	fails := append([]string(nil), wrapFails...)
	sentMu.Unlock()
	var typed, stored, lostAnswers int
	for _, a := range all {
		if !inOutage(a.first) {
			if a.status != 200 {
				t.Errorf("answer of %s (outside the outage) ended with HTTP %d", a.callID, a.status)
			}
			continue
		}
		typed++
		code, body := admin.tryDo("GET", "/api/calls/"+a.callID+"/record", nil)
		if code == 200 && str(jsonGet(body, "answers", "source")) == "exhibition" {
			stored++
		} else {
			lostAnswers++
			if lostAnswers <= 5 {
				t.Errorf("answer typed during the outage for call %s (%s, final HTTP %d after %d tries) is not stored: HTTP %d %s",
					a.callID, a.op, a.status, a.tries, code, body)
			}
		}
	}

	// Every call sipp completed is stored once, ended.
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rc.Close()
	store := redisstore.New(rc, redisstore.WithPrefix(keyPrefix))
	calls, err := store.CallsBetween(ctx, loadStart.Add(-time.Second), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var storedEnded int
	for _, c := range calls {
		if c.State == desk.CallEnded {
			storedEnded++
		}
	}

	figure(t, "redis-outage: outage=%v load=%v rate=%d/s operators=%d calls_attempted=%d calls_succeeded=%d calls_failed=%d",
		outage, loadTime.Round(time.Second), rate, operators, attempted, succeeded, failed)
	figure(t, "redis-outage: pops=%d pops_during_outage=%d pops_lookup_unavailable=%d pops_unavailable_after_recovery=%d",
		pops, popsOutage, popsUnavailable, popsUnavailableAfter)
	figure(t, "redis-outage: readyz_during_outage=%d/%d_503 readyz_after=%d/%d_200",
		ready503, readyOutage, ready200After, readyAfter)
	figure(t, "redis-outage: answers_typed_during_outage=%d stored_after_recovery=%d answers_lost=%d outbox_drained_in=%v calls_stored_ended=%d wrapups_failed=%d",
		typed, stored, lostAnswers, drained.Round(100*time.Millisecond), storedEnded, len(fails))

	if uacErr != nil || failed != 0 || attempted != total || succeeded != total {
		tail := uacOut.String()
		if len(tail) > 3000 {
			tail = tail[len(tail)-3000:]
		}
		t.Errorf("sipp: %v; %d attempted, %d succeeded, %d failed, want %d, 0 failed\n%s", uacErr, attempted, succeeded, failed, total, tail)
		// Why: each unfinished call's last response, and when it started relative to the outage.
		for _, fc := range unfinishedCalls(msgFile) {
			phase := outagePhase(fc.first, time.Unix(0, outageFrom.Load()), recovered)
			t.Errorf("failed call %s (the desk's log names it as sip_call_id): first INVITE %s (%s), last response %q at +%v, %d INVITEs sent",
				fc.callID, fc.first.Format("15:04:05.000"), phase, fc.last, fc.lastAt.Sub(fc.first).Round(time.Millisecond), fc.invites)
		}
		if b, err := os.ReadFile(errFile); err == nil && len(b) > 0 {
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			t.Errorf("sipp unexpected messages:\n%s", b)
		}
	}
	if popsOutage == 0 || popsUnavailable != popsOutage {
		t.Errorf("pops during the outage: %d, with lookup unavailable %d; want all, and some", popsOutage, popsUnavailable)
	}
	// Every completed call popped (more pops only when a call hunted on): none is
	// lost when the hub goes back from its local epoch to Redis.
	if pops < succeeded {
		t.Errorf("%d pops for %d completed calls: pops were lost", pops, succeeded)
	}
	if popsUnavailableAfter != 0 {
		t.Errorf("%d pops say the lookup is unavailable well after recovery", popsUnavailableAfter)
	}
	if readyOutage == 0 || ready503 != readyOutage || readyAfter == 0 || ready200After != readyAfter {
		t.Errorf("/readyz: %d/%d 503 during the outage, %d/%d 200 after", ready503, readyOutage, ready200After, readyAfter)
	}
	if typed == 0 || lostAnswers != 0 {
		t.Errorf("answers typed during the outage: %d, lost %d", typed, lostAnswers)
	}
	if storedEnded != succeeded {
		t.Errorf("%d calls stored as ended, sipp completed %d", storedEnded, succeeded)
	}
	for i, f := range fails {
		if i < 5 {
			t.Errorf("wrap-up failed: %s", f)
		}
	}
}

// sippCall is one call of a sipp -trace_shortmsg file.
type sippCall struct {
	callID        string
	first, lastAt time.Time
	last          string // the last response received, "" when none
	invites       int
	ok            bool // its BYE was answered 200
}

// unfinishedCalls reads sipp's short message trace (date, time, unix time,
// direction, Call-ID, CSeq, first line; tab-separated) and returns the calls
// whose BYE was not answered 200.
func unfinishedCalls(path string) []sippCall {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	calls := map[string]*sippCall{}
	var order []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, "\t")
		if len(f) < 7 {
			continue
		}
		sec, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		dir, id, cseq, line := f[3], f[4], strings.TrimPrefix(f[5], "CSeq:"), f[6]
		c := calls[id]
		if c == nil {
			c = &sippCall{callID: id, first: at}
			calls[id] = c
			order = append(order, id)
		}
		switch {
		case dir == "S" && strings.HasPrefix(line, "INVITE"):
			c.invites++
		case dir == "R" && strings.HasPrefix(line, "SIP/2.0"):
			c.last, c.lastAt = cseq+" "+line, at
			if strings.HasSuffix(cseq, "BYE") && strings.HasPrefix(line, "SIP/2.0 200") {
				c.ok = true
			}
		}
	}
	var out []sippCall
	for _, id := range order {
		if !calls[id].ok {
			out = append(out, *calls[id])
		}
	}
	return out
}

// outagePhase names when at falls relative to an outage from..to.
func outagePhase(at, from, to time.Time) string {
	switch {
	case at.Before(from.Add(-time.Second)):
		return fmt.Sprintf("before the outage, %v before it", from.Sub(at).Round(time.Millisecond))
	case at.Before(from.Add(time.Second)):
		return fmt.Sprintf("at its start, %+v", at.Sub(from).Round(time.Millisecond))
	case at.Before(to.Add(-time.Second)):
		return fmt.Sprintf("during it, %v in", at.Sub(from).Round(time.Millisecond))
	case at.Before(to.Add(time.Second)):
		return fmt.Sprintf("at recovery, %+v", at.Sub(to).Round(time.Millisecond))
	default:
		return fmt.Sprintf("after recovery, %v after", at.Sub(to).Round(time.Millisecond))
	}
}

// ---------------------------------------------------------------------------
// 2. Desk restart.

// TestDeskRestartKeepsCalls kills the desk (SIGKILL) while a call is answered but
// not yet ACKed, and starts it again on the same ports: the caller's late ACK and
// its BYE must still reach the phone through the new process (both sipp scenarios
// finish), the operator's page must reconnect with since/epoch and get the call's
// end with no frame missing, and the answers sent before the kill must be kept.
func TestDeskRestartKeepsCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := startDeskProcessWithPhone(ctx, t, nil)
	d, op, page, s, phone, phoneOut := p.d, p.op, p.page, p.s, p.phone, p.phoneOut
	time.Sleep(200 * time.Millisecond)

	const ackDelay, hold = 2500 * time.Millisecond, 2 * time.Second
	scen := s.scenario("uac_late_ack.xml", map[string]string{"ACK_DELAY": strconv.Itoa(int(ackDelay.Milliseconds()))})
	callers := s.file("restart_callers.csv", "SEQUENTIAL\n+79160000200;Restart Caller;\n")
	uac := s.run(ctx, 30*time.Second, "-sf", scen, "-inf", callers, d.SIP, "-s", "sales",
		"-p", strconv.Itoa(freePort(t)), "-m", "1", "-d", strconv.Itoa(int(hold.Milliseconds())))
	uacOut := &syncBuffer{}
	uac.Stdout, uac.Stderr = uacOut, uacOut
	if err := uac.Start(); err != nil {
		t.Fatal(err)
	}
	uacDone := make(chan error, 1)
	go func() { uacDone <- uac.Wait() }()

	answered := page.waitFor(t, "call.answered", 5*time.Second, ofType(desk.EventCallAnswered))
	callID := str(jsonGet(answered.Raw, "call", "id"))
	for i, a := range []struct {
		step   string
		fields map[string]string
	}{
		{"contact", map[string]string{"name": "Restart Caller", "company": "Restart LLC"}},
		{"source", map[string]string{"source": "web_search"}},
	} {
		if code, body := op.tryDo("PUT", "/api/calls/"+callID+"/answers", map[string]any{"op": fmt.Sprintf("before-kill-%d", i),
			"step": a.step, "fields": a.fields}); code != 200 {
			t.Fatalf("answer before the kill: HTTP %d %s", code, body)
		}
	}
	page.waitFor(t, "2 script.progress", 3*time.Second, func(f frame) bool {
		n := 0
		for _, g := range page.all() {
			if g.Type == desk.EventScriptProgress {
				n++
			}
		}
		return n >= 2
	})
	_, lastBefore := page.position()

	// SIGKILL, then the same binary on the same ports.
	killed := time.Now()
	d.kill()
	page.drop() // the page notices its socket died
	restarted := time.Now()
	d.start()
	up := time.Since(restarted)
	var resynced time.Time
	for time.Since(restarted) < 10*time.Second {
		if err := page.connect(); err == nil {
			resynced = time.Now()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resynced.IsZero() {
		t.Fatalf("the page could not reconnect within 10 s of the restart")
	}
	resync := resynced.Sub(restarted)

	// The late ACK and the BYE go through the new process.
	var hung int
	select {
	case err := <-uacDone:
		if err != nil {
			hung++
			t.Errorf("the caller's sipp failed: %v\n%s", err, uacOut.String())
		}
	case <-time.After(20 * time.Second):
		hung++
		t.Errorf("the caller's sipp did not finish\n%s", uacOut.String())
	}
	if err := phone.Wait(); err != nil {
		hung++
		t.Errorf("the phone's sipp failed (ACK or BYE not routed after the restart): %v\n%s\ndesk:\n%s", err, phoneOut.String(), d.out.String())
	}

	ended := page.waitFor(t, "call.ended", 5*time.Second, ofCall(desk.EventCallEnded, callID))
	var missed int
	var snapshots int
	expect := lastBefore
	for _, f := range page.all() {
		if seqOf(f) <= lastBefore {
			continue
		}
		if f.Type == "snapshot" {
			snapshots++
			continue
		}
		if seqOf(f) != expect+1 {
			missed += int(seqOf(f) - expect - 1)
		}
		expect = seqOf(f)
	}
	var rec struct {
		Answers map[string]string `json:"answers"`
	}
	op.mustDo("GET", "/api/calls/"+callID+"/record", nil, &rec)
	var lost int
	for k, want := range map[string]string{"contact.name": "Restart Caller", "contact.company": "Restart LLC", "source": "web_search"} {
		if rec.Answers[k] != want {
			lost++
			t.Errorf("answer %s after the restart = %q, want %q", k, rec.Answers[k], want)
		}
	}
	figure(t, "desk-restart: calls_hung=%d desk_up_in=%v page_resync_in=%v frames_missed=%d resync_snapshots=%d answers_lost=%d ended_frame_after_kill=%v",
		hung, up.Round(time.Millisecond), resync.Round(time.Millisecond), missed, snapshots, lost, ended.At.Sub(killed).Round(time.Millisecond))
	if resync > 3*time.Second {
		t.Errorf("the page resynced %v after the restart began, want within 3 s", resync)
	}
	if missed != 0 || snapshots != 0 {
		t.Errorf("after the restart the page missed %d frames and got %d snapshots", missed, snapshots)
	}
}

// ---------------------------------------------------------------------------
// 3. Graceful drain.

// TestDrainOnSIGTERM sends SIGTERM to the desk during a call: a new INVITE gets 503
// with Retry-After, the live call ends normally (its BYE routed), and the process
// exits once it ended, well before the drain timeout.
func TestDrainOnSIGTERM(t *testing.T) {
	const drainTimeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := startDeskProcessWithPhone(ctx, t, map[string]string{"DESK_DRAIN_TIMEOUT": drainTimeout.String()})
	d, page, s, phone, phoneOut := p.d, p.page, p.s, p.phone, p.phoneOut
	time.Sleep(200 * time.Millisecond)
	const hold = 3 * time.Second
	callers := s.file("drain_callers.csv", "SEQUENTIAL\n+79160000300;Drain Caller;\n")
	uac := s.run(ctx, 30*time.Second, "-sf", mustAbs(t, "testdata/sipp/uac.xml"), "-inf", callers, d.SIP, "-s", "sales",
		"-p", strconv.Itoa(freePort(t)), "-m", "1", "-d", strconv.Itoa(int(hold.Milliseconds())))
	uacOut := &syncBuffer{}
	uac.Stdout, uac.Stderr = uacOut, uacOut
	if err := uac.Start(); err != nil {
		t.Fatal(err)
	}
	uacDone := make(chan error, 1)
	go func() { uacDone <- uac.Wait() }()
	page.waitFor(t, "call.answered", 5*time.Second, ofType(desk.EventCallAnswered))

	sigterm := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)

	// A new call is refused with 503 and Retry-After.
	status, retryAfter := rawCallStatus(t, d.SIP, "+79160000301")

	var callEnd time.Time
	select {
	case err := <-uacDone:
		callEnd = time.Now()
		if err != nil {
			t.Errorf("the live call did not complete during the drain: %v\n%s", err, uacOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the live call's sipp did not finish\n%s", uacOut.String())
	}
	if err := phone.Wait(); err != nil {
		t.Errorf("the phone's sipp failed during the drain: %v\n%s", err, phoneOut.String())
	}
	var exitErr error
	select {
	case exitErr = <-d.exit:
	case <-time.After(drainTimeout + 5*time.Second):
		t.Fatalf("the desk did not exit within the drain timeout + 5 s\n%s", d.out.String())
	}
	exited := time.Now()
	d.cmd = nil
	figure(t, "drain: new_invite_status=%d retry_after=%q live_call_completed=%v exit_after_call_end=%v exit_after_sigterm=%v drain_timeout=%v exit=%v",
		status, retryAfter, !callEnd.IsZero(), exited.Sub(callEnd).Round(time.Millisecond), exited.Sub(sigterm).Round(time.Millisecond), drainTimeout, exitErr)
	if status != 503 || retryAfter == "" {
		t.Errorf("a new INVITE during the drain got %d (Retry-After %q), want 503 with Retry-After", status, retryAfter)
	}
	if exitErr != nil {
		t.Errorf("the desk exited with %v", exitErr)
	}
	if exited.Sub(callEnd) > 2*time.Second {
		t.Errorf("the desk exited %v after the last call ended, want promptly", exited.Sub(callEnd))
	}
	if exited.Sub(sigterm) < hold/2 {
		t.Errorf("the desk exited %v after SIGTERM, before its live call ended", exited.Sub(sigterm))
	}
}

// ---------------------------------------------------------------------------
// Raw SIP over UDP, for messages sipp will not send (the same INVITE three times,
// a 200 OK resent before any ACK).

type sipMsg struct {
	start   string
	headers [][2]string // in order
	body    string
}

func parseSIP(b []byte) *sipMsg {
	text := string(b)
	head, body, _ := strings.Cut(text, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	m := &sipMsg{start: lines[0], body: body}
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m.headers = append(m.headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return m
}

func (m *sipMsg) all(name string) []string {
	var out []string
	for _, h := range m.headers {
		if strings.EqualFold(h[0], name) {
			out = append(out, h[1])
		}
	}
	return out
}

func (m *sipMsg) get(name string) string {
	if v := m.all(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (m *sipMsg) status() int {
	if !strings.HasPrefix(m.start, "SIP/2.0 ") {
		return 0
	}
	n, _ := strconv.Atoi(strings.Fields(m.start)[1])
	return n
}

func (m *sipMsg) method() string {
	if m.status() != 0 {
		return ""
	}
	return strings.Fields(m.start)[0]
}

// response builds a response to the request m, with extra headers after the copies.
func (m *sipMsg) response(code int, reason, toTag string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, v := range m.all("Via") {
		fmt.Fprintf(&b, "Via: %s\r\n", v)
	}
	for _, v := range m.all("Record-Route") {
		fmt.Fprintf(&b, "Record-Route: %s\r\n", v)
	}
	fmt.Fprintf(&b, "From: %s\r\n", m.get("From"))
	to := m.get("To")
	if toTag != "" && !strings.Contains(to, "tag=") {
		to += ";tag=" + toTag
	}
	fmt.Fprintf(&b, "To: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n", to, m.get("Call-ID"), m.get("CSeq"))
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

func rawInvite(local, desk, callID, branch, from string) []byte {
	sdp := "v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
	return []byte(fmt.Sprintf("INVITE sip:sales@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=%s\r\n"+
		"From: \"Raw Caller\" <sip:%s@%s>;tag=rawc1\r\n"+
		"To: <sip:sales@%s>\r\n"+
		"Call-ID: %s\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:%s@%s>\r\nMax-Forwards: 70\r\n"+
		"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		desk, local, branch, from, local, desk, callID, from, local, len(sdp), sdp))
}

// readSIP reads one message within d; nil on timeout.
func readSIP(conn net.PacketConn, d time.Duration) (*sipMsg, net.Addr) {
	buf := make([]byte, 65535)
	conn.SetReadDeadline(time.Now().Add(d))
	n, addr, err := conn.ReadFrom(buf)
	if err != nil {
		return nil, nil
	}
	return parseSIP(buf[:n]), addr
}

// rawCallStatus sends one INVITE and returns the final status and its Retry-After.
func rawCallStatus(t *testing.T, deskAddr, from string) (int, string) {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raddr, _ := net.ResolveUDPAddr("udp", deskAddr)
	conn.WriteTo(rawInvite(conn.LocalAddr().String(), deskAddr, "drain-"+strconv.FormatInt(time.Now().UnixNano(), 36), "z9hG4bKdrain1", from), raddr)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m, _ := readSIP(conn, time.Until(deadline))
		if m == nil {
			break
		}
		if m.status() >= 200 {
			return m.status(), m.get("Retry-After")
		}
	}
	return 0, ""
}

// ---------------------------------------------------------------------------
// 4. Duplicate events.

// TestRetransmissionsMakeOneCall sends the same INVITE three times (same branch,
// Call-ID and CSeq), has the phone resend its 200 OK twice before any ACK, and the
// caller send its BYE three times: the desk must store exactly one call and pop it
// once (one call.ringing, one call.answered, one call.ended).
func TestRetransmissionsMakeOneCall(t *testing.T) {
	d, admin, rs := startDeskAsAdmin(t, nil)
	op := setupOperator(t, admin, d.Base, "ivan")
	page := newLivePage(op, nil)
	if err := page.connect(); err != nil {
		t.Fatal(err)
	}
	page.waitFor(t, "snapshot", 5*time.Second, ofType("snapshot"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := newSipp(t)
	phonePort := freePort(t)
	s.register(ctx, d, "ivan", "ivan-sip", strconv.Itoa(phonePort), "u1", "600")

	// The phone: rings, answers with a 200 OK sent three times without waiting for
	// the ACK, and answers each BYE.
	phone, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(phonePort))
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	var phoneGot sync.Map // method → count
	count := func(m *sync.Map, k string) int {
		v, _ := m.Load(k)
		n, _ := v.(int)
		return n
	}
	phoneDone := make(chan struct{})
	go func() {
		defer close(phoneDone)
		contact := fmt.Sprintf("Contact: <sip:ivan@127.0.0.1:%d>", phonePort)
		for {
			m, addr := readSIP(phone, 8*time.Second)
			if m == nil {
				return
			}
			meth := m.method()
			phoneGot.Store(meth, count(&phoneGot, meth)+1)
			switch meth {
			case "INVITE":
				phone.WriteTo(m.response(180, "Ringing", "phone1", contact), addr)
				ok := m.response(200, "OK", "phone1", contact)
				for range 3 {
					time.Sleep(100 * time.Millisecond)
					phone.WriteTo(ok, addr)
				}
			case "BYE":
				phone.WriteTo(m.response(200, "OK", "", contact), addr)
			}
		}
	}()

	caller, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	deskAddr, _ := net.ResolveUDPAddr("udp", d.SIPAddr)
	local := caller.LocalAddr().String()
	sipCallID := "dup-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@127.0.0.1"
	invite := rawInvite(local, d.SIPAddr, sipCallID, "z9hG4bKdupinvite1", "+79160000400")
	for range 3 {
		caller.WriteTo(invite, deskAddr)
		time.Sleep(30 * time.Millisecond)
	}
	var callerGot = map[int]int{}
	var ok200 *sipMsg
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m, _ := readSIP(caller, 600*time.Millisecond)
		if m == nil {
			if ok200 != nil {
				break // the retransmitted 200s had their chance to arrive
			}
			continue
		}
		if strings.HasSuffix(m.get("CSeq"), "INVITE") {
			callerGot[m.status()]++
			if m.status() == 200 && ok200 == nil {
				ok200 = m
			}
		}
	}
	if ok200 == nil {
		t.Fatalf("no 200 OK for the INVITE; got %v\ndesk:\n%s", callerGot, d.Out.String())
	}
	// ACK and BYE follow the Record-Route set to the phone's Contact.
	target := strings.Trim(strings.SplitN(ok200.get("Contact"), ">", 2)[0], "<")
	var routes strings.Builder
	for _, rr := range ok200.all("Record-Route") {
		fmt.Fprintf(&routes, "Route: %s\r\n", rr)
	}
	inDialog := func(method, branch string, cseq int) []byte {
		return []byte(fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s\r\n"+
			"From: \"Raw Caller\" <sip:+79160000400@%s>;tag=rawc1\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n%s"+
			"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			method, target, local, branch, local, ok200.get("To"), sipCallID, cseq, method, routes.String()))
	}
	caller.WriteTo(inDialog("ACK", "z9hG4bKdupack1", 1), deskAddr)
	time.Sleep(300 * time.Millisecond)
	bye := inDialog("BYE", "z9hG4bKdupbye1", 2)
	for range 3 {
		caller.WriteTo(bye, deskAddr)
		time.Sleep(30 * time.Millisecond)
	}
	byeOK := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		m, _ := readSIP(caller, 500*time.Millisecond)
		if m == nil {
			if byeOK > 0 {
				break
			}
			continue
		}
		if strings.HasSuffix(m.get("CSeq"), "BYE") && m.status() == 200 {
			byeOK++
		}
	}
	page.waitFor(t, "call.ended", 5*time.Second, ofType(desk.EventCallEnded))
	time.Sleep(500 * time.Millisecond) // a late duplicate would show by now
	phone.SetReadDeadline(time.Now())
	<-phoneDone

	frames := map[string]int{}
	for _, f := range page.all() {
		if str(jsonGet(f.Raw, "call", "sip_call_id")) == sipCallID {
			frames[f.Type]++
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()
	store := redisstore.New(rdb, redisstore.WithPrefix(keyPrefix))
	calls, err := store.CallsBetween(ctx, time.Now().Add(-time.Minute), time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var records int
	var state desk.CallState
	for _, c := range calls {
		if c.SIPCallID == sipCallID {
			records++
			state = c.State
		}
	}
	figure(t, "duplicates: invites_sent=3 phone_200s_sent=3 byes_sent=3 call_records=%d call.ringing=%d call.answered=%d call.ended=%d phone_got_invite=%d phone_got_ack=%d phone_got_bye=%d caller_got_200=%d bye_200s=%d",
		records, frames[desk.EventCallRinging], frames[desk.EventCallAnswered], frames[desk.EventCallEnded],
		count(&phoneGot, "INVITE"), count(&phoneGot, "ACK"), count(&phoneGot, "BYE"), callerGot[200], byeOK)
	if records != 1 || state != desk.CallEnded {
		t.Errorf("%d call records for one call (state %q), want 1 ended", records, state)
	}
	for _, typ := range []string{desk.EventCallRinging, desk.EventCallAnswered, desk.EventCallEnded} {
		if frames[typ] != 1 {
			t.Errorf("%d %s frames for one call, want 1", frames[typ], typ)
		}
	}
	if count(&phoneGot, "INVITE") != 1 || count(&phoneGot, "ACK") < 1 || count(&phoneGot, "BYE") < 1 || byeOK < 1 {
		t.Errorf("the phone got %d INVITEs (want 1), %d ACKs, %d BYEs; the caller %d 200s for the BYE",
			count(&phoneGot, "INVITE"), count(&phoneGot, "ACK"), count(&phoneGot, "BYE"), byeOK)
	}
}

// ---------------------------------------------------------------------------
// 5. Websocket drop, end to end.

// TestWebsocketDropResumes drops an operator page's websocket in the middle of 50
// answers (each a script.progress frame) and reconnects it with since and epoch:
// the frames of both connections together must have consecutive seqs, none missed.
func TestWebsocketDropResumes(t *testing.T) {
	d, admin, _ := startDeskAsAdmin(t, nil)
	op := setupOperator(t, admin, d.Base, "ivan")
	var progress atomic.Int64
	page := newLivePage(op, func(f frame) {
		if f.Type == desk.EventScriptProgress {
			progress.Add(1)
		}
	})
	if err := page.connect(); err != nil {
		t.Fatal(err)
	}
	page.waitFor(t, "snapshot", 5*time.Second, ofType("snapshot"))

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	s := newSipp(t)
	phonePort := strconv.Itoa(freePort(t))
	s.register(ctx, d, "ivan", "ivan-sip", phonePort, "u1", "600")
	phone, _ := startPhone(ctx, t, s, phonePort, 1, 100*time.Millisecond, 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	callers := s.file("ws_callers.csv", "SEQUENTIAL\n+79160000500;WS Caller;\n")
	uac := s.run(ctx, 30*time.Second, "-sf", mustAbs(t, "testdata/sipp/uac.xml"), "-inf", callers, d.SIPAddr, "-s", "sales",
		"-p", strconv.Itoa(freePort(t)), "-m", "1", "-d", "4000")
	if err := uac.Start(); err != nil {
		t.Fatal(err)
	}
	answered := page.waitFor(t, "call.answered", 5*time.Second, ofType(desk.EventCallAnswered))
	callID := str(jsonGet(answered.Raw, "call", "id"))

	const total = 50
	sent := make(chan error, 1)
	go func() {
		for i := range total {
			src := []string{"exhibition", "web_search"}[i%2]
			if code, body := op.tryDo("PUT", "/api/calls/"+callID+"/answers", map[string]any{"op": fmt.Sprintf("ws-%d", i),
				"step": "source", "fields": map[string]string{"source": src}}); code != 200 {
				sent <- fmt.Errorf("answer %d: HTTP %d %s", i, code, body)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		sent <- nil
	}()
	// Drop after about a third, stay away a while, and resume.
	for progress.Load() < total/3 {
		time.Sleep(2 * time.Millisecond)
	}
	page.drop()
	_, at := page.position()
	time.Sleep(150 * time.Millisecond)
	if err := page.connect(); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	page.waitFor(t, "the last script.progress", 5*time.Second, func(frame) bool { return progress.Load() >= total })
	uac.Wait()
	phone.Wait()

	var first, last int64 = -1, -1
	seqs := map[int64]bool{}
	var snapshots int
	for i, f := range page.all() {
		if f.Type == "snapshot" {
			if i > 0 {
				snapshots++
			}
			first = seqOf(f) // frames count from the (first) snapshot on
			continue
		}
		seqs[seqOf(f)] = true
		last = max(last, seqOf(f))
	}
	missed := 0
	for q := first + 1; q <= last; q++ {
		if !seqs[q] {
			missed++
		}
	}
	figure(t, "websocket-drop: frames missed=%d progress_frames=%d/%d seqs=%d..%d dropped_after_seq=%d resume_snapshots=%d",
		missed, progress.Load(), total, first+1, last, at, snapshots)
	if missed != 0 || snapshots != 0 || progress.Load() != total {
		t.Errorf("after the drop: %d frames missed, %d snapshots, %d/%d progress frames", missed, snapshots, progress.Load(), total)
	}
}
