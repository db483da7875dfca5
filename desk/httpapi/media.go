package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/calldesk/desk/desk"
)

// Media mode over HTTP: supervisors join live calls (listen, whisper, barge),
// operators dial callbacks, and recordings are played back.
//
//	POST   /api/calls/:id/monitor     {"mode":"listen|whisper|barge"} → 202 {"call_id","mode"}; staff
//	DELETE /api/calls/:id/monitor     → 204; staff
//	POST   /api/promises/:id/callback → 202 {"sip_call_id"}; the promise's owner, anyone for a pool promise, staff
//	POST   /api/calls/:id/callback    → 202 {"sip_call_id"}; a missed call's callback
//	GET    /api/calls/:id/recording   → audio/wav (Range supported); the roles of WithRecordings
//
// 202 because the bridge has only started ringing a phone: what follows arrives
// as call.monitor frames (and, for a callback, as the call's own frames).

// MonitorDesk is what the HTTP API needs to put a supervisor on a live call
// (*desk.Supervisor implements it).
type MonitorDesk interface {
	Monitor(ctx context.Context, u *desk.User, callID string, mode desk.MonitorMode) error
	StopMonitor(ctx context.Context, u *desk.User, callID string) error
}

// CallbackDesk is what the HTTP API needs to dial callbacks (*desk.Sales
// implements it).
type CallbackDesk interface {
	Callback(ctx context.Context, u *desk.User, promiseID string) (string, error)
	CallbackMissed(ctx context.Context, u *desk.User, callID string) (string, error)
}

// WithMonitoring serves POST and DELETE /api/calls/:id/monitor. Without it the
// supervisor's service of WithSupervisor is used when it implements MonitorDesk;
// without either those routes answer 503.
func WithMonitoring(d MonitorDesk) Option { return func(s *Server) { s.monitor = d } }

// WithCallbacks serves POST /api/promises/:id/callback and /api/calls/:id/callback.
// Without it the sales service of WithSales is used when it implements
// CallbackDesk; without either those routes answer 503.
func WithCallbacks(d CallbackDesk) Option { return func(s *Server) { s.callbacks = d } }

// WithRecordings serves GET /api/calls/:id/recording from rec to the given roles
// (supervisors and admins when none are given); other roles get 403. An operator,
// when his role is given, plays only the calls he took. Without it every
// recording is 404.
func WithRecordings(rec desk.Recordings, roles ...desk.Role) Option {
	return func(s *Server) {
		s.recordings = rec
		s.recordingRoles = slices.Clone(roles)
	}
}

func (s *Server) mediaRoutes(api *echo.Group) {
	if s.monitor == nil {
		if d, ok := s.supervisor.(MonitorDesk); ok {
			s.monitor = d
		}
	}
	if s.callbacks == nil {
		if d, ok := s.sales.(CallbackDesk); ok {
			s.callbacks = d
		}
	}
	if len(s.recordingRoles) == 0 {
		s.recordingRoles = []desk.Role{desk.RoleSupervisor, desk.RoleAdmin}
	}
	staff := requireRole(desk.RoleSupervisor, desk.RoleAdmin)
	api.POST("/calls/:id/monitor", s.postMonitor, staff, s.needMonitor)
	api.DELETE("/calls/:id/monitor", s.deleteMonitor, staff, s.needMonitor)
	api.POST("/promises/:id/callback", s.postPromiseCallback, requireUser, s.needCallbacks)
	api.POST("/calls/:id/callback", s.postCallCallback, requireUser, s.needCallbacks)
	api.GET("/calls/:id/recording", s.getRecording, requireUser)
}

func (s *Server) needMonitor(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.monitor == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "monitoring live calls is not configured")
		}
		return next(c)
	}
}

func (s *Server) needCallbacks(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.callbacks == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "callbacks are not configured")
		}
		return next(c)
	}
}

// mediaError maps media mode's errors: what the call or the desk's state forbids
// is 409 with the reason, a failing bridge 502; the rest goes to salesError and
// handleError.
func (s *Server) mediaError(c echo.Context, err error) error {
	switch {
	case errors.Is(err, desk.ErrForbidden), errors.Is(err, desk.ErrNotFound),
		errors.Is(err, desk.ErrUnauthorized), errors.Is(err, desk.ErrUnavailable):
		return err
	case errors.Is(err, desk.ErrNoMedia), errors.Is(err, desk.ErrNoTrunk), errors.Is(err, desk.ErrNotLive), errors.Is(err, desk.ErrNoPhone),
		errors.Is(err, desk.ErrClaimed), errors.Is(err, desk.ErrNoNumber):
		return echo.NewHTTPError(http.StatusConflict, err.Error())
	case errors.Is(err, desk.ErrBridge):
		s.log.Warn("http: media bridge failed", "path", c.Request().URL.Path, "err", err)
		return echo.NewHTTPError(http.StatusBadGateway, err.Error())
	}
	return s.salesError(c, err)
}

