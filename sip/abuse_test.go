package sip

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// rawPeer is a bare socket speaking SIP text, for requests no well-behaved client
// would send (replays, floods, oversize, scanners).
type rawPeer struct {
	t       *testing.T
	network string
	udp     *net.UDPConn
	tcp     net.Conn
	server  string
	rd      *bufio.Reader
}

func newRawPeer(t *testing.T, network, localIP, server string) *rawPeer {
	t.Helper()
	p := &rawPeer{t: t, network: network, server: server}
	if network == "udp" {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(localIP)})
		if err != nil {
			t.Fatal(err)
		}
		p.udp = c
		t.Cleanup(func() { c.Close() })
		return p
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", server)
	if err != nil {
		t.Fatal(err)
	}
	p.tcp, p.rd = c, bufio.NewReader(c)
	t.Cleanup(func() { c.Close() })
	return p
}

func (p *rawPeer) local() string {
	if p.udp != nil {
		return p.udp.LocalAddr().String()
	}
	return p.tcp.LocalAddr().String()
}

func (p *rawPeer) send(msg []byte) error {
	if p.udp != nil {
		addr, _ := net.ResolveUDPAddr("udp", p.server)
		_, err := p.udp.WriteToUDP(msg, addr)
		return err
	}
	_, err := p.tcp.Write(msg)
	return err
}

// recv reads the next response within d; nil when none came.
func (p *rawPeer) recv(d time.Duration) *sipmsg.Response {
	p.t.Helper()
	deadline := time.Now().Add(d)
	if p.udp != nil {
		buf := make([]byte, 65535)
		for {
			_ = p.udp.SetReadDeadline(deadline)
			n, _, err := p.udp.ReadFromUDP(buf)
			if err != nil {
				return nil
			}
			msg, err := sipmsg.ParseMessage(buf[:n])
			if res, ok := msg.(*sipmsg.Response); err == nil && ok {
				return res
			}
		}
	}
	_ = p.tcp.SetReadDeadline(deadline)
	var head bytes.Buffer
	cl := 0
	for {
		line, err := p.rd.ReadString('\n')
		if err != nil {
			return nil
		}
		head.WriteString(line)
		if l := strings.ToLower(line); strings.HasPrefix(l, "content-length:") {
			cl, _ = strconv.Atoi(strings.TrimSpace(line[len("content-length:"):]))
		}
		if line == "\r\n" {
			if head.Len() == 2 {
				head.Reset() // keep-alive CRLF
				continue
			}
			break
		}
	}
	body := make([]byte, cl)
	if _, err := io.ReadFull(p.rd, body); err != nil {
		return nil
	}
	head.Write(body)
	msg, err := sipmsg.ParseMessage(head.Bytes())
	if res, ok := msg.(*sipmsg.Response); err == nil && ok {
		return res
	}
	return nil
}

// final sends msg and returns the first final response, or nil after d.
func (p *rawPeer) final(msg []byte, d time.Duration) *sipmsg.Response {
	p.t.Helper()
	if err := p.send(msg); err != nil {
		p.t.Fatalf("send: %v", err)
	}
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		res := p.recv(time.Until(end))
		if res == nil {
			return nil
		}
		if res.StatusCode >= 200 {
			return res
		}
	}
	return nil
}

type rawReq struct {
	method, user, ua, authz, extra, callID string
	cseq                                   int
	branch                                 string
}

