package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/calldesk/desk/desk"
)

const csp = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"

func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		return next(c)
	}
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	logins   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "desk_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "desk_http_request_seconds", Help: "HTTP request time by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "desk_logins_total", Help: "Login attempts by outcome.",
		}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.logins)
	}
	return m
}

// observe handles the error itself so that the status it records is the one sent.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" || route == "/*" {
			route = "static"
		}
		method := c.Request().Method
		s.m.requests.WithLabelValues(method, route, strconv.Itoa(c.Response().Status)).Inc()
		if route != "/ws" { // a websocket's duration is the page's life, not latency
			s.m.duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		}
		return nil
	}
}

func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > maxBody {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body over 64 KB")
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, maxBody)
		return next(c)
	}
}

// decode reads a JSON body into v. Unknown fields are allowed, so older servers
// accept newer pages; the decoder's reason is returned for anything malformed.
func decode(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the JSON value")
		}
	}
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mbe):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body over 64 KB")
	case errors.Is(err, io.EOF):
		return echo.NewHTTPError(http.StatusBadRequest, "bad json: empty body")
	default:
		return echo.NewHTTPError(http.StatusBadRequest, "bad json: "+err.Error())
	}
}

const (
	ctxUser    = "desk.user"
	ctxAuthErr = "desk.autherr"
	ctxSession = "desk.session"
)

// authenticate resolves the session cookie of API and websocket requests; the
// static pages need no user. A store outage is kept and reported by requireUser
// as 503, not as a logout.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := c.Request().URL.Path
		if !strings.HasPrefix(p, "/api/") && p != "/ws" {
			return next(c)
		}
		ck, err := c.Cookie(CookieName)
		if err != nil || ck.Value == "" {
			return next(c)
		}
		ctx := c.Request().Context()
		login, err := s.store.Session(ctx, ck.Value)
		if err == nil {
			var u *desk.User
			if u, err = s.store.User(ctx, login); err == nil {
				c.Set(ctxUser, u)
				c.Set(ctxSession, ck.Value)
				return next(c)
			}
		}
		if !errors.Is(err, desk.ErrNotFound) {
			c.Set(ctxAuthErr, err)
		}
		return next(c)
	}
}

func userOf(c echo.Context) *desk.User {
	u, _ := c.Get(ctxUser).(*desk.User)
	return u
}

func requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if userOf(c) == nil {
			if err, _ := c.Get(ctxAuthErr).(error); err != nil {
				return err
			}
			return echo.NewHTTPError(http.StatusUnauthorized, "not logged in")
		}
		return next(c)
	}
}

func requireRole(roles ...desk.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return requireUser(func(c echo.Context) error {
			if !slices.Contains(roles, userOf(c).Role) {
				return echo.NewHTTPError(http.StatusForbidden, "forbidden for role "+string(userOf(c).Role))
			}
			return next(c)
		})
	}
}

// csrf refuses state-changing API requests that a foreign page could forge: they
// must be JSON (a form cannot send that cross-site without a preflight) and, when
// the browser names an Origin, come from ours. The login is exempt from the JSON
// rule (it carries no session to abuse) but not from the Origin rule.
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			return next(c)
		}
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			return next(c)
		}
		if o := r.Header.Get("Origin"); o != "" && !s.originAllowed(r, o) {
			return echo.NewHTTPError(http.StatusForbidden, "cross-origin request refused")
		}
		if r.Method == http.MethodPost && r.URL.Path == "/api/session" {
			return next(c)
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return echo.NewHTTPError(http.StatusUnsupportedMediaType, "content type must be application/json")
		}
		return next(c)
	}
}

// originAllowed reports whether origin is this desk's own scheme://host or one of
// the allowed origins.
func (s *Server) originAllowed(r *http.Request, origin string) bool {
	o := strings.TrimRight(strings.ToLower(origin), "/")
	if s.origins[o] {
		return true
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return o == scheme+"://"+strings.ToLower(r.Host)
}
