package sip

import (
	"bytes"
	"container/list"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// DefaultScannerUserAgents are User-Agent substrings (compared case-insensitively) of
// SIP scanners and toll-fraud tools; their requests are dropped without an answer.
var DefaultScannerUserAgents = []string{
	"friendly-scanner", "sipvicious", "sipcli", "vaxsipuseragent", "pplsip",
	"sundayddr", "sipsak", "sip-scan", "iwar", "sivus", "smap", "nmap", "svcrack",
	"svwar", "sipscan", "eyebeam-scan", "gulp", "voipbuster-scan", "fake-ua",
}

// Limits are the abuse limits of a Server. A zero field turns that limit off.
//
// cmd/desk should expose at least RequestRate/RequestBurst (DESK_SIP_RATE,
// DESK_SIP_BURST), FailuresPerIP/FailuresPerUser (DESK_SIP_AUTH_FAILURES_IP,
// DESK_SIP_AUTH_FAILURES_USER) and MaxMessage (DESK_SIP_MAX_MESSAGE).
type Limits struct {
	// RequestRate is the sustained requests per second allowed from one source IP,
	// RequestBurst how many may come at once. Excess requests are dropped before
	// parsing (UDP) or before any handler or store work (TCP). Responses are not
	// counted. Sources in WithTrustedTrunks are exempt; loopback is not.
	RequestRate  float64
	RequestBurst int
	// FailuresPerIP and FailuresPerUser are how many failed REGISTER authentications
	// a source IP, or a login, may have within FailureWindow; past that, REGISTERs
	// from that IP (or for that login, unless from an address the login is
	// registered from) get 403 without looking the user up.
	FailuresPerIP   int
	FailuresPerUser int
	FailureWindow   time.Duration
	// MaxMessage is the largest SIP message accepted, in bytes; a larger request
	// that still parses gets 413, anything beyond what the parser takes (64 KiB) is
	// dropped (on TCP the connection is closed).
	MaxMessage int
	// ScannerUserAgents are matched case-insensitively as substrings of User-Agent;
	// nil means DefaultScannerUserAgents, an empty non-nil slice turns it off.
	ScannerUserAgents []string
}

// DefaultLimits: generous enough for a desk behind one office NAT and a 20 call/s
// load from one trunk address, tight enough to make a scanner flood cheap.
func DefaultLimits() Limits {
	return Limits{
		RequestRate:     100,
		RequestBurst:    200,
		FailuresPerIP:   5,
		FailuresPerUser: 10,
		FailureWindow:   time.Minute,
		MaxMessage:      32 << 10,
	}
}

// maxTracked bounds every per-key table below, so a spoofed-source flood costs
// bounded memory; the least recently used keys are forgotten first.
const maxTracked = 65536

// lru is a bounded map with least-recently-used eviction. Not safe for concurrent
// use; callers hold their own lock.
type lru[V any] struct {
	max   int
	ll    *list.List
	items map[string]*list.Element
}

type lruEntry[V any] struct {
	key string
	val V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, ll: list.New(), items: make(map[string]*list.Element)}
}

// get returns a pointer to the value for key, creating it with mk when absent.
func (c *lru[V]) get(key string, mk func() V) *V {
	if e, ok := c.items[key]; ok {
		c.ll.MoveToFront(e)
		return &e.Value.(*lruEntry[V]).val
	}
	ent := &lruEntry[V]{key: key, val: mk()}
	c.items[key] = c.ll.PushFront(ent)
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*lruEntry[V]).key)
	}
	return &ent.val
}

func (c *lru[V]) peek(key string) (*V, bool) {
	if e, ok := c.items[key]; ok {
		return &e.Value.(*lruEntry[V]).val, true
	}
	return nil, false
}

func (c *lru[V]) len() int { return c.ll.Len() }

// rateLimiter is a token bucket per key.
type rateLimiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	now     func() time.Time
	buckets *lru[bucket]
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int, now func() time.Time) *rateLimiter {
	if rate <= 0 {
		return nil
	}
	if burst < 1 {
		burst = int(rate) + 1
	}
	return &rateLimiter{rate: rate, burst: float64(burst), now: now, buckets: newLRU[bucket](maxTracked)}
}

