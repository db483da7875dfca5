// Package b2bua is the desk's media bridge: a back-to-back user agent on diago that
// carries both legs of a media-mode call, mixes supervisors in (listen, whisper,
// barge), records calls in stereo and dials callbacks through an outbound trunk.
//
// It stands behind the proxy (package sip) and speaks to nothing else. The proxy
// hands it a media-mode call; the bridge answers that caller leg itself only once an
// operator has answered, and places the operator leg back through the proxy, which
// routes, hunts and pops it exactly as a proxy-mode call. So every rule of the
// switchboard holds in media mode too, and the bridge keeps only the audio.
//
// Audio is G.711 (PCMU, PCMA) with RFC 4733 telephone-event. Each leg is decoded to
// 16-bit PCM, mixed per listener every 20 ms by the mode matrix, and encoded again in
// that leg's own codec, so a PCMA caller and a PCMU operator talk without anybody
// configuring anything. Nothing else is transcoded: a leg that offers neither G.711
// codec gets 488.
package b2bua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// Sentinel errors; wrapped with context where they are returned.
var (
	// ErrNoCall: no call the bridge carries has that Call-ID.
	ErrNoCall = errors.New("no such bridged call")
	// ErrNoTrunk: a callback was asked for but no outbound trunk is configured.
	ErrNoTrunk = errors.New("no outbound trunk configured")
	// ErrNotReady: the bridge is not serving yet, or does not know the proxy.
	ErrNotReady = errors.New("media bridge not ready")
	// ErrBadMode: a monitor mode other than listen, whisper or barge.
	ErrBadMode = errors.New("unknown monitor mode")
)

// Mode is how a supervisor's leg is mixed in.
type Mode string

const (
	Listen  Mode = "listen"  // hears both, nobody hears him
	Whisper Mode = "whisper" // hears both, only the operator hears him
	Barge   Mode = "barge"   // everybody hears everybody
)

func (m Mode) valid() bool { return m == Listen || m == Whisper || m == Barge }

// MonitorEvent reports a supervisor leg: ringing, joined, switched, left or failed.
type MonitorEvent struct {
	CallID     string // the operator leg's Call-ID: the desk's SIP Call-ID of the call
	Supervisor string
	Mode       Mode
	State      string
	Reason     string
	Setup      time.Duration // joined: from the request to his answer
	At         time.Time
}

// Trunk is where callbacks are dialled: a SIP URI (the customer's number becomes its
// user part) and optional digest credentials.
type Trunk struct {
	URI      string // e.g. sip:trunk.example.net:5060 or sip:@10.0.0.5;transport=udp
	Username string
	Password string
	// From is the caller ID the customer sees (user part), e.g. the line's number.
	From string
}

// Recorder creates the file a call's stereo WAV is written to, kept for keep.
type Recorder func(callID string, keep time.Duration) (io.WriteSeeker, io.Closer, error)

// Option configures an Engine.
type Option func(*config)