type monitorRequest struct {
	Mode desk.MonitorMode `json:"mode"`
}

type monitorResponse struct {
	CallID string           `json:"call_id"`
	Mode   desk.MonitorMode `json:"mode"`
}

func (s *Server) postMonitor(c echo.Context) error {
	var req monitorRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	req.Mode = desk.MonitorMode(strings.TrimSpace(string(req.Mode)))
	switch {
	case req.Mode == "":
		return badField("mode", "required: listen, whisper or barge")
	case !req.Mode.Valid():
		return badField("mode", fmt.Sprintf("%q is not listen, whisper or barge", req.Mode))
	}
	id := c.Param("id")
	if err := s.monitor.Monitor(c.Request().Context(), userOf(c), id, req.Mode); err != nil {
		return s.mediaError(c, err)
	}
	return c.JSON(http.StatusAccepted, monitorResponse{CallID: id, Mode: req.Mode})
}

func (s *Server) deleteMonitor(c echo.Context) error {
	if err := s.monitor.StopMonitor(c.Request().Context(), userOf(c), c.Param("id")); err != nil {
		return s.mediaError(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

type callbackResponse struct {
	SIPCallID string `json:"sip_call_id"`
}

func (s *Server) postPromiseCallback(c echo.Context) error {
	id, err := s.callbacks.Callback(c.Request().Context(), userOf(c), c.Param("id"))
	if err != nil {
		return s.mediaError(c, err)
	}
	return c.JSON(http.StatusAccepted, callbackResponse{SIPCallID: id})
}

func (s *Server) postCallCallback(c echo.Context) error {
	id, err := s.callbacks.CallbackMissed(c.Request().Context(), userOf(c), c.Param("id"))
	if err != nil {
		return s.mediaError(c, err)
	}
	return c.JSON(http.StatusAccepted, callbackResponse{SIPCallID: id})
}

// getRecording serves a call's recording as audio/wav through http.ServeContent,
// so Range requests work and the page's <audio> can seek. A playback from the
// start is audited ("recording.play"); the ranges an <audio> fetches while
// seeking are not, or the audit would fill with them.
func (s *Server) getRecording(c echo.Context) error {
	u := userOf(c)
	if !slices.Contains(s.recordingRoles, u.Role) {
		return echo.NewHTTPError(http.StatusForbidden, "recordings are not open to role "+string(u.Role))
	}
	if s.recordings == nil {
		return echo.NewHTTPError(http.StatusNotFound, "recordings are not configured")
	}
	ctx := c.Request().Context()
	id := c.Param("id")
	call, err := s.store.Call(ctx, id)
	if err != nil {
		return err
	}
	if u.Role == desk.RoleOperator && call.Operator != u.Login {
		// Operators, when the config lets them play recordings at all, hear their own calls only.
		return fmt.Errorf("recording of call %s taken by %s: %w", id, call.Operator, desk.ErrForbidden)
	}
	if call.Live() {
		return echo.NewHTTPError(http.StatusConflict, "the call is still going on; its recording is complete when it ends")
	}
	f, err := s.recordings.OpenRecording(call.SIPCallID)
	if errors.Is(err, desk.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no recording of this call (not recorded, or past its retention)")
	}
	if err != nil {
		return fmt.Errorf("recording of call %s: %w", id, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("recording of call %s: %w", id, err)
	}
	if r := c.Request().Header.Get("Range"); r == "" || strings.HasPrefix(r, "bytes=0-") {
		s.writeAudit(c, desk.AuditEntry{Action: "recording.play", Target: call.ID, Detail: "operator " + call.Operator})
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "audio/wav")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(echo.HeaderContentDisposition, `inline; filename="`+recordingName(call)+`"`)
	// Personal data: no shared cache may keep it, and the browser asks each time.
	h.Set("Cache-Control", "private, no-cache")
	http.ServeContent(c.Response(), c.Request(), "", st.ModTime(), f)
	return nil
}

// recordingName is the download name of a call's recording: only letters,
// digits and dashes, so it needs no quoting in Content-Disposition.
func recordingName(c *desk.Call) string {
	safe := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
				return r
			}
			return -1
		}, s)
	}
	name := "call-" + safe(c.ID)
	if !c.Started.IsZero() {
		name = "call-" + c.Started.UTC().Format("20060102-150405") + "-" + safe(c.ID)
	}
	if len(name) > 100 {
		name = name[:100]
	}
	return name + ".wav"
}