// allow takes a token for key; false means the request is over the limit.
func (r *rateLimiter) allow(key string) bool {
	if r == nil {
		return true
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets.get(key, func() bucket { return bucket{tokens: r.burst, last: now} })
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(r.burst, b.tokens+el*r.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// failureCounter counts failures per key in fixed windows.
type failureCounter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	now    func() time.Time
	keys   *lru[window]
}

type window struct {
	start time.Time
	n     int
}

func newFailureCounter(limit int, win time.Duration, now func() time.Time) *failureCounter {
	if limit <= 0 {
		return nil
	}
	if win <= 0 {
		win = time.Minute
	}
	return &failureCounter{limit: limit, window: win, now: now, keys: newLRU[window](maxTracked)}
}

func (f *failureCounter) current(w *window, now time.Time) {
	if now.Sub(w.start) >= f.window || now.Before(w.start) {
		w.start, w.n = now, 0
	}
}

// blocked tells whether key has used up its failures in the current window.
func (f *failureCounter) blocked(key string) bool {
	if f == nil || key == "" {
		return false
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.keys.peek(key)
	if !ok {
		return false
	}
	f.current(w, now)
	return w.n >= f.limit
}

func (f *failureCounter) add(key string) {
	if f == nil || key == "" {
		return
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.keys.get(key, func() window { return window{start: now} })
	f.current(w, now)
	w.n++
}

// replayGuard remembers, per user and nonce, the highest nonce count accepted, so an
// authorized REGISTER captured on the wire cannot be sent again. Entries live as long
// as their nonce is accepted (nonce TTL plus the one minute of clock skew allowed);
// past that a replay meets a stale nonce anyway.
type replayGuard struct {
	mu   sync.Mutex
	ttl  time.Duration
	now  func() time.Time
	seen *lru[nonceUse]
}

type nonceUse struct {
	nc      uint64
	expires time.Time
}

func newReplayGuard(ttl time.Duration, now func() time.Time) *replayGuard {
	return &replayGuard{ttl: ttl + time.Minute, now: now, seen: newLRU[nonceUse](maxTracked)}
}

// accept records (user, nonce, nc) and tells whether it is fresh: nc must be higher
// than any count already accepted for this nonce and user. The RFC 2069 form (no qop,
// nc 0) may therefore use a nonce once.
func (g *replayGuard) accept(user, nonce string, nc uint64) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	key := user + "\x00" + nonce
	u, ok := g.seen.peek(key)
	if ok && now.Before(u.expires) && nc <= u.nc {
		return false
	}
	u = g.seen.get(key, func() nonceUse { return nonceUse{} })
	u.nc, u.expires = nc, now.Add(g.ttl)
	return true
}

// abuse holds the Server's abuse limits and their state.
type abuse struct {
	lim      Limits
	rate     *rateLimiter
	perIP    *failureCounter
	perUser  *failureCounter
	replay   *replayGuard
	scanners [][]byte
	// noisy rate-limits the log lines of dropped packets: one per source and minute.
	noisy *failureCounter
}

func newAbuse(lim Limits, nonceTTL time.Duration, now func() time.Time) *abuse {
	a := &abuse{
		lim:     lim,
		rate:    newRateLimiter(lim.RequestRate, lim.RequestBurst, now),
		perIP:   newFailureCounter(lim.FailuresPerIP, lim.FailureWindow, now),
		perUser: newFailureCounter(lim.FailuresPerUser, lim.FailureWindow, now),
		replay:  newReplayGuard(nonceTTL, now),
		noisy:   newFailureCounter(1, time.Minute, now),
	}
	uas := lim.ScannerUserAgents
	if uas == nil {
		uas = DefaultScannerUserAgents
	}
	for _, ua := range uas {
		if ua = strings.TrimSpace(ua); ua != "" {
			a.scanners = append(a.scanners, []byte(strings.ToLower(ua)))
		}
	}
	return a
}

// isScannerUA tells whether a User-Agent value names a known scanner.
func (a *abuse) isScannerUA(ua []byte) bool {
	if len(ua) == 0 || len(a.scanners) == 0 {
		return false
	}
	low := bytes.ToLower(ua)
	for _, s := range a.scanners {
		if bytes.Contains(low, s) {
			return true
		}
	}
	return false
}

// rawUserAgent finds the User-Agent value in the header section of a raw message
// without parsing it; nil when there is none.
func rawUserAgent(data []byte) []byte {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var line []byte
		if i < 0 {
			line, data = data, nil
		} else {
			line, data = data[:i], data[i+1:]
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			return nil // end of headers
		}
		if len(line) > 11 && bytes.EqualFold(line[:10], []byte("user-agent")) {
			rest := bytes.TrimLeft(line[10:], " \t")
			if len(rest) > 0 && rest[0] == ':' {
				return bytes.TrimSpace(rest[1:])
			}
		}
	}
	return nil
}

// isResponse tells a raw SIP response from a request by its start line.
func isResponse(data []byte) bool { return bytes.HasPrefix(data, []byte("SIP/")) }

// dropReason says why a request from ip must be dropped without an answer, or "".
// It runs before parsing on UDP and before the handler on TCP.
func (s *Server) dropReason(ip netip.Addr, ua []byte) string {
	if s.abuse.isScannerUA(ua) {
		return "scanner"
	}
	if s.trustedAddr(ip) || s.isFront(ip.String()) || s.cfg.bridge != "" && hostOf(s.cfg.bridge) == ip.String() {
		return "" // our own media bridge carries many calls from one address
	}
	if !s.abuse.rate.allow(ip.String()) {
		return "rate"
	}
	return ""
}

// readFilter is the transport read filter: on UDP it drops scanner requests and
// requests over the per-source rate before sipgo parses them or creates a
// transaction. A stream read is not a message, so TCP is checked after parsing
// (serve).
func (s *Server) readFilter(p sipmsg.TransportReadProps, data []byte) ([]byte, error) {
	if !strings.EqualFold(p.Transport, "udp") || isResponse(data) {
		return data, nil
	}
	ua, ok := p.RemoteAddr.(*net.UDPAddr)
	if !ok {
		return data, nil
	}
	ip, _ := netip.AddrFromSlice(ua.IP)
	if reason := s.dropReason(ip.Unmap(), rawUserAgent(data)); reason != "" {
		s.dropped(reason, ua.String(), "")
		return nil, nil
	}
	return data, nil
}

// dropped counts a dropped message and logs it at most once a minute per source and
// reason, so a flood cannot flood the log too.
func (s *Server) dropped(reason, source, user string) {
	s.metrics.dropped.WithLabelValues(reason).Inc()
	host := hostOf(source)
	if s.abuse.noisy.blocked(reason + "|" + host) {
		return
	}
	s.abuse.noisy.add(reason + "|" + host)
	s.log.Warn("sip request dropped", "reason", reason, "source", source, "ip", host,
		"user", sanitizeHeaderValue(user), "note", "further drops from this ip and reason are not logged for a minute")
}

// authFailure counts a failed REGISTER authentication against the source IP and the
// login and logs it in the fail2ban-friendly form documented in docs/security.md.
func (s *Server) authFailure(source, user, reason string) {
	ip := hostOf(source)
	if !s.isFront(ip) { // the front carries every phone: one bad phone must not lock out all
		s.abuse.perIP.add(ip)
	}
	s.abuse.perUser.add(user)
	s.metrics.authFailures.WithLabelValues(reason).Inc()
	s.log.Warn("sip auth failure", "ip", ip, "source", source, "user", sanitizeHeaderValue(user), "reason", reason)
}

// authThrottled tells whether a REGISTER from source for user must be refused without
// checking it: the IP has failed too often, or the login has and this source is not
// one the login is currently registered from (so a flood against a login does not lock
// out the phones already registered with it).
func (s *Server) authThrottled(source, user string) bool {
	ip := hostOf(source)
	if !s.isFront(ip) && s.abuse.perIP.blocked(ip) {
		return true
	}
	if s.abuse.perUser.blocked(user) {
		for _, b := range s.cache.get(user, time.Now()) {
			if hostOf(b.Source) == ip {
				return false
			}
		}
		return true
	}
	return false
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// isFront tells whether ip is the SIP front's (WithFront).
func (s *Server) isFront(ip string) bool {
	return s.cfg.front != "" && strings.EqualFold(strings.Trim(ip, "[]"), s.cfg.frontHost)
}

// fromBridge tells whether a request came from the media bridge (WithBridge): the
// exact ip:port, as phones on the same host share its IP.
func (s *Server) fromBridge(source string) bool {
	return s.cfg.bridge != "" && source == s.cfg.bridge
}

func (s *Server) trustedAddr(ip netip.Addr) bool {
	for _, p := range s.cfg.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