// build writes a request from this peer to the server's domain.
func (p *rawPeer) build(r rawReq) []byte {
	host, port, _ := net.SplitHostPort(p.local())
	if r.branch == "" {
		r.branch = "z9hG4bK" + sipmsg.GenerateTagN(12)
	}
	if r.callID == "" {
		r.callID = sipmsg.GenerateTagN(16)
	}
	if r.cseq == 0 {
		r.cseq = 1
	}
	if r.method == "" {
		r.method = "REGISTER"
	}
	if r.user == "" {
		r.user = "anna"
	}
	ruri := "sip:" + testDomain
	if r.method != "REGISTER" {
		ruri = "sip:" + r.user + "@" + testDomain
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", r.method, ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s:%s;rport;branch=%s\r\n", strings.ToUpper(p.network), host, port, r.branch)
	fmt.Fprintf(&b, "Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", r.user, testDomain, "f"+r.callID[:6])
	fmt.Fprintf(&b, "To: <sip:%s@%s>\r\n", r.user, testDomain)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", r.callID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", r.cseq, r.method)
	if r.method == "REGISTER" {
		fmt.Fprintf(&b, "Contact: <sip:%s@%s:%s;transport=%s>\r\nExpires: 600\r\n", r.user, host, port, p.network)
	}
	if r.ua != "" {
		fmt.Fprintf(&b, "User-Agent: %s\r\n", r.ua)
	}
	if r.authz != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", r.authz)
	}
	b.WriteString(r.extra)
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// authz answers the challenge of res for user/password with nonce count nc.
func authz(t *testing.T, res *sipmsg.Response, user, password string, nc int) string {
	t.Helper()
	if res == nil || res.StatusCode != 401 {
		t.Fatalf("want a 401 challenge, got %v", res)
	}
	chal, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:" + testDomain, Username: user, Password: password, Count: nc})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

// TestNonceReplayRefused captures an authorized REGISTER and sends it again verbatim:
// over TCP (its transaction ends with the 200, so the copy reaches the registrar)
// and over UDP from another socket with only the Via branch changed, which digest
// does not cover. Both get 401 with a fresh nonce; the phone's own next REGISTER
// on the same nonce with a higher nc is accepted.
func TestNonceReplayRefused(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		t.Run(network, func(t *testing.T) {
			h := newMemHandler()
			h.addUser("anna", "secret")
			s := startServer(t, h)
			phone := newRawPeer(t, network, "127.0.0.1", s.Addr())
			callID := sipmsg.GenerateTagN(16)
			chal := phone.final(phone.build(rawReq{callID: callID}), 3*time.Second)
			auth := authz(t, chal, "anna", "secret", 1)
			captured := phone.build(rawReq{callID: callID, cseq: 2, authz: auth})
			if res := phone.final(captured, 3*time.Second); res == nil || res.StatusCode != 200 {
				t.Fatalf("authorized REGISTER: %v", res)
			}

			// Let the REGISTER transaction end (TCP: at once; a copy that still
			// finds it only gets the cached 200 resent to the phone).
			time.Sleep(200 * time.Millisecond)
			attacker := newRawPeer(t, network, "127.0.0.3", s.Addr())
			replay := captured
			if network == "udp" {
				// Same bytes but a new branch, so the transaction layer does not
				// absorb it as a retransmission; Via is not covered by digest.
				old := string(captured)
				i := strings.Index(old, "branch=")
				j := i + strings.Index(old[i:], "\r\n")
				replay = []byte(old[:i] + "branch=z9hG4bKreplay" + sipmsg.GenerateTagN(6) + old[j:])
			}
			res := attacker.final(replay, 3*time.Second)
			if res == nil || res.StatusCode != 401 {
				t.Fatalf("replayed REGISTER: %v, want 401", res)
			}
			fresh, _ := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
			if fresh == nil || strings.Contains(auth, fresh.Nonce) {
				t.Fatalf("replay answered without a fresh nonce: %v", res.GetHeader("WWW-Authenticate"))
			}
			next := phone.build(rawReq{callID: callID, cseq: 3, authz: authz(t, chal, "anna", "secret", 2)})
			if res := phone.final(next, 3*time.Second); res == nil || res.StatusCode != 200 {
				t.Fatalf("same nonce, nc=2: %v, want 200", res)
			}
		})
	}
}

// countingHandler counts credential lookups, to prove throttled attempts cost none.
type countingHandler struct {
	*memHandler
	lookups atomic.Int64
}

