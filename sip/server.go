package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
)

// Sentinel errors of the server; returned wrapped with context.
var (
	ErrAlreadyListening = errors.New("sip server already listening")
	ErrNotListening     = errors.New("sip server not listening")
	ErrNoFreePort       = errors.New("no port free on both udp and tcp")
)

func init() {
	// sipgo refuses UDP messages over 1300 bytes by default (RFC 3261 18.1.1 would
	// switch to TCP, which sipgo does not do). INVITEs with rich SDP and a few proxy
	// headers exceed that, and loopback/LAN paths fragment fine, so allow datagrams up
	// to what sipgo's reader accepts. Set once here, before any transport runs.
	// The read buffer takes the largest datagram the parser accepts (64 KiB), so an
	// oversize request is parsed and answered 413 (Limits.MaxMessage) rather than
	// truncated into garbage.
	sipmsg.TransportBufferReadSize = 65535
	sipmsg.UDPMTUSize = int(sipmsg.TransportBufferReadSize)
}

// Server is the desk's registrar and record-routing stateful proxy on UDP and TCP.
//
// Lifecycle: Listen binds UDP and TCP on the same host:port (port 0 picks one free on
// both); Addr and Ready are valid after it. Serve serves until ctx is cancelled, then
// closes the listeners. ListenAndServe is both, and closes Ready once bound.
//
// Draining: after Drain, new INVITEs are answered 503 with Retry-After (WithRetryAfter,
// default 30 s) while calls in progress go on and in-dialog requests (ACK, BYE, re-INVITE)
// are still relayed. Active counts INVITEs being proxied plus answered calls whose BYE
// has not been seen yet; cmd waits for it to reach zero (with its own deadline) before
// cancelling the context.
//
// Who hung up: a BYE's By is "caller" when its From tag equals the From tag of the
// INVITE that opened the dialog (remembered in memory from the INVITE); otherwise
// "operator". When the dialog is not in memory (desk restarted) the rule is the packet
// source: a BYE arriving from the source address of a registered binding is the
// operator's, anything else the caller's.
//
// Nonces are stateless: hex(unix seconds) "." hex(random salt) "." hex(HMAC-SHA256(key,
// ts|salt|realm)[:16]).
// Any node with the same key (WithNonceKey) verifies them; past WithNonceTTL a correct
// answer gets 401 stale=true so the phone retries silently.
//
// Replay: each node remembers, per user and nonce, the highest nonce count (nc) it
// accepted, in a bounded in-memory LRU kept for the nonce's lifetime. A REGISTER whose
// credentials are correct but whose nc is not higher than one already accepted (a
// captured request sent again) gets 401 with a fresh nonce, not 403: a phone that
// really is the user simply answers the new challenge, an attacker gets nothing, and
// the attempt counts as an auth failure (reason "replay"). A verbatim resend inside
// the original transaction's lifetime (UDP, Timer J, 32 s) never reaches the
// registrar: the transaction layer answers it with the cached response, changing
// nothing. Behind a load balancer without source affinity a replay to another node is
// not seen; sticky sources or a short nonce TTL bound that.
//
// Abuse (see Limits, WithLimits, docs/security.md): requests from scanner User-Agents
// and requests over the per-source rate are dropped without an answer, on UDP before
// parsing; failed REGISTER authentications are counted per source IP and per login,
// and past the limit REGISTERs get 403 without any store lookup; every failure is one
// Warn line "sip auth failure" with ip, source, user and reason. Messages over
// Limits.MaxMessage get 413; requests that break RFC 3261 syntax rules sipgo lets
// through get 400 (505 for another SIP version), see validateRequest.
type Server struct {
	cfg     config
	h       Handler
	log     *slog.Logger
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	nonces  *nonces
	cache   *bindingCache
	dialogs *dialogStore
	metrics *metrics
	abuse   *abuse
	now     func() time.Time

	mu        sync.Mutex
	udp       net.PacketConn
	tcp       net.Listener
	host      string // written in Via/Record-Route
	port      int
	listenIP  net.IP
	ready     chan struct{}
	readyOnce sync.Once

	draining atomic.Bool
	inflight atomic.Int64

	// allowDest, when set, vetoes next hops; tests and the fuzzer use it to keep
	// every packet on loopback.
	allowDest func(dest string) bool
}

