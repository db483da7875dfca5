package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/webhook"
)

// SalesDesk is what the HTTP API needs of the sales record (desk.Sales implements
// it). The service checks who may do what; the routes only require a login, or a
// supervisor or admin for the reports, the audit and forcing a wrap-up.
type SalesDesk interface {
	Answer(ctx context.Context, u *desk.User, callID string, op desk.AnswerOp) (*desk.Record, error)
	Record(ctx context.Context, u *desk.User, callID string) (*desk.Record, error)
	Wrapup(ctx context.Context, u *desk.User, callID string, req desk.WrapupRequest) (*desk.WrapupResult, error)
	ForceWrapup(ctx context.Context, u *desk.User, callID, reason string) (*desk.WrapupResult, error)
	Promises(ctx context.Context, u *desk.User, owner, state string) ([]*desk.Promise, error)
	KeepPromise(ctx context.Context, u *desk.User, id, result string) (*desk.Promise, error)
	KeptRate(ctx context.Context, from, to time.Time) ([]desk.KeptRate, error)
	AddNote(ctx context.Context, u *desk.User, contactID, text, callID string) (*desk.Note, error)
	SetManager(ctx context.Context, u *desk.User, contactID, manager string) (*desk.Contact, error)
	Card(ctx context.Context, contactID string) (*desk.Card, error)
	Audit(ctx context.Context, u *desk.User, limit int) ([]desk.AuditEntry, error)
	Pending(ctx context.Context, login string) (*desk.Call, *desk.Record, error)
}

// DeliverySource lists the CRM webhook's deliveries (*webhook.Webhook implements it).
type DeliverySource interface {
	Deliveries(ctx context.Context) ([]webhook.Delivery, error)
}

// WithSales serves the sales record API (answers, wrap-up, promises, cards, notes,
// the kept-rate and the audit) and, in SnapshotFunc, adds an operator's pending
// wrap-up and open promises. Without it those routes answer 503.
func WithSales(d SalesDesk) Option { return func(s *Server) { s.sales = d } }

// WithDeliveries lists the CRM webhook's deliveries at /api/webhook/deliveries.
func WithDeliveries(d DeliverySource) Option { return func(s *Server) { s.deliveries = d } }

// WithLocation sets the zone a bare date (YYYY-MM-DD) in a report range is read in
// (default UTC); give it the desk's zone.
func WithLocation(loc *time.Location) Option { return func(s *Server) { s.loc = loc } }

// WithClock sets the clock of default report ranges (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// keptRateDays is the default report range, ending now.
const keptRateDays = 30

// Limits of what one request may carry; the service checks each value's type.
const (
	maxOpID       = 128
	maxFields     = 100
	maxFieldValue = 10000
	maxNote       = 5000
	maxAuditLimit = 1000
)

func (s *Server) salesRoutes(api *echo.Group) {
	staff := requireRole(desk.RoleSupervisor, desk.RoleAdmin)
	need := s.needSales
	api.PUT("/calls/:id/answers", s.putAnswers, requireUser, need)
	api.GET("/calls/:id/record", s.getRecord, requireUser, need)
	api.POST("/calls/:id/wrapup", s.postWrapup, requireUser, need)
	api.POST("/calls/:id/wrapup/force", s.forceWrapup, staff, need)
	api.GET("/promises", s.listPromises, requireUser, need)
	api.POST("/promises/:id/kept", s.keepPromise, requireUser, need)
	api.GET("/reports/kept-rate", s.keptRate, staff, need)
	api.GET("/contacts/:id/card", s.card, requireUser, need)
	api.POST("/contacts/:id/notes", s.addNote, requireUser, need)
	api.PUT("/contacts/:id/manager", s.setManager, requireUser, need)
	api.GET("/audit", s.audit, staff, need)
	api.GET("/webhook/deliveries", s.webhookDeliveries, staff)
}

func (s *Server) needSales(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.sales == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "the sales record is not configured")
		}
		return next(c)
	}
}

// missingBody is the 422 of a wrap-up that lacks required items.
type missingBody struct {
	Error   string   `json:"error"`
	Missing []string `json:"missing"`
}

// salesError maps the service's typed errors onto the API's bodies; the
// sentinels (ErrForbidden, ErrNotFound, ...) are left to handleError.
func (s *Server) salesError(c echo.Context, err error) error {
	var me *desk.MissingError
	var fe *desk.FieldError
	switch {
	case errors.As(err, &me):
		return c.JSON(http.StatusUnprocessableEntity, missingBody{Error: me.Error(), Missing: me.Missing})
	case errors.As(err, &fe):
		return badField(fe.Field, fe.Reason)
	}
	return err
}

type answersRequest struct {
	Op     string                     `json:"op"`
	Step   string                     `json:"step"`
	Fields map[string]json.RawMessage `json:"fields"`
}

