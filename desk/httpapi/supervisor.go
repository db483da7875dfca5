package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/calldesk/desk/desk"
)

// SupervisorDesk is what the HTTP API needs of the supervisor's actions
// (desk.Supervisor implements it): whispers, reassignment and forced presence.
// The service checks roles too; the routes already require a supervisor or admin
// for everything but acknowledging and listing whispers.
type SupervisorDesk interface {
	Whisper(ctx context.Context, u *desk.User, operator, text string) (*desk.Whisper, error)
	AckWhisper(ctx context.Context, u *desk.User, id string) (*desk.Whisper, error)
	Whispers(ctx context.Context, u *desk.User, operator string, unackedOnly bool) ([]*desk.Whisper, error)
	CallWhispers(ctx context.Context, callID string) ([]*desk.Whisper, error)
	Reassign(ctx context.Context, u *desk.User, r desk.Reassignment) (*desk.ReassignResult, error)
	SetPresence(ctx context.Context, u *desk.User, operator string, away bool) error
}

// RecentCallsDesk is what the HTTP API needs to list the calls that are over
// (*desk.Supervisor implements it).
type RecentCallsDesk interface {
	RecentCalls(ctx context.Context, u *desk.User, hours int) ([]*desk.Call, error)
}

// WithSupervisor serves the supervisor's actions: POST /api/operators/:login/whisper,
// POST /api/whispers/:id/ack, GET /api/whispers, POST /api/reassign and
// PUT /api/operators/:login/presence; and, when d implements RecentCallsDesk,
// GET /api/calls/recent. Without it those routes answer 503.
func WithSupervisor(d SupervisorDesk) Option { return func(s *Server) { s.supervisor = d } }

func (s *Server) supervisorRoutes(api *echo.Group) {
	staff := requireRole(desk.RoleSupervisor, desk.RoleAdmin)
	need := s.needSupervisor
	api.POST("/operators/:login/whisper", s.postWhisper, staff, need)
	api.PUT("/operators/:login/presence", s.putPresence, staff, need)
	api.POST("/reassign", s.postReassign, staff, need)
	api.POST("/whispers/:id/ack", s.ackWhisper, requireUser, need)
	api.GET("/whispers", s.listWhispers, requireUser, need)
	api.GET("/calls/recent", s.recentCalls, staff, s.needRecent)
}

func (s *Server) needRecent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, ok := s.supervisor.(RecentCallsDesk); !ok {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "the list of recent calls is not configured")
		}
		return next(c)
	}
}

// recentCalls serves GET /api/calls/recent?hours=N (default 24, at most 168): the
// calls started in the last N hours that are over (ended or missed), newest
// first, at most 100, each as GET /api/calls/live gives a call ("recorded": true
// on the answered calls of a recording line). The board's "Recent calls" loads it
// so that a recording can be played after a reload.
func (s *Server) recentCalls(c echo.Context) error {
	hours := desk.DefaultRecentHours
	if v := strings.TrimSpace(c.QueryParam("hours")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return badField("hours", fmt.Sprintf("%q is not a whole number of hours (1 to %d)", v, desk.MaxRecentHours))
		}
		hours = n
	}
	calls, err := s.supervisor.(RecentCallsDesk).RecentCalls(c.Request().Context(), userOf(c), hours)
	if err != nil {
		return s.salesError(c, err)
	}
	if calls == nil {
		calls = []*desk.Call{}
	}
	return c.JSON(http.StatusOK, calls)
}

func (s *Server) needSupervisor(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.supervisor == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "the supervisor's actions are not configured")
		}
		return next(c)
	}
}

type whisperRequest struct {
	Text string `json:"text"`
}

func (s *Server) postWhisper(c echo.Context) error {
	var req whisperRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	text := strings.TrimSpace(req.Text)
	switch n := utf8.RuneCountInString(text); {
	case n == 0:
		return badField("text", "required")
	case n > desk.MaxWhisper:
		return badField("text", fmt.Sprintf("at most %d characters", desk.MaxWhisper))
	}
	w, err := s.supervisor.Whisper(c.Request().Context(), userOf(c), c.Param("login"), text)
	if err != nil {
		return s.salesError(c, err)
	}
	return c.JSON(http.StatusCreated, w)
}

func (s *Server) ackWhisper(c echo.Context) error {
	w, err := s.supervisor.AckWhisper(c.Request().Context(), userOf(c), c.Param("id"))
	if err != nil {
		return s.salesError(c, err)
	}
	return c.JSON(http.StatusOK, w)
}

// listWhispers serves GET /api/whispers?operator=&unacked=1[&call=ID]. With call,
// the whispers kept with that call: all of them for a supervisor, an operator's
// own for him.
func (s *Server) listWhispers(c echo.Context) error {
	var unacked bool
	switch v := c.QueryParam("unacked"); v {
	case "", "0", "false":
	case "1", "true":
		unacked = true
	default:
		return badField("unacked", "must be 1 or 0")
	}
	ctx, u := c.Request().Context(), userOf(c)
	operator := strings.TrimSpace(c.QueryParam("operator"))
	var ws []*desk.Whisper
	var err error
	if call := strings.TrimSpace(c.QueryParam("call")); call != "" {
		if u.Role == desk.RoleOperator {
			if operator != "" && operator != u.Login {
				return fmt.Errorf("whispers of %s: %w", operator, desk.ErrForbidden)
			}
			operator = u.Login
		}
		ws, err = s.supervisor.CallWhispers(ctx, call)
		ws = slices.DeleteFunc(ws, func(w *desk.Whisper) bool {
			return (operator != "" && w.Operator != operator) || (unacked && w.AckedAt != nil)
		})
	} else {
		ws, err = s.supervisor.Whispers(ctx, u, operator, unacked)
	}
	if err != nil {
		return s.salesError(c, err)
	}
	if ws == nil {
		ws = []*desk.Whisper{}
	}
	return c.JSON(http.StatusOK, ws)
}

func (s *Server) postReassign(c echo.Context) error {
	var req desk.Reassignment
	if err := decode(c, &req); err != nil {
		return err
	}
	if len(req.IDs) > desk.MaxReassignIDs {
		return badField("ids", fmt.Sprintf("at most %d items at once", desk.MaxReassignIDs))
	}
	res, err := s.supervisor.Reassign(c.Request().Context(), userOf(c), req)
	if err != nil {
		return s.salesError(c, err)
	}
	return c.JSON(http.StatusOK, res)
}

type presenceRequest struct {
	Away *bool `json:"away"`
}

func (s *Server) putPresence(c echo.Context) error {
	var req presenceRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Away == nil {
		return badField("away", "required: true to force the operator away, false to make him available")
	}
	if err := s.supervisor.SetPresence(c.Request().Context(), userOf(c), c.Param("login"), *req.Away); err != nil {
		return s.salesError(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}