// New builds a Server; it does not listen yet.
func New(h Handler, opts ...Option) (*Server, error) {
	if h == nil {
		return nil, errors.New("sip: nil handler")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	cfg.finish()
	s := &Server{
		cfg:     cfg,
		h:       h,
		log:     cfg.log.With("component", "sip"),
		cache:   newBindingCache(),
		dialogs: newDialogStore(),
		metrics: newMetrics(cfg.registerer),
		ready:   make(chan struct{}),
		now:     cfg.now,
	}
	s.abuse = newAbuse(cfg.limits, cfg.nonceTTL, cfg.now)
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(cfg.userAgent),
		sipgo.WithUserAgentTransactionLayerOptions(
			sipmsg.WithTransactionLayerLogger(s.log),
			sipmsg.WithTransactionLayerUnhandledResponseHandler(s.onStrayResponse),
		),
		sipgo.WithUserAgentTransportLayerOptions(sipmsg.WithTransportLayerLogger(s.log),
			sipmsg.WithTransportLayerReadFilter(s.readFilter)),
	)
	if err != nil {
		return nil, fmt.Errorf("sip: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(s.log))
	if err != nil {
		return nil, fmt.Errorf("sip: server: %w", err)
	}
	s.ua, s.srv = ua, srv
	if cfg.domain != "" {
		s.nonces = &nonces{key: cfg.nonceKey, realm: sanitizeToken(cfg.domain), ttl: cfg.nonceTTL, now: cfg.now}
	}
	for _, m := range []sipmsg.RequestMethod{sipmsg.REGISTER, sipmsg.INVITE, sipmsg.ACK, sipmsg.BYE, sipmsg.CANCEL, sipmsg.OPTIONS} {
		srv.OnRequest(m, s.guard(s.serve))
	}
	srv.OnNoRoute(s.guard(s.serve))
	return s, nil
}

// serve is the front door of every request sipgo parsed. On TCP it first drops
// scanner and over-rate requests (UDP did that before parsing, in readFilter). Then:
// 413 over Limits.MaxMessage; 400 with sanitised headers when CR, LF, NUL or another
// control character sits in a header value or the Request-URI (answering raw would
// echo them); the RFC 3261 checks of validateRequest. ACKs are never answered.
// Everything else goes to the method's handler.
func (s *Server) serve(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	src := req.Source()
	if !strings.EqualFold(req.Transport(), "udp") {
		ip, err := netip.ParseAddr(hostOf(src))
		var ua []byte
		if h := req.GetHeader("User-Agent"); h != nil {
			ua = []byte(h.Value())
		}
		if err == nil {
			if reason := s.dropReason(ip.Unmap(), ua); reason != "" {
				s.dropped(reason, src, "")
				return
			}
		}
	}
	if max := s.cfg.limits.MaxMessage; max > 0 && messageSize(req) > max {
		s.dropped("oversize", src, "")
		if !req.IsAck() {
			s.respond(req, tx, 413, "Request Entity Too Large")
		}
		return
	}
	if !cleanRequest(req) {
		s.log.Warn("sip request with control characters refused", "method", sanitizeHeaderValue(string(req.Method)), "source", src)
		s.metrics.dropped.WithLabelValues("control_chars").Inc()
		if !req.IsAck() && !strings.ContainsAny(string(req.Method), "\r\n\x00 ") {
			res := sipmsg.NewResponseFromRequest(req, 400, "Bad Request", nil)
			sanitizeResponse(res)
			if err := tx.Respond(res); err != nil {
				s.log.Debug("sip respond failed", "status", 400, "source", src, "error", err)
			}
		}
		return
	}
	if code, reason := validateRequest(req); code != 0 {
		s.metrics.dropped.WithLabelValues("invalid").Inc()
		s.log.Info("sip request refused", "status", code, "reason", reason, "method", req.Method, "source", src)
		if !req.IsAck() {
			var hdrs []sipmsg.Header
			if code == 420 {
				hdrs = append(hdrs, sipmsg.NewHeader("Unsupported", unsupportedOf(req, "Proxy-Require")))
			}
			s.respond(req, tx, code, reason, hdrs...)
		}
		return
	}
	s.handlerFor(req.Method)(req, tx)
}

func cleanRequest(req *sipmsg.Request) bool {
	if strings.ContainsAny(req.Recipient.String(), "\r\n\x00") || strings.ContainsAny(string(req.Method), "\r\n\x00 ") {
		return false
	}
	for _, h := range req.Headers() {
		if strings.ContainsAny(h.Name(), "\r\n\x00") || strings.ContainsAny(h.Value(), "\r\n\x00") {
			return false
		}
	}
	return true
}

// handlerFor maps a method to its handler; the fuzz test calls it unguarded so a
// panic is found rather than recovered.
func (s *Server) handlerFor(m sipmsg.RequestMethod) sipgo.RequestHandler {
	switch m {
	case sipmsg.REGISTER:
		return s.handleRegister
	case sipmsg.INVITE:
		return s.handleInvite
	case sipmsg.ACK:
		return s.handleAck
	case sipmsg.BYE:
		return s.handleBye
	case sipmsg.CANCEL:
		return s.handleCancel
	case sipmsg.OPTIONS:
		return s.handleOptions
	}
	return s.handleOther
}

// guard keeps a panic in one request from taking the desk down.
func (s *Server) guard(f sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("sip handler panic", "panic", r, "method", req.Method, "source", req.Source())
				if tx != nil && !req.IsAck() {
					_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
				}
			}
		}()
		f(req, tx)
	}
}