func (s *Server) putAnswers(c echo.Context) error {
	var req answersRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(req.Op) == "":
		return badField("op", "required: a client-generated operation id")
	case len(req.Op) > maxOpID:
		return badField("op", fmt.Sprintf("at most %d bytes", maxOpID))
	case len(req.Fields) > maxFields:
		return badField("fields", fmt.Sprintf("at most %d fields", maxFields))
	}
	op := desk.AnswerOp{Op: req.Op, Step: req.Step, Fields: make(map[string]string, len(req.Fields))}
	for k, raw := range req.Fields {
		v, err := fieldValue(raw)
		if err != nil {
			return badField("fields."+k, err.Error())
		}
		if utf8.RuneCountInString(v) > maxFieldValue {
			return badField("fields."+k, fmt.Sprintf("at most %d characters", maxFieldValue))
		}
		op.Fields[k] = v
	}
	rec, err := s.sales.Answer(c.Request().Context(), userOf(c), c.Param("id"), op)
	if err != nil {
		return s.salesError(c, err)
	}
	return c.JSON(http.StatusOK, rec)
}

// fieldValue turns one answer into the string the record keeps: pages send
// strings, but a number or a checkbox sent as JSON is taken as written. null
// clears the answer. Objects and arrays are refused: an answer is one value.
func fieldValue(raw json.RawMessage) (string, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	default:
		return "", errors.New("must be a string, number or boolean")
	}
}

func (s *Server) getRecord(c echo.Context) error {
	rec, err := s.sales.Record(c.Request().Context(), userOf(c), c.Param("id"))
	if err != nil {
		return s.salesError(c, err)
	}
	return c.JSON(http.StatusOK, rec)
}

type wrapupRequest struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	Stage   string `json:"stage"`
	Note    string `json:"note"`
}

func (s *Server) postWrapup(c echo.Context) error {
	var req wrapupRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if utf8.RuneCountInString(req.Note) > maxNote {
		return badField("note", fmt.Sprintf("at most %d characters", maxNote))
	}
	res, err := s.sales.Wrapup(c.Request().Context(), userOf(c), c.Param("id"), desk.WrapupRequest{
		Outcome: strings.TrimSpace(req.Outcome), Reason: strings.TrimSpace(req.Reason),
		Stage: strings.TrimSpace(req.Stage), Note: req.Note,
	})
	if err != nil {
		return s.salesError(c, err)
	}
	return c.JSON(http.StatusOK, res)
}

type reasonRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) forceWrapup(c echo.Context) error {
	var req reasonRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		return badField("reason", "required: why the wrap-up is forced goes into the audit")
	}
	if utf8.RuneCountInString(reason) > maxNote {
		return badField("reason", fmt.Sprintf("at most %d characters", maxNote))
	}
	res, err := s.sales.ForceWrapup(c.Request().Context(), userOf(c), c.Param("id"), reason)
	if err != nil {
		return s.salesError(c, err)
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) listPromises(c echo.Context) error {
	state := c.QueryParam("state")
	switch state {
	case "", desk.PromiseOpen, desk.PromiseOverdue, desk.PromiseKept:
	default:
		return badField("state", "must be open, overdue or kept")
	}
	ps, err := s.sales.Promises(c.Request().Context(), userOf(c), c.QueryParam("owner"), state)
	if err != nil {
		return s.salesError(c, err)
	}
	if ps == nil {
		ps = []*desk.Promise{}
	}
	return c.JSON(http.StatusOK, ps)
}

type keptRequest struct {
	Result string `json:"result"`
}

func (s *Server) keepPromise(c echo.Context) error {
	var req keptRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if utf8.RuneCountInString(req.Result) > maxNote {
		return badField("result", fmt.Sprintf("at most %d characters", maxNote))
	}
	p, err := s.sales.KeepPromise(c.Request().Context(), userOf(c), c.Param("id"), strings.TrimSpace(req.Result))
	if err != nil {
		return s.salesError(c, err)
	}
	return c.JSON(http.StatusOK, p)
}

// keptRateBody is the kept-rate report: the range it covers and a row per owner.
type keptRateBody struct {
	From time.Time       `json:"from"`
	To   time.Time       `json:"to"`
	Rows []desk.KeptRate `json:"rows"`
}

func (s *Server) keptRate(c echo.Context) error {
	now := s.clock()
	from, to := now.AddDate(0, 0, -keptRateDays), now
	var err error
	if v := c.QueryParam("from"); v != "" {
		if from, err = s.parseDay(v, false); err != nil {
			return badField("from", err.Error())
		}
	}
	if v := c.QueryParam("to"); v != "" {
		if to, err = s.parseDay(v, true); err != nil {
			return badField("to", err.Error())
		}
	}
	if !from.Before(to) {
		return badField("from", "must be before to")
	}
	rows, err := s.sales.KeptRate(c.Request().Context(), from, to)
	if err != nil {
		return s.salesError(c, err)
	}
	if rows == nil {
		rows = []desk.KeptRate{}
	}
	return c.JSON(http.StatusOK, keptRateBody{From: from, To: to, Rows: rows})
}