type config struct {
	log        *slog.Logger
	listen     string
	proxy      string
	trunk      *Trunk
	recorder   Recorder
	onMonitor  func(MonitorEvent)
	onCallback func(callID, promise string)
	// onCallbackFailed: the customer of the callback did not answer.
	onCallbackFailed func(callID string, status int)
	registerer       prometheus.Registerer
	domain           string
	maxCalls         int
	// customerRing bounds how long a callback's customer rings (WithCallbackRingTimeout).
	customerRing time.Duration
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithListen sets the ip:port the bridge serves SIP on (UDP) and binds RTP to. The
// default 127.0.0.1:0 suits one host; phones elsewhere need an address they reach.
func WithListen(addr string) Option { return func(c *config) { c.listen = addr } }

// WithProxy names the proxy (ip:port) that routes the bridge's legs, and the only
// address whose requests the bridge takes. SetProxy sets it later.
func WithProxy(addr string) Option { return func(c *config) { c.proxy = addr } }

// WithTrunk sets the outbound trunk for callbacks.
func WithTrunk(t Trunk) Option { return func(c *config) { c.trunk = &t } }

// WithRecorder stores recordings; without it nothing is recorded.
func WithRecorder(r Recorder) Option { return func(c *config) { c.recorder = r } }

// OnMonitor receives every change of a supervisor leg. It must not block.
func OnMonitor(f func(MonitorEvent)) Option { return func(c *config) { c.onMonitor = f } }

// OnCallbackAnswered is told when the customer of a callback answered (the promise
// is kept then), before the two are bridged: so before anything can end the call.
// It must not block.
func OnCallbackAnswered(f func(callID, promise string)) Option {
	return func(c *config) { c.onCallback = f }
}

// OnCallbackUnanswered is told when the trunk refused the customer's leg of a
// callback with a final status (486 busy, 480 no answer, ...), before the
// operator's leg is hung up (and before the busy tone he hears first when the
// customer was busy). It is not told when the leg ended without a status: the
// operator hung up while it rang, or the bridge closed. It must not block.
func OnCallbackUnanswered(f func(callID string, status int)) Option {
	return func(c *config) { c.onCallbackFailed = f }
}

// WithRegisterer registers the bridge's metrics.
func WithRegisterer(r prometheus.Registerer) Option { return func(c *config) { c.registerer = r } }

// WithDomain is the host written in the bridge's From headers (the desk's SIP domain).
func WithDomain(d string) Option { return func(c *config) { c.domain = d } }

// WithRTPPorts confines RTP to ports [min, max), for a firewall. diago keeps the
// range process-wide, so it holds for every bridge in the process.
func WithRTPPorts(min, max int) Option {
	return func(c *config) {
		if min > 0 && max > min {
			media.RTPPortStart, media.RTPPortEnd = min, max
		}
	}
}

// WithMaxCalls bounds the calls carried at once; more are refused with 503 (0: no bound).
func WithMaxCalls(n int) Option { return func(c *config) { c.maxCalls = n } }

// DefaultCallbackRingTimeout is how long a callback lets the customer's phone ring
// before it gives up (trunks often ring for minutes; the operator waits meanwhile).
const DefaultCallbackRingTimeout = 45 * time.Second

// WithCallbackRingTimeout sets how long a callback lets the customer's phone ring
// (default DefaultCallbackRingTimeout). The bridge then cancels the customer's leg
// and hangs up the operator's: the call closes as not answered.
func WithCallbackRingTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.customerRing = d
		}
	}
}

// Engine is the media bridge.
type Engine struct {
	cfg   config
	log   *slog.Logger
	ua    *sipgo.UserAgent
	srv   *sipgo.Server
	dg    *diago.Diago
	conn  net.PacketConn
	addr  string
	proxy atomic.Pointer[string]
	// trunkIP are the trunk's addresses, resolved once at Start.
	trunkIP []netip.Addr
	m       *metrics
	closed  atomic.Bool

	mu    sync.Mutex
	calls map[string]*bridged // by the operator leg's Call-ID
	wg    sync.WaitGroup      // every call and leg goroutine
}