// Listen binds UDP and TCP on addr ("host:port"; port 0 picks a port free on both).
func (s *Server) Listen(ctx context.Context, addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udp != nil {
		return ErrAlreadyListening
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("sip: listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("sip: listen port %q: %w", portStr, err)
	}
	var lc net.ListenConfig
	tries := 1
	if port == 0 {
		tries = 10
	}
	var lastErr error
	for i := 0; i < tries; i++ {
		u, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			lastErr = err
			continue
		}
		uport := u.LocalAddr().(*net.UDPAddr).Port
		t, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(uport)))
		if err != nil {
			u.Close()
			lastErr = err
			continue
		}
		s.udp, s.tcp, s.port = u, t, uport
		s.listenIP = u.LocalAddr().(*net.UDPAddr).IP
		break
	}
	if s.udp == nil {
		if port == 0 {
			return fmt.Errorf("sip: %w: %w", ErrNoFreePort, lastErr)
		}
		return fmt.Errorf("sip: listen %s: %w", addr, lastErr)
	}
	s.host = sanitizeHost(s.cfg.host)
	if s.host == "" {
		s.host = defaultHost(s.listenIP)
	}
	if s.cfg.domain == "" {
		s.cfg.domain = s.host
	}
	if s.nonces == nil {
		s.nonces = &nonces{key: s.cfg.nonceKey, realm: sanitizeToken(s.cfg.domain), ttl: s.cfg.nonceTTL, now: s.now}
	}
	s.log.Info("sip listening", "addr", s.addrLocked(), "host", s.host, "domain", s.cfg.domain)
	return nil
}