// parseDay reads RFC3339 or YYYY-MM-DD in the desk's zone. A bare date as the end
// of a range means through that whole day, so to=2025-03-31 covers March 31.
func (s *Server) parseDay(v string, end bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	loc := s.loc
	if loc == nil {
		loc = time.UTC
	}
	t, err := time.ParseInLocation(time.DateOnly, v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC3339 nor YYYY-MM-DD", v)
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

func (s *Server) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// operatorContact applies mayReadContact to operators before the sales desk's
// contact endpoints; supervisors and admins go straight to the service.
func (s *Server) operatorContact(c echo.Context) error {
	if u := userOf(c); u != nil && u.Role == desk.RoleOperator {
		_, err := s.contactFor(c.Request().Context(), u, c.Param("id"))
		return err
	}
	return nil
}

func (s *Server) card(c echo.Context) error {
	if err := s.operatorContact(c); err != nil {
		return err
	}
	card, err := s.sales.Card(c.Request().Context(), c.Param("id"))
	if err != nil {
		return s.salesError(c, err)
	}
	return c.JSON(http.StatusOK, card)
}

type noteRequest struct {
	Text   string `json:"text"`
	CallID string `json:"call_id"`
}

func (s *Server) addNote(c echo.Context) error {
	var req noteRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	text := strings.TrimSpace(req.Text)
	switch {
	case text == "":
		return badField("text", "required")
	case utf8.RuneCountInString(text) > maxNote:
		return badField("text", fmt.Sprintf("at most %d characters", maxNote))
	}
	if err := s.operatorContact(c); err != nil {
		return err
	}
	n, err := s.sales.AddNote(c.Request().Context(), userOf(c), c.Param("id"), text, strings.TrimSpace(req.CallID))
	if err != nil {
		return s.salesError(c, err)
	}
	return c.JSON(http.StatusCreated, n)
}

type managerRequest struct {
	Manager string `json:"manager"`
}

func (s *Server) setManager(c echo.Context) error {
	var req managerRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := s.operatorContact(c); err != nil {
		return err
	}
	ct, err := s.sales.SetManager(c.Request().Context(), userOf(c), c.Param("id"), strings.TrimSpace(req.Manager))
	if err != nil {
		return s.salesError(c, err)
	}
	return c.JSON(http.StatusOK, ct)
}

func (s *Server) audit(c echo.Context) error {
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditLimit {
			return badField("limit", fmt.Sprintf("a number from 1 to %d", maxAuditLimit))
		}
		limit = n
	}
	entries, err := s.sales.Audit(c.Request().Context(), userOf(c), limit)
	if err != nil {
		return s.salesError(c, err)
	}
	if entries == nil {
		entries = []desk.AuditEntry{}
	}
	return c.JSON(http.StatusOK, entries)
}

// deliveriesBody says whether a webhook is configured, so an empty list is not
// mistaken for a quiet CRM.
type deliveriesBody struct {
	Configured bool               `json:"configured"`
	Deliveries []webhook.Delivery `json:"deliveries"`
}

func (s *Server) webhookDeliveries(c echo.Context) error {
	body := deliveriesBody{Deliveries: []webhook.Delivery{}}
	if s.deliveries != nil {
		ds, err := s.deliveries.Deliveries(c.Request().Context())
		if err != nil {
			return err
		}
		body.Configured = true
		if ds != nil {
			body.Deliveries = ds
		}
	}
	return c.JSON(http.StatusOK, body)
}

// PendingWrapup is the wrap-up an operator still owes, in his snapshot.
type PendingWrapup struct {
	Call   *desk.Call   `json:"call"`
	Record *desk.Record `json:"record"`
}

// salesSnapshot adds to an operator's snapshot the wrap-up he owes, so a reloaded
// page puts him straight back into it, and his open promises with the pool's.
func (s *Server) salesSnapshot(ctx context.Context, u *desk.User, snap *Snapshot) error {
	if s.sales == nil || u.Role != desk.RoleOperator {
		return nil
	}
	call, rec, err := s.sales.Pending(ctx, u.Login)
	if err != nil {
		return fmt.Errorf("snapshot: pending wrap-up: %w", err)
	}
	if call != nil {
		snap.Wrapup = &PendingWrapup{Call: call, Record: rec}
	}
	ps, err := s.sales.Promises(ctx, u, "", desk.PromiseOpen)
	if err != nil {
		return fmt.Errorf("snapshot: promises: %w", err)
	}
	if ps == nil {
		ps = []*desk.Promise{}
	}
	snap.Promises = ps
	return nil
}