// New creates the bridge; Start serves it.
func New(opts ...Option) (*Engine, error) {
	cfg := config{log: slog.New(slog.DiscardHandler), listen: "127.0.0.1:0", domain: "desk.invalid",
		customerRing: DefaultCallbackRingTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	e := &Engine{cfg: cfg, log: cfg.log.With("component", "b2bua"), calls: map[string]*bridged{}, m: newMetrics(cfg.registerer)}
	if cfg.proxy != "" {
		e.SetProxy(cfg.proxy)
	}
	return e, nil
}

// Start binds the SIP socket and serves until ctx ends; it returns once listening.
func (e *Engine) Start(ctx context.Context) error {
	conn, err := net.ListenPacket("udp", e.cfg.listen)
	if err != nil {
		return fmt.Errorf("b2bua: listen %s: %w", e.cfg.listen, err)
	}
	la := conn.LocalAddr().(*net.UDPAddr)
	host := la.IP.String()
	if la.IP.IsUnspecified() {
		conn.Close()
		return fmt.Errorf("b2bua: listen %s: %w", e.cfg.listen, errors.New("needs a specific IP, for RTP and Contact"))
	}
	e.conn, e.addr = conn, net.JoinHostPort(host, strconv.Itoa(la.Port))
	if t := e.cfg.trunk; t != nil && t.URI != "" {
		var u sipmsg.Uri
		if err := sipmsg.ParseUri(t.URI, &u); err != nil {
			conn.Close()
			return fmt.Errorf("b2bua: trunk %q: %w", t.URI, err)
		}
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", strings.Trim(u.Host, "[]"))
		if err != nil {
			e.log.Warn("b2bua: trunk host not resolved; its hang-ups will be refused", "host", u.Host, "err", err)
		}
		for _, a := range addrs {
			e.trunkIP = append(e.trunkIP, a.Unmap())
		}
	}

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("calldesk-bridge"), sipgo.WithUserAgentHostname(host))
	if err != nil {
		conn.Close()
		return fmt.Errorf("b2bua: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(e.log))
	if err != nil {
		conn.Close()
		return fmt.Errorf("b2bua: server: %w", err)
	}
	e.ua, e.srv = ua, srv
	e.dg = diago.NewDiago(ua,
		diago.WithLogger(e.log),
		diago.WithServer(srv),
		diago.WithTransport(diago.Transport{Transport: "udp", BindHost: host, BindPort: la.Port}),
		diago.WithMediaConfig(diago.MediaConfig{Codecs: []media.Codec{media.CodecAudioUlaw, media.CodecAudioAlaw, media.CodecTelephoneEvent8000}}),
		diago.WithServerRequestMiddleware(e.onlyFromProxy),
	)
	e.dg.HandleFunc(e.serveInbound)
	go func() {
		if err := srv.ServeUDP(conn); err != nil && !e.closed.Load() {
			e.log.Error("b2bua: serve ended", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		e.Close()
	}()
	e.log.Info("media bridge listening", "addr", e.addr)
	return nil
}

// Addr is the ip:port the bridge serves and sends SIP from (the proxy's WithBridge).
func (e *Engine) Addr() string { return e.addr }

// SetProxy names the proxy once its address is known.
func (e *Engine) SetProxy(addr string) {
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().IsUnspecified() {
		// A proxy on all interfaces is reached at the bridge's own IP: the packets it
		// sends back come from there too, which is what onlyFromProxy compares.
		ip := netip.MustParseAddr("127.0.0.1")
		if bp, err := netip.ParseAddrPort(e.addr); err == nil {
			ip = bp.Addr()
		}
		addr = netip.AddrPortFrom(ip, ap.Port()).String()
	}
	e.proxy.Store(&addr)
}

func (e *Engine) proxyAddr() string {
	if p := e.proxy.Load(); p != nil {
		return *p
	}
	return ""
}

// onlyFromProxy refuses every request that does not come from the proxy: the bridge
// trusts the proxy's X-Desk-* headers and must not be an open media relay.
func (e *Engine) onlyFromProxy(next sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if e.fromTrunk(req) {
			next(req, tx) // the far end of a callback: BYE, re-INVITE in its dialog
			return
		}
		if p := e.proxyAddr(); p == "" || !sameAddr(req.Source(), p) {
			e.m.refused.Inc()
			if !req.IsAck() {
				_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 403, "Forbidden", nil))
			}
			return
		}
		next(req, tx)
	}
}

// fromTrunk tells an in-dialog request from the trunk's host: callbacks reach the
// customer directly, so his hang-up comes from there. New calls from the trunk must
// come in through the proxy like any other.
func (e *Engine) fromTrunk(req *sipmsg.Request) bool {
	if e.trunkIP == nil {
		return false
	}
	if to := req.To(); to == nil || !to.Params.Has("tag") {
		return false
	}
	h, _, err := net.SplitHostPort(req.Source())
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return false
	}
	for _, t := range e.trunkIP {
		if t == ip.Unmap() {
			return true
		}
	}
	return false
}

// sameAddr compares two ip:port strings exactly: phones may share the proxy's IP (one
// host), and the proxy always reaches the bridge from its UDP listening socket.
func sameAddr(a, b string) bool {
	pa, err1 := netip.ParseAddrPort(a)
	pb, err2 := netip.ParseAddrPort(b)
	return err1 == nil && err2 == nil && pa.Addr().Unmap() == pb.Addr().Unmap() && pa.Port() == pb.Port()
}

// Active is the number of calls carried now.
func (e *Engine) Active() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.calls)
}

// Close hangs up every call, waits for their goroutines and closes the socket.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.mu.Lock()
	for _, c := range e.calls {
		c.end()
	}
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		e.log.Warn("b2bua: calls still ending at close")
	}
	if e.srv != nil {
		e.srv.Close()
	}
	if e.ua != nil {
		e.ua.Close()
	}
	if e.conn != nil {
		e.conn.Close()
	}
	return nil
}

func (e *Engine) call(id string) *bridged {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[id]
}

func (e *Engine) add(c *bridged) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cfg.maxCalls > 0 && len(e.calls) >= e.cfg.maxCalls {
		return false
	}
	e.calls[c.id] = c
	e.m.active.Set(float64(len(e.calls)))
	return true
}

func (e *Engine) remove(c *bridged) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.calls[c.id] == c {
		delete(e.calls, c.id)
	}
	e.m.active.Set(float64(len(e.calls)))
}

func (e *Engine) monitorEvent(ev MonitorEvent) {
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	e.m.monitor.WithLabelValues(ev.State).Inc()
	if e.cfg.onMonitor != nil {
		e.cfg.onMonitor(ev)
	}
}