func defaultHost(ip net.IP) string {
	if ip != nil && !ip.IsUnspecified() {
		return ip.String()
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// Serve serves the bound listeners until ctx is cancelled, then closes them and the
// SIP stack. It returns nil on a clean shutdown.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	u, t := s.udp, s.tcp
	s.mu.Unlock()
	if u == nil {
		return ErrNotListening
	}
	errc := make(chan error, 2)
	go func() { errc <- s.srv.ServeUDP(u) }()
	go func() { errc <- s.srv.ServeTCP(t) }()
	waitUDPServing(s.ua.TransportLayer(), u.LocalAddr().String())
	s.readyOnce.Do(func() { close(s.ready) })
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if err != nil {
			err = fmt.Errorf("sip: serve: %w", err)
		}
	}
	u.Close()
	t.Close()
	_ = s.ua.Close()
	return err
}

// ListenAndServe binds (see Listen) and serves (closing Ready) until ctx is cancelled.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	if err := s.Listen(ctx, addr); err != nil {
		return err
	}
	return s.Serve(ctx)
}

// waitUDPServing waits until sipgo has the UDP listener in its pool: before that,
// a request sent "from" the listener address would try to bind it a second time.
func waitUDPServing(tp *sipmsg.TransportLayer, addr string) {
	for i := 0; i < 200; i++ {
		if c, err := tp.GetConnection("udp", addr); err == nil && c != nil {
			_, _ = c.TryClose()
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Ready is closed once Serve runs: the listeners are bound, Addr is valid and
// requests are being served.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the bound host:port, or "" before Listen.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrLocked()
}

func (s *Server) addrLocked() string {
	if s.udp == nil {
		return ""
	}
	return net.JoinHostPort(s.listenIP.String(), strconv.Itoa(s.port))
}

// Drain makes new INVITEs get 503 with Retry-After; calls in progress continue.
func (s *Server) Drain() { s.draining.Store(true) }

// Active counts INVITEs being proxied plus answered calls not yet ended by a BYE.
func (s *Server) Active() int { return int(s.inflight.Load()) + s.dialogs.len() }

// CachedBindings returns the user's bindings this node last accepted, for a Handler
// whose store is unavailable.
func (s *Server) CachedBindings(user string) []Binding { return s.cache.get(user, time.Now()) }

func (s *Server) destAllowed(dest string) bool {
	return s.allowDest == nil || s.allowDest(dest)
}

// isOurs tells whether host[:port] names this server: the domain, the Via host, the
// listen IP or, when listening on all interfaces, a local address or "localhost".
func (s *Server) isOurs(u sipmsg.Uri) bool {
	host := strings.Trim(strings.ToLower(u.Host), "[]")
	if s.cfg.front != "" && strings.EqualFold(host, s.cfg.frontHost) && (u.Port == s.cfg.frontPort || u.Port == 0 && s.cfg.frontPort == 5060) {
		return true // the front's address stands for every node behind it
	}
	if u.Port != 0 && u.Port != s.port {
		return false
	}
	if host == "" {
		return false
	}
	if host == strings.ToLower(s.cfg.domain) || host == strings.ToLower(s.host) {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	if s.listenIP != nil && !s.listenIP.IsUnspecified() {
		lip, _ := netip.AddrFromSlice(s.listenIP)
		return lip.Unmap() == ip.Unmap()
	}
	if ip.IsLoopback() {
		return true
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if na, ok := netip.AddrFromSlice(n.IP); ok && na.Unmap() == ip.Unmap() {
				return true
			}
		}
	}
	return false
}

// respond answers a request, logging a failure that can only be a transport error.
func (s *Server) respond(req *sipmsg.Request, tx sipmsg.ServerTransaction, code int, reason string, hdrs ...sipmsg.Header) {
	res := sipmsg.NewResponseFromRequest(req, code, reason, nil)
	res.AppendHeader(sipmsg.NewHeader("Server", sanitizeHeaderValue(s.cfg.userAgent)))
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Warn("sip respond failed", "status", code, "method", req.Method, "source", req.Source(), "error", err)
	}
}

const allowMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, PRACK, REFER, NOTIFY, MESSAGE"

func (s *Server) handleOptions(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if r := req.Route(); r != nil && s.isOurs(r.Address) && hasForeignHop(s, req) {
		s.forwardInDialog(req, tx)
		return
	}
	if !s.isOurs(req.Recipient) {
		s.respond(req, tx, 403, "Relay Denied")
		return
	}
	if s.draining.Load() {
		// A dispatcher probing with OPTIONS stops sending calls to a draining node.
		s.respond(req, tx, 503, "Service Unavailable", sipmsg.NewHeader("Retry-After", strconv.Itoa(s.cfg.retryAfter)))
		return
	}
	s.respond(req, tx, 200, "OK",
		sipmsg.NewHeader("Allow", allowMethods),
		sipmsg.NewHeader("Accept", "application/sdp"))
}

// hasForeignHop tells whether, after our own Route entries, the request still has
// somewhere else to go (a further Route or a foreign Request-URI).
func hasForeignHop(s *Server, req *sipmsg.Request) bool {
	for _, h := range req.GetHeaders("Route") {
		if r, ok := h.(*sipmsg.RouteHeader); ok && !s.isOurs(r.Address) {
			return true
		}
	}
	return !s.isOurs(req.Recipient)
}

func (s *Server) handleCancel(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	// A CANCEL matching an INVITE we proxy is absorbed by the transaction layer; this
	// one matched nothing.
	s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

var knownMethods = map[sipmsg.RequestMethod]bool{
	sipmsg.INVITE: true, sipmsg.ACK: true, sipmsg.CANCEL: true, sipmsg.BYE: true,
	sipmsg.REGISTER: true, sipmsg.OPTIONS: true, sipmsg.SUBSCRIBE: true, sipmsg.NOTIFY: true,
	sipmsg.REFER: true, sipmsg.INFO: true, sipmsg.MESSAGE: true, sipmsg.PRACK: true,
	sipmsg.UPDATE: true, sipmsg.PUBLISH: true,
}

// handleOther relays in-dialog requests (re-INVITE is in handleInvite) and refuses the
// rest cleanly.
func (s *Server) handleOther(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if r := req.Route(); r != nil && s.isOurs(r.Address) {
		s.forwardInDialog(req, tx)
		return
	}
	if !s.isOurs(req.Recipient) {
		s.log.Warn("sip relay denied", "method", req.Method, "ruri", req.Recipient.Host, "source", req.Source())
		s.respond(req, tx, 403, "Relay Denied")
		return
	}
	if !knownMethods[req.Method] {
		s.respond(req, tx, 501, "Not Implemented", sipmsg.NewHeader("Allow", allowMethods))
		return
	}
	if req.To() != nil {
		if _, ok := req.To().Params.Get("tag"); ok {
			s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
			return
		}
	}
	s.respond(req, tx, 405, "Method Not Allowed", sipmsg.NewHeader("Allow", allowMethods))
}

// onStrayResponse sees responses no client transaction matched: mostly 2xx
// retransmissions after our INVITE transaction is gone. Forward them statelessly on
// the Via path so the caller can still ACK.
func (s *Server) onStrayResponse(res *sipmsg.Response) {
	via := res.Via()
	if via == nil || !res.IsSuccess() || res.CSeq() == nil || res.CSeq().MethodName != sipmsg.INVITE {
		return
	}
	if !strings.EqualFold(via.Host, s.host) || (via.Port != 0 && via.Port != s.port) {
		return
	}
	up := res.Clone()
	up.RemoveHeader("Via")
	next := up.Via()
	if next == nil {
		return
	}
	up.SetDestination("")
	up.SetTransport(next.Transport)
	up.SetDestination(up.Destination())
	if err := s.ua.TransportLayer().WriteMsg(up); err != nil {
		s.log.Debug("sip stray 2xx relay failed", "error", err)
	}
}
