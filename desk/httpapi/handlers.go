package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/phone"
)

type loginRequest struct {
	Login    string `json:"login"`
	Password string `json:"password"`
}

// dummyPasswordHash gives unknown logins the same argon2 work as known ones, so
// the response time does not tell which logins exist.
func (s *Server) dummyPasswordHash() string {
	s.dummyOnce.Do(func() {
		s.dummyHash, _ = desk.HashPassword("not a real password")
	})
	return s.dummyHash
}

// maxLoggedLogin bounds what a failed login puts in the logs and the throttle.
const maxLoggedLogin = 64

// login checks the password and issues a new session id, whatever session the
// browser came with: the token in the request's cookie, if any, is deleted, so a
// token planted before the login (session fixation) or left by the previous user
// of the browser is never carried over. Other sessions of the same user (another
// browser) stay valid until they expire or log out. Failures are throttled (see
// LoginLimit) and logged at WARN as "http: login failed" with ip and login; the
// throttled ones as "http: login throttled".
func (s *Server) login(c echo.Context) error {
	var req loginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Login == "" || req.Password == "" {
		return badField("login", "login and password are required")
	}
	ctx := c.Request().Context()
	ip := c.RealIP()
	login := strings.ToLower(strings.TrimSpace(req.Login))
	if len(login) > maxLoggedLogin {
		login = login[:maxLoggedLogin]
	}
	if wait, which := s.limiter.wait(ip, login); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		s.m.logins.WithLabelValues("throttled").Inc()
		s.log.Warn("http: login throttled", "ip", ip, "login", login, "limit", which, "retry_after", secs)
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		return echo.NewHTTPError(http.StatusTooManyRequests, fmt.Sprintf("too many failed logins; try again in %d s", secs))
	}
	refuse := func(reason string) error {
		s.limiter.fail(ip, login)
		s.m.logins.WithLabelValues("refused").Inc()
		s.log.Warn("http: login failed", "ip", ip, "login", login, "reason", reason)
		return echo.NewHTTPError(http.StatusUnauthorized, "wrong login or password")
	}
	u, err := s.store.User(ctx, login)
	switch {
	case errors.Is(err, desk.ErrNotFound):
		desk.CheckPassword(s.dummyPasswordHash(), req.Password)
		return refuse("unknown login")
	case err != nil:
		return err
	}
	if !desk.CheckPassword(u.PasswordHash, req.Password) {
		return refuse("wrong password")
	}
	token, err := s.store.CreateSession(ctx, u.Login, s.sessionTTL)
	if err != nil {
		return err
	}
	if old, _ := c.Get(ctxSession).(string); old != "" && old != token {
		if err := s.store.DeleteSession(ctx, old); err != nil && !errors.Is(err, desk.ErrNotFound) {
			s.log.Warn("http: login: could not end the previous session", "login", u.Login, "err", err)
		}
	}
	s.limiter.succeed(login)
	s.m.logins.WithLabelValues("ok").Inc()
	s.log.Info("http: login", "ip", ip, "login", u.Login, "role", string(u.Role))
	c.SetCookie(s.cookie(c, token, int(s.sessionTTL/time.Second)))
	return c.JSON(http.StatusOK, u)
}

func (s *Server) cookie(c echo.Context, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     CookieName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.Request().TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
}

func (s *Server) session(c echo.Context) error { return c.JSON(http.StatusOK, userOf(c)) }

func (s *Server) logout(c echo.Context) error {
	token, _ := c.Get(ctxSession).(string)
	if err := s.store.DeleteSession(c.Request().Context(), token); err != nil && !errors.Is(err, desk.ErrNotFound) {
		return err
	}
	c.SetCookie(s.cookie(c, "", -1))
	return c.NoContent(http.StatusNoContent)
}

type userRequest struct {
	Login       string `json:"login"`
	Name        string `json:"name"`
	Role        string `json:"role"`
	Password    string `json:"password"`
	SIPPassword string `json:"sip_password"`
}

var loginRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,31}$`)

func (s *Server) createUser(c echo.Context) error {
	var req userRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	role := desk.Role(req.Role)
	switch {
	case !loginRE.MatchString(req.Login):
		return badField("login", "2-32 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
	case !role.Valid():
		return badField("role", "must be operator, supervisor or admin")
	case utf8.RuneCountInString(req.Password) < 8:
		return badField("password", "at least 8 characters")
	case len(req.Password) > 256:
		return badField("password", "at most 256 bytes")
	case role == desk.RoleOperator && req.SIPPassword == "":
		return badField("sip_password", "required for operators")
	case utf8.RuneCountInString(req.Name) > 100:
		return badField("name", "at most 100 characters")
	}
	if req.SIPPassword != "" && s.realm == "" {
		return errors.New("create user: no SIP realm configured")
	}
	hash, err := desk.HashPassword(req.Password)
	if err != nil {
		return err
	}
	u := &desk.User{
		Login:        req.Login,
		Name:         strings.TrimSpace(req.Name),
		Role:         role,
		PasswordHash: hash,
		Created:      s.clock().UTC(),
	}
	if u.Name == "" {
		u.Name = u.Login
	}
	if req.SIPPassword != "" {
		u.SIPHA1 = desk.SIPHA1(u.Login, s.realm, req.SIPPassword)
	}
	if err := s.store.CreateUser(c.Request().Context(), u); err != nil {
		if errors.Is(err, desk.ErrExists) {
			return &fieldError{status: http.StatusConflict, field: "login", msg: "already taken"}
		}
		return err
	}
	s.writeAudit(c, desk.AuditEntry{Action: "user.create", Target: u.Login, Detail: "role " + string(u.Role)})
	return c.JSON(http.StatusCreated, u)
}

// writeAudit writes an entry of the user's action; a failure to write it is logged,
// not returned: the action is done and the caller should hear so.
func (s *Server) writeAudit(c echo.Context, e desk.AuditEntry) {
	if e.Who == "" {
		if u := userOf(c); u != nil {
			e.Who = u.Login
		}
	}
	if e.At.IsZero() {
		e.At = s.clock()
	}
	if err := s.store.Audit(c.Request().Context(), e); err != nil {
		s.log.Error("http: audit failed", "action", e.Action, "target", e.Target, "who", e.Who, "err", err)
	}
}

func (s *Server) listUsers(c echo.Context) error {
	users, err := s.store.Users(c.Request().Context())
	if err != nil {
		return err
	}
	if users == nil {
		users = []*desk.User{}
	}
	return c.JSON(http.StatusOK, users)
}

type contactRequest struct {
	Name     string   `json:"name"`
	Company  string   `json:"company"`
	Position string   `json:"position"`
	Email    string   `json:"email"`
	Phones   []string `json:"phones"`
	Manager  string   `json:"manager"`
	Notes    string   `json:"notes"`
}

func (s *Server) createContact(c echo.Context) error {
	var req contactRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ct := &desk.Contact{
		Name:     strings.TrimSpace(req.Name),
		Company:  strings.TrimSpace(req.Company),
		Position: strings.TrimSpace(req.Position),
		Email:    strings.TrimSpace(req.Email),
		Manager:  strings.TrimSpace(req.Manager),
		Notes:    req.Notes,
	}
	switch {
	case ct.Name == "":
		return badField("name", "required")
	case utf8.RuneCountInString(ct.Name) > 200 || utf8.RuneCountInString(ct.Company) > 200 || utf8.RuneCountInString(ct.Position) > 200:
		return badField("name", "name, company and position are at most 200 characters")
	case ct.Email != "" && (!strings.Contains(ct.Email, "@") || len(ct.Email) > 254):
		return badField("email", "not an e-mail address")
	case len(req.Phones) > 20:
		return badField("phones", "at most 20 numbers")
	}
	for i, raw := range req.Phones {
		e164, err := phone.Normalize(raw, s.region)
		if err != nil {
			return badField("phones", fmt.Sprintf("%q (#%d) is not a valid phone number", raw, i+1))
		}
		if !containsString(ct.Phones, e164) {
			ct.Phones = append(ct.Phones, e164)
		}
	}
	if ct.Phones == nil {
		ct.Phones = []string{}
	}
	ctx := c.Request().Context()
	if ct.Manager != "" {
		m, err := s.store.User(ctx, ct.Manager)
		if errors.Is(err, desk.ErrNotFound) || (err == nil && m.Role != desk.RoleOperator) {
			return badField("manager", "no operator with this login")
		} else if err != nil {
			return err
		}
	}
	if err := s.store.CreateContact(ctx, ct); err != nil {
		if errors.Is(err, desk.ErrExists) {
			return &fieldError{status: http.StatusConflict, field: "phones", msg: "a number already belongs to another contact"}
		}
		return err
	}
	return c.JSON(http.StatusCreated, ct)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (s *Server) findContact(c echo.Context) error {
	raw := c.QueryParam("phone")
	if raw == "" {
		return badField("phone", "query parameter required")
	}
	e164, err := phone.Normalize(raw, s.region)
	if err != nil {
		return badField("phone", fmt.Sprintf("%q is not a valid phone number", raw))
	}
	ctx := c.Request().Context()
	ct, err := s.store.ContactByPhone(ctx, e164)
	if errors.Is(err, desk.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no contact with number "+e164)
	}
	if err != nil {
		return err
	}
	if err := s.mayReadContact(ctx, userOf(c), ct); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ct)
}

func (s *Server) getContact(c echo.Context) error {
	ct, err := s.contactFor(c.Request().Context(), userOf(c), c.Param("id"))
	if errors.Is(err, desk.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such contact")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ct)
}

func (s *Server) liveCallsHandler(c echo.Context) error {
	calls, err := s.visibleCalls(c.Request().Context(), userOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, calls)
}

// visibleCalls returns the live calls u may see: all for supervisors and admins,
// his own for an operator.
func (s *Server) visibleCalls(ctx context.Context, u *desk.User) ([]*desk.Call, error) {
	calls, err := s.liveCalls(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*desk.Call, 0, len(calls))
	for _, cl := range calls {
		if u.Role != desk.RoleOperator || cl.Operator == u.Login {
			out = append(out, cl)
		}
	}
	return out, nil
}

func (s *Server) operators(c echo.Context) error {
	ops, err := s.store.Operators(c.Request().Context())
	if err != nil {
		return err
	}
	if ops == nil {
		ops = []*desk.Operator{}
	}
	return c.JSON(http.StatusOK, ops)
}

func (s *Server) websocket(c echo.Context) error {
	r := c.Request()
	origin := r.Header.Get("Origin")
	if origin == "" || !s.originAllowed(r, origin) {
		return echo.NewHTTPError(http.StatusForbidden, "websocket origin refused")
	}
	if s.hub == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "no event hub")
	}
	s.hub.ServeWS(c.Response(), r, userOf(c))
	return nil
}

// Snapshot is the payload of the snapshot frame built by SnapshotFunc.
type Snapshot struct {
	// Calls are the live calls the user may see.
	Calls []*desk.Call `json:"calls"`
	// Operator is the operator's own presence (operators only).
	Operator *desk.Operator `json:"operator,omitempty"`
	// Operators are everyone's presence (supervisors and admins only).
	Operators []*desk.Operator `json:"operators,omitempty"`
	// Wrapup is the wrap-up the operator still owes (with WithSales).
	Wrapup *PendingWrapup `json:"wrapup,omitempty"`
	// Promises are the operator's open promises and the pool's (with WithSales).
	Promises []*desk.Promise `json:"promises,omitempty"`
	// Board is the supervisor's live board (supervisors and admins, with WithBoard).
	Board any `json:"board,omitempty"`
}

// WithBoard adds the live board to supervisors' and admins' snapshots, e.g.
// func(ctx) (any, error) { return board.State(ctx) } with a *desk.Board.
func WithBoard(f func(ctx context.Context) (any, error)) Option {
	return func(s *Server) { s.board = f }
}

// SnapshotFunc builds what a page starts from, for hub.WithSnapshot. live may be
// nil to use store.LiveCalls. Of opts, WithSales adds an operator's pending
// wrap-up and open promises and WithBoard a supervisor's live board; the others do
// not matter here.
func SnapshotFunc(store desk.Store, live func(ctx context.Context) ([]*desk.Call, error), opts ...Option) func(ctx context.Context, u *desk.User) (any, error) {
	if live == nil {
		live = store.LiveCalls
	}
	s := &Server{store: store, liveCalls: live}
	for _, o := range opts {
		o(s)
	}
	return func(ctx context.Context, u *desk.User) (any, error) {
		calls, err := s.visibleCalls(ctx, u)
		if err != nil {
			return nil, err
		}
		ops, err := store.Operators(ctx)
		if err != nil {
			return nil, err
		}
		snap := Snapshot{Calls: calls}
		if u.Role == desk.RoleOperator {
			for _, o := range ops {
				if o.Login == u.Login {
					snap.Operator = o
				}
			}
		} else {
			snap.Operators = ops
			if snap.Operators == nil {
				snap.Operators = []*desk.Operator{}
			}
			if s.board != nil {
				board, err := s.board(ctx)
				if err != nil {
					return nil, fmt.Errorf("snapshot: board: %w", err)
				}
				snap.Board = board
			}
		}
		if err := s.salesSnapshot(ctx, u, &snap); err != nil {
			return nil, err
		}
		return snap, nil
	}
}