func (c *countingHandler) DigestHA1(ctx context.Context, user string) (string, error) {
	c.lookups.Add(1)
	return c.memHandler.DigestHA1(ctx, user)
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(msg string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(s.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// offlineRegister drives one REGISTER through an offline server from source src:
// first without credentials, then answering the challenge with password.
func offlineRegister(t *testing.T, s *Server, src, user, password string) int {
	t.Helper()
	host, port, _ := net.SplitHostPort(src)
	msg := func(auth string) *sipmsg.Request {
		raw := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%s;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\n"+
			"From: <sip:%s@%s>;tag=1\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 REGISTER\r\nContact: <sip:%s@%s:%s>\r\n%sContent-Length: 0\r\n\r\n",
			testDomain, host, port, sipmsg.GenerateTagN(8), user, testDomain, user, testDomain, sipmsg.GenerateTagN(10), user, host, port, auth)
		m, err := sipmsg.ParseMessage([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		req := m.(*sipmsg.Request)
		req.SetSource(src)
		return req
	}
	tx := newFakeTx()
	s.serve(msg(""), tx)
	if tx.final() != 401 {
		return tx.final()
	}
	res := tx.responses[len(tx.responses)-1]
	tx2 := newFakeTx()
	s.serve(msg("Authorization: "+authz(t, res, user, password, 1)+"\r\n"), tx2)
	return tx2.final()
}

// TestAuthFailureThrottle: 5 failures a minute per source IP and 10 per login by
// default (here 3 and 5); past them REGISTERs get 403 without a credentials lookup,
// a login's throttle spares the addresses it is registered from, and the window
// passes with the (injected) clock. Every failure is one Warn line with ip, source,
// user and reason.
func TestAuthFailureThrottle(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	logs := &syncBuffer{}
	h := &countingHandler{memHandler: newMemHandler()}
	h.addUser("anna", "secret")
	h.addUser("boris", "secret")
	s, err := New(h, WithDomain(testDomain), WithClock(clock.Now),
		WithLogger(slog.New(slog.NewJSONHandler(logs, nil))),
		WithLimits(Limits{FailuresPerIP: 3, FailuresPerUser: 5, FailureWindow: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	s.host, s.port, s.listenIP = "127.0.0.1", 5060, []byte{127, 0, 0, 1}
	s.allowDest = func(string) bool { return false }

	steps := []struct {
		name           string
		src, user, pw  string
		want           int
		lookupsCounted bool // whether this attempt may look the user up
		advance        time.Duration
	}{
		{"ip A wrong 1", "192.0.2.10:5060", "boris", "x", 403, true, 0},
		{"ip A wrong 2", "192.0.2.10:5060", "boris", "x", 403, true, 0},
		{"ip A wrong 3", "192.0.2.10:5060", "boris", "x", 403, true, 0},
		{"ip A right but throttled", "192.0.2.10:5060", "boris", "secret", 403, false, 0},
		{"ip A other port, throttled too", "192.0.2.10:5070", "anna", "secret", 403, false, 0},
		{"ip B right", "192.0.2.20:5060", "anna", "secret", 200, true, 0},
		{"anna wrong from C1", "192.0.2.31:5060", "anna", "x", 403, true, 0},
		{"anna wrong from C2", "192.0.2.32:5060", "anna", "x", 403, true, 0},
		{"anna wrong from C3", "192.0.2.33:5060", "anna", "x", 403, true, 0},
		{"anna wrong from C4", "192.0.2.34:5060", "anna", "x", 403, true, 0},
		{"anna wrong from C5", "192.0.2.35:5060", "anna", "x", 403, true, 0},
		{"anna right from new D: login throttled", "192.0.2.40:5060", "anna", "secret", 403, false, 0},
		{"anna right from B, where she is registered", "192.0.2.20:5060", "anna", "secret", 200, true, 0},
		{"ip A after the window", "192.0.2.10:5060", "boris", "secret", 200, true, 61 * time.Second},
		{"anna from D after the window", "192.0.2.40:5060", "anna", "secret", 200, true, 0},
	}
	for _, st := range steps {
		clock.Add(st.advance)
		before := h.lookups.Load()
		got := offlineRegister(t, s, st.src, st.user, st.pw)
		if got != st.want {
			t.Fatalf("%s: status %d, want %d", st.name, got, st.want)
		}
		if looked := h.lookups.Load() > before; looked != st.lookupsCounted {
			t.Fatalf("%s: credentials looked up=%v, want %v", st.name, looked, st.lookupsCounted)
		}
	}
	fails := logs.lines("sip auth failure")
	reasons := map[string]int{}
	for _, l := range fails {
		for _, k := range []string{"ip", "source", "user", "reason"} {
			if v, _ := l[k].(string); v == "" {
				t.Fatalf("failure line without %s: %v", k, l)
			}
		}
		if l["level"] != "WARN" {
			t.Fatalf("failure logged at %v", l["level"])
		}
		reasons[l["reason"].(string)]++
	}
	if reasons["bad_password"] != 8 || reasons["throttled"] != 3 {
		t.Fatalf("failure lines by reason %v, want 8 bad_password and 3 throttled", reasons)
	}
	t.Logf("auth failure lines: %v", reasons)
}

// TestReplayGuardBounded: the guard forgets entries past the nonce lifetime and keeps
// at most maxTracked.
func TestReplayGuardBounded(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	g := newReplayGuard(time.Minute, clock.Now)
	if !g.accept("anna", "n1", 1) || g.accept("anna", "n1", 1) || g.accept("anna", "n1", 0) || !g.accept("anna", "n1", 2) {
		t.Fatal("nc rules")
	}
	if !g.accept("boris", "n1", 1) {
		t.Fatal("another user with the same nonce refused")
	}
	clock.Add(3 * time.Minute)
	if !g.accept("anna", "n1", 1) {
		t.Fatal("entry outlived the nonce")
	}
	for i := 0; i < maxTracked+100; i++ {
		g.accept("u", strconv.Itoa(i), 1)
	}
	if n := g.seen.len(); n > maxTracked {
		t.Fatalf("guard holds %d entries", n)
	}
}

// TestScannerAndRateLimit: scanner User-Agents get no answer, and one source gets
// exactly its burst of answers when the clock stands still, on UDP (dropped before
// parsing) and TCP (before the handler); another source is not affected.
func TestScannerAndRateLimit(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
			h := newMemHandler()
			s := startServer(t, h, WithClock(clock.Now), WithLimits(Limits{RequestRate: 10, RequestBurst: 8}))
			for _, ua := range []string{"friendly-scanner", "sipvicious 0.3", "SIPCLI/v1.8", "VaxSIPUserAgent/3.1", "pplsip", "sundayddr"} {
				p := newRawPeer(t, network, "127.0.0.4", s.Addr())
				if res := p.final(p.build(rawReq{method: "OPTIONS", ua: ua}), 300*time.Millisecond); res != nil {
					t.Fatalf("scanner %q answered %d", ua, res.StatusCode)
				}
			}
			flood := newRawPeer(t, network, "127.0.0.2", s.Addr())
			for i := 0; i < 20; i++ {
				if err := flood.send(flood.build(rawReq{method: "OPTIONS"})); err != nil {
					t.Fatal(err)
				}
			}
			answered := 0
			for flood.recv(500*time.Millisecond) != nil {
				answered++
			}
			if answered != 8 {
				t.Fatalf("flooding source got %d answers, want its burst of 8", answered)
			}
			other := newRawPeer(t, network, "127.0.0.1", s.Addr())
			if res := other.final(other.build(rawReq{method: "OPTIONS"}), 2*time.Second); res == nil || res.StatusCode != 200 {
				t.Fatalf("other source: %v", res)
			}
			clock.Add(time.Second) // 10 more tokens
			if res := flood.final(flood.build(rawReq{method: "OPTIONS"}), 2*time.Second); res == nil || res.StatusCode != 200 {
				t.Fatalf("flooding source after a second: %v", res)
			}
		})
	}
}

// TestOversizeRefused: a request over Limits.MaxMessage that parses gets 413; one past
// what the parser takes, or garbage, gets nothing; the server keeps answering. Both
// transports.
func TestOversizeRefused(t *testing.T) {
	pad := func(n int) string { return "X-Pad: " + strings.Repeat("a", n) + "\r\n" }
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			s := startServer(t, newMemHandler())
			p := newRawPeer(t, network, "127.0.0.1", s.Addr())
			if res := p.final(p.build(rawReq{method: "OPTIONS", extra: pad(40 << 10)}), 3*time.Second); res == nil || res.StatusCode != 413 {
				t.Fatalf("40 KiB request: %v, want 413", res)
			}
			if res := p.final(p.build(rawReq{method: "OPTIONS", extra: pad(1000)}), 3*time.Second); res == nil || res.StatusCode != 200 {
				t.Fatalf("normal request after the 413: %v", res)
			}
			// Past what the parser takes (TCP: 100 KiB), or a big datagram that does
			// not parse (UDP cannot carry more than the parser takes): no answer.
			big := p.build(rawReq{method: "OPTIONS", extra: pad(100 << 10)})
			if network == "udp" {
				big = append([]byte("OPTIONS sip:x SIP/2.0\r\n"), bytes.Repeat([]byte("garbage\r\n"), 6000)...)
			}
			_ = p.send(big)
			if res := p.recv(500 * time.Millisecond); res != nil {
				t.Fatalf("unparsable oversize message answered %d", res.StatusCode)
			}
			q := newRawPeer(t, network, "127.0.0.1", s.Addr())
			if res := q.final(q.build(rawReq{method: "OPTIONS"}), 3*time.Second); res == nil || res.StatusCode != 200 {
				t.Fatalf("server after oversize input: %v", res)
			}
		})
	}
}

// TestFloodLegitCallSurvives: one source (127.0.0.2) sends about 2000 REGISTERs in
// about 2 s, wrong passwords and scanner User-Agents mixed, while a phone on
// 127.0.0.1 registers and a call goes through it end to end.
func TestFloodLegitCallSurvives(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test")
	}
	h := newMemHandler()
	h.addOperator("anna", "secret")
	h.addUser("admin", "Adm1n-strong")
	s := startServer(t, h)

	flood := newRawPeer(t, "udp", "127.0.0.2", s.Addr())
	chal := flood.final(flood.build(rawReq{user: "admin"}), 3*time.Second)
	wrong := authz(t, chal, "admin", "123456", 1)
	var sent atomic.Int64
	stop := make(chan struct{})
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			r := rawReq{user: "admin", authz: wrong}
			if i%2 == 1 {
				r = rawReq{user: strconv.Itoa(100 + i%50), ua: "friendly-scanner"}
			}
			if flood.send(flood.build(r)) == nil {
				sent.Add(1)
			}
		}
	}()
	go func() { // drain what the flood gets back
		for {
			select {
			case <-stop:
				return
			default:
				flood.recv(100 * time.Millisecond)
			}
		}
	}()
	defer close(stop)

	time.Sleep(300 * time.Millisecond) // the flood is on
	p := newPhone(t, "anna", "secret", "udp", "answer")
	if res := p.register(t, s.Addr(), 600, "secret"); res.StatusCode != 200 {
		t.Fatalf("legit REGISTER during the flood: %d", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	tl, err := PlaceCall(ctx, CallOptions{Server: s.Addr(), From: "+79161234567", To: "sales", Hold: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("legit call during the flood: %v (timeline %v)", err, tl)
	}
	setup := time.Since(start)
	if !tl.Has("ACK sent") || !tl.Has("BYE 200 OK") {
		t.Fatalf("call timeline %v", tl)
	}
	<-floodDone
	refused := 0.0
	for _, r := range []string{"scanner", "rate"} {
		refused += counterValue(s.metrics.dropped.WithLabelValues(r))
	}
	fails := counterValue(s.metrics.authFailures.WithLabelValues("bad_password")) + counterValue(s.metrics.authFailures.WithLabelValues("throttled"))
	if refused == 0 || fails == 0 {
		t.Fatalf("flood not seen: dropped=%v auth failures=%v", refused, fails)
	}
	if looked := counterValue(s.metrics.authFailures.WithLabelValues("bad_password")); looked > 10 {
		// 5 per source, plus the few in flight when the 5th failed.
		t.Fatalf("%v wrong passwords checked; throttling should stop at 5", looked)
	}
	line := fmt.Sprintf("FIGURE sip-flood: flood_registers=%d dropped=%.0f auth_refused=%.0f legit_register=ok legit_call=ok call_ms=%d",
		sent.Load(), refused, fails, setup.Milliseconds())
	fmt.Println(line)
	t.Log(line)
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
