package sip

import (
	"crypto/rand"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults used when an option is not given.
const (
	DefaultRingTimeout = 20 * time.Second
	DefaultNonceTTL    = 5 * time.Minute
	DefaultMinExpires  = 60
	DefaultMaxExpires  = 3600
	// DefaultRetryAfter is the Retry-After, in seconds, of the 503 a draining server answers.
	DefaultRetryAfter = 30
)

type config struct {
	log             *slog.Logger
	domain          string
	host            string
	ringTimeout     time.Duration
	trusted         []netip.Prefix
	nonceKey        []byte
	nonceTTL        time.Duration
	registerer      prometheus.Registerer
	userAgent       string
	minExpires      int
	maxExpires      int
	retryAfter      int
	maxHunts        int
	inDialogTimeout time.Duration
	limits          Limits
	now             func() time.Time
	front           string // host:port of the SIP front (dispatcher), "" when none
	frontHost       string
	frontPort       int
	bridge          string // ip:port the media bridge sends from (WithBridge), "" when none
}

func defaultConfig() config {
	return config{
		log:             slog.New(slog.DiscardHandler),
		ringTimeout:     DefaultRingTimeout,
		nonceTTL:        DefaultNonceTTL,
		userAgent:       "calldesk",
		minExpires:      DefaultMinExpires,
		maxExpires:      DefaultMaxExpires,
		retryAfter:      DefaultRetryAfter,
		maxHunts:        16,
		inDialogTimeout: 32 * time.Second,
		limits:          DefaultLimits(),
		now:             time.Now,
	}
}

// Option configures a Server.
type Option func(*config)

// WithLogger sets the logger; the default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithDomain sets the SIP domain, which is also the digest realm. Requests whose
// Request-URI names it are ours.
func WithDomain(d string) Option { return func(c *config) { c.domain = d } }

// WithHost sets the address written in Via and Record-Route. It defaults to the listen
// IP, or to the first non-loopback interface address when listening on all interfaces;
// set it in production when the desk sits behind a NAT or has several addresses.
func WithHost(h string) Option { return func(c *config) { c.host = h } }

// WithRingTimeout sets how long a target rings when the Decision gives no RingTimeout.
func WithRingTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.ringTimeout = d
		}
	}
}

// WithTrustedTrunks lists the source networks whose P-Asserted-Identity is believed.
func WithTrustedTrunks(p []netip.Prefix) Option {
	return func(c *config) { c.trusted = append([]netip.Prefix(nil), p...) }
}

// WithNonceKey sets the HMAC key of the stateless digest nonces. Give every desk node
// behind one address the same key so a nonce issued by one verifies on another. The
// default is a random key per process, so nonces do not survive a restart.
func WithNonceKey(k []byte) Option {
	return func(c *config) {
		if len(k) > 0 {
			c.nonceKey = append([]byte(nil), k...)
		}
	}
}

// WithNonceTTL sets how long a nonce is accepted before the answer is 401 stale=true.
func WithNonceTTL(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.nonceTTL = d
		}
	}
}

// WithRegisterer registers the SIP metrics there; without it they are not exported.
func WithRegisterer(r prometheus.Registerer) Option { return func(c *config) { c.registerer = r } }

// WithUserAgent sets the User-Agent/Server header value.
func WithUserAgent(ua string) Option {
	return func(c *config) {
		if ua != "" {
			c.userAgent = ua
		}
	}
}

// WithExpiresRange sets the registration interval bounds in seconds: a REGISTER below
// min gets 423 Interval Too Brief, one above max is shortened to max.
func WithExpiresRange(minSec, maxSec int) Option {
	return func(c *config) {
		if minSec > 0 && maxSec >= minSec {
			c.minExpires, c.maxExpires = minSec, maxSec
		}
	}
}

// WithRetryAfter sets the Retry-After seconds of the 503 answered while draining.
func WithRetryAfter(sec int) Option {
	return func(c *config) {
		if sec > 0 {
			c.retryAfter = sec
		}
	}
}

// WithLimits sets the abuse limits (request rate per source, failed-auth throttling,
// maximum message size, scanner User-Agents); see Limits and DefaultLimits. A zero
// field turns that limit off.
func WithLimits(l Limits) Option { return func(c *config) { c.limits = l } }

// WithFront names the SIP front (host:port, e.g. a Kamailio dispatcher) that
// phones and trunks reach this desk node through, when several nodes share one
// Redis. The node's Record-Route then names the front, with the node's own
// address in a "dn" URI parameter, so in-dialog requests come back through the
// front: it sends them to this node while it lives and to any other node when it
// does not, and any node can route them (the desk routes in-dialog requests by
// their Route set, not by memory). Requests whose Request-URI or Route names the
// front are this node's. The front's address is exempt from the per-source
// request rate and the per-IP failed-auth throttle, as it carries every phone's
// traffic; the front must apply those itself (Kamailio's pike module).
func WithFront(hostport string) Option { return func(c *config) { c.front = hostport } }

// WithBridge names the media bridge (package sip/b2bua) by the ip:port it sends SIP
// from. Media-mode calls are handed to it (Decision.Media), and requests from exactly
// that address are the bridge's own legs: their X-Desk-Leg header is believed (Invite.Leg)
// and they skip the per-source limits. From anywhere else X-Desk-* headers are removed
// before a request is forwarded, so nobody outside can steer the bridge.
func WithBridge(ipport string) Option { return func(c *config) { c.bridge = ipport } }

// WithClock sets the clock of nonces, rate limits and failure windows; for tests.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

func (c *config) finish() {
	c.userAgent = sanitizeHeaderValue(c.userAgent)
	c.host = sanitizeHost(c.host)
	if len(c.nonceKey) == 0 {
		c.nonceKey = make([]byte, 32)
		_, _ = rand.Read(c.nonceKey)
	}
	if c.front != "" {
		if h, p, err := net.SplitHostPort(c.front); err == nil {
			c.frontHost = sanitizeHost(strings.Trim(h, "[]"))
			c.frontPort, _ = strconv.Atoi(p)
		} else {
			c.frontHost, c.frontPort = sanitizeHost(c.front), 5060
		}
		if c.frontHost == "" {
			c.front = ""
		}
	}
	if c.maxExpires < c.minExpires {
		c.maxExpires = c.minExpires
	}
}
