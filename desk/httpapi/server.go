// Package httpapi is the desk's HTTP side on echo v4: the session, users,
// contacts, live calls and operators API, the websocket entry point that hands
// authenticated pages to the hub, health and metrics, and the embedded pages.
//
// Security choices, in one place:
//   - The session cookie "desk_session" is HttpOnly, Path=/, Secure on TLS, and
//     SameSite=Lax. Lax (not Strict) so that following a link to the desk from a
//     mail or a CRM opens it logged in; Lax already keeps the cookie off
//     cross-site subrequests and POSTs, and the checks below cover the rest.
//   - Cookie-authenticated requests that change state (POST, PUT, PATCH, DELETE,
//     except the login itself) must be Content-Type: application/json, which a
//     cross-site form cannot send without a CORS preflight we never grant, and,
//     when the browser sends Origin, come from this desk's own origin.
//   - The websocket requires the session cookie and an Origin equal to the desk's
//     own scheme://host (or one of WithAllowedOrigins). A missing Origin is
//     refused: browsers always send it on websockets, so only a non-browser
//     client would omit it, and it can set it.
//   - Every response carries a strict Content-Security-Policy (no inline script),
//     nosniff, Referrer-Policy same-origin and X-Frame-Options DENY.
package httpapi

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/hub"
)

// CookieName is the session cookie.
const CookieName = "desk_session"

// maxBody is the largest request body accepted.
const maxBody = 64 << 10

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithStatic serves the pages from fsys (index.html at /).
func WithStatic(fsys fs.FS) Option { return func(s *Server) { s.static = fsys } }

// WithRegion sets the country assumed for numbers without a country code.
func WithRegion(region string) Option { return func(s *Server) { s.region = region } }

// WithRealm sets the SIP digest realm used to derive operators' SIP credentials.
func WithRealm(realm string) Option { return func(s *Server) { s.realm = realm } }

// WithReady adds a readiness check to /readyz besides the store's Ping.
func WithReady(f func(ctx context.Context) error) Option { return func(s *Server) { s.ready = f } }

// WithRegisterer registers the HTTP metrics.
func WithRegisterer(r prometheus.Registerer) Option { return func(s *Server) { s.reg = r } }

// WithGatherer sets what /metrics serves (default prometheus.DefaultGatherer).
func WithGatherer(g prometheus.Gatherer) Option { return func(s *Server) { s.gatherer = g } }

// WithLiveCalls replaces store.LiveCalls as the source of live calls, e.g. with
// the switchboard's view that also holds calls routed during a Redis outage.
func WithLiveCalls(f func(ctx context.Context) ([]*desk.Call, error)) Option {
	return func(s *Server) { s.liveCalls = f }
}

// WithAllowedOrigins adds origins (scheme://host[:port]) accepted besides the
// desk's own, e.g. the public origin when a TLS proxy sits in front.
func WithAllowedOrigins(origins ...string) Option {
	return func(s *Server) {
		for _, o := range origins {
			s.origins[strings.TrimRight(strings.ToLower(o), "/")] = true
		}
	}
}

// WithTrustedProxies makes the client address of a request the one the nearest
// untrusted hop put in X-Forwarded-For, when the request comes through one of
// nets (e.g. the TLS proxy in front). Without it the client address is the TCP
// peer's and X-Forwarded-For is ignored, so a client cannot pick its own address
// to escape the login throttle or to frame another in the logs.
func WithTrustedProxies(nets ...*net.IPNet) Option {
	return func(s *Server) { s.proxies = append(s.proxies, nets...) }
}

// WithSessionTTL sets how long a login lasts (default 12h).
func WithSessionTTL(d time.Duration) Option { return func(s *Server) { s.sessionTTL = d } }

// Server is the desk's HTTP server. It is an http.Handler.
type Server struct {
	e          *echo.Echo
	store      desk.Store
	hub        *hub.Hub
	log        *slog.Logger
	static     fs.FS
	region     string
	realm      string
	ready      func(ctx context.Context) error
	reg        prometheus.Registerer
	gatherer   prometheus.Gatherer
	liveCalls  func(ctx context.Context) ([]*desk.Call, error)
	origins    map[string]bool
	sessionTTL time.Duration
	m          *metrics
	sales      SalesDesk
	deliveries DeliverySource
	loc        *time.Location
	now        func() time.Time
	board      func(ctx context.Context) (any, error)
	reports    ReportsDesk
	supervisor SupervisorDesk
	loginLimit LoginLimit
	limiter    *loginLimiter
	proxies    []*net.IPNet
	// Media mode: see media.go.
	monitor        MonitorDesk
	callbacks      CallbackDesk
	recordings     desk.Recordings
	recordingRoles []desk.Role

	dummyOnce sync.Once
	dummyHash string
}

