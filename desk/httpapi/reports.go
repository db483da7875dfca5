package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/calldesk/desk/desk"
)

// ReportsDesk is what the HTTP API needs of the reports (desk.Reports implements
// it). The service checks roles too; the routes already require a supervisor or
// admin (and an admin to change the costs).
type ReportsDesk interface {
	Run(ctx context.Context, u *desk.User, name string, q desk.ReportQuery) (*desk.Report, error)
	Costs(ctx context.Context, u *desk.User) (*desk.CostsView, error)
	SetCosts(ctx context.Context, u *desk.User, c desk.ChannelCosts) (*desk.CostsView, error)
}

// WithReports serves GET /api/reports/:name (JSON, or CSV with format=csv) and the
// channel costs at /api/config/costs. Without it those routes answer 503.
func WithReports(d ReportsDesk) Option { return func(s *Server) { s.reports = d } }

// maxFilter bounds the manager and line filters.
const maxFilter = 128

func (s *Server) reportRoutes(api *echo.Group) {
	staff := requireRole(desk.RoleSupervisor, desk.RoleAdmin)
	need := s.needReports
	api.GET("/reports/:name", s.report, staff, need)
	api.GET("/config/costs", s.getCosts, staff, need)
	api.PUT("/config/costs", s.putCosts, requireRole(desk.RoleAdmin), need)
}

func (s *Server) needReports(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.reports == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "reports are not configured")
		}
		return next(c)
	}
}

// report serves GET /api/reports/:name?from=&to=&manager=&line=[&format=csv[&table=]].
// from and to are RFC3339 or YYYY-MM-DD in the desk's zone (a bare to covers that
// whole day); the default range is the last 30 days.
func (s *Server) report(c echo.Context) error {
	now := s.clock()
	q := desk.ReportQuery{From: now.AddDate(0, 0, -keptRateDays), To: now, Location: s.loc}
	var err error
	if v := c.QueryParam("from"); v != "" {
		if q.From, err = s.parseDay(v, false); err != nil {
			return badField("from", err.Error())
		}
	}
	if v := c.QueryParam("to"); v != "" {
		if q.To, err = s.parseDay(v, true); err != nil {
			return badField("to", err.Error())
		}
	}
	if !q.From.Before(q.To) {
		return badField("from", "must be before to")
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"manager", &q.Manager}, {"line", &q.Line}} {
		v := strings.TrimSpace(c.QueryParam(f.name))
		if utf8.RuneCountInString(v) > maxFilter {
			return badField(f.name, fmt.Sprintf("at most %d characters", maxFilter))
		}
		*f.dst = v
	}
	format := c.QueryParam("format")
	if format != "" && format != "json" && format != "csv" {
		return badField("format", "must be json or csv")
	}
	name := c.Param("name")
	rep, err := s.reports.Run(c.Request().Context(), userOf(c), name, q)
	if err != nil {
		return s.salesError(c, err)
	}
	if format != "csv" {
		return c.JSON(http.StatusOK, rep)
	}
	var buf bytes.Buffer
	table := c.QueryParam("table")
	if err := desk.WriteCSV(&buf, rep, table); err != nil {
		return s.salesError(c, err)
	}
	if table == "" && len(rep.Tables) > 0 {
		table = rep.Tables[0].Name
	}
	loc := s.loc
	if loc == nil {
		loc = q.From.Location()
	}
	file := fmt.Sprintf("%s-%s-%s-%s.csv", rep.Name, table, q.From.In(loc).Format("20060102"), q.To.Add(-time.Nanosecond).In(loc).Format("20060102"))
	c.Response().Header().Set("Content-Disposition", `attachment; filename="`+file+`"`)
	return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

func (s *Server) getCosts(c echo.Context) error {
	v, err := s.reports.Costs(c.Request().Context(), userOf(c))
	if err != nil {
		return s.salesError(c, err)
	}
	return c.JSON(http.StatusOK, v)
}

type costsRequest struct {
	Currency string             `json:"currency"`
	Costs    map[string]float64 `json:"costs"`
}

func (s *Server) putCosts(c echo.Context) error {
	var req costsRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	v, err := s.reports.SetCosts(c.Request().Context(), userOf(c), desk.ChannelCosts{Currency: req.Currency, Costs: req.Costs})
	if err != nil {
		return s.salesError(c, err)
	}
	return c.JSON(http.StatusOK, v)
}