// New returns the server. hub may be nil in tools that need no websocket.
func New(store desk.Store, h *hub.Hub, opts ...Option) *Server {
	s := &Server{
		store:      store,
		hub:        h,
		log:        slog.Default(),
		region:     "RU",
		gatherer:   prometheus.DefaultGatherer,
		origins:    map[string]bool{},
		sessionTTL: 12 * time.Hour,
		loginLimit: DefaultLoginLimit,
	}
	for _, o := range opts {
		o(s)
	}
	if s.liveCalls == nil {
		s.liveCalls = store.LiveCalls
	}
	s.m = newMetrics(s.reg)
	s.limiter = newLoginLimiter(s.loginLimit, s.clock)
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = echo.ExtractIPDirect()
	if len(s.proxies) > 0 {
		trust := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, n := range s.proxies {
			trust = append(trust, echo.TrustIPRange(n))
		}
		e.IPExtractor = echo.ExtractIPFromXFFHeader(trust...)
	}
	e.HTTPErrorHandler = s.handleError
	e.Use(s.securityHeaders, s.observe, s.limitBody, s.authenticate, s.csrf)
	s.routes(e)
	s.e = e
	return s
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.e.ServeHTTP(w, r) }

// Echo returns the underlying router, for wiring further endpoints.
func (s *Server) Echo() *echo.Echo { return s.e }

func (s *Server) routes(e *echo.Echo) {
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{})))

	api := e.Group("/api")
	api.POST("/session", s.login)
	api.GET("/session", s.session, requireUser)
	api.DELETE("/session", s.logout, requireUser)
	api.POST("/users", s.createUser, requireRole(desk.RoleAdmin))
	api.GET("/users", s.listUsers, requireRole(desk.RoleSupervisor, desk.RoleAdmin))
	api.POST("/contacts", s.createContact, requireUser)
	api.GET("/contacts", s.findContact, requireUser)
	api.GET("/contacts/:id", s.getContact, requireUser)
	api.GET("/calls/live", s.liveCallsHandler, requireUser)
	api.GET("/operators", s.operators, requireRole(desk.RoleSupervisor, desk.RoleAdmin))
	s.salesRoutes(api)
	s.reportRoutes(api)
	s.supervisorRoutes(api)
	s.mediaRoutes(api)
	api.Any("/*", func(c echo.Context) error { return echo.ErrNotFound })

	e.GET("/ws", s.websocket, requireUser)

	if s.static != nil {
		files := http.FileServerFS(s.static)
		e.GET("/*", echo.WrapHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The pages are small and change with each release; make the browser ask.
			w.Header().Set("Cache-Control", "no-cache")
			files.ServeHTTP(w, r)
		})))
	}
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": "store: " + err.Error()})
	}
	if s.ready != nil {
		if err := s.ready(ctx); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// apiError is every error body.
type apiError struct {
	Error string `json:"error"`
	// Field names the offending input field, when there is one.
	Field string `json:"field,omitempty"`
}

// fieldError is a validation failure of one input field.
type fieldError struct {
	status int
	field  string
	msg    string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func badField(field, msg string) error {
	return &fieldError{status: http.StatusBadRequest, field: field, msg: msg}
}

// handleError turns every error into {"error": "..."} with a fitting status;
// the domain sentinels map onto HTTP statuses here and nowhere else.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := http.StatusInternalServerError, apiError{Error: "internal error"}
	var he *echo.HTTPError
	var fe *fieldError
	switch {
	case errors.As(err, &fe):
		status, body = fe.status, apiError{Error: fe.Error(), Field: fe.field}
	case errors.As(err, &he):
		status = he.Code
		if m, ok := he.Message.(string); ok {
			body.Error = m
		} else {
			body.Error = strings.ToLower(http.StatusText(he.Code))
		}
	case errors.Is(err, desk.ErrUnavailable):
		status, body.Error = http.StatusServiceUnavailable, "store unavailable"
	case errors.Is(err, desk.ErrNotFound):
		status, body.Error = http.StatusNotFound, "not found"
	case errors.Is(err, desk.ErrExists):
		status, body.Error = http.StatusConflict, "already exists"
	case errors.Is(err, desk.ErrInvalid):
		status, body.Error = http.StatusBadRequest, err.Error()
	case errors.Is(err, desk.ErrUnauthorized):
		status, body.Error = http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, desk.ErrForbidden):
		status, body.Error = http.StatusForbidden, "forbidden"
	}
	if status >= 500 {
		s.log.Error("http: request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "status", status, "err", err)
	}
	var werr error
	if c.Request().Method == http.MethodHead {
		werr = c.NoContent(status)
	} else {
		werr = c.JSON(status, body)
	}
	if werr != nil {
		s.log.Debug("http: write error response", "err", werr)
	}
}
