package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/httpapi"
	"github.com/calldesk/desk/desk/hub"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
	"github.com/calldesk/desk/static"
)

var supT0 = time.Date(2025, 2, 3, 11, 0, 0, 0, time.UTC)

// supEnv is env with the sales desk and the supervisor's desk on the same Redis,
// both publishing through the real hub, and a fake clock. Users: operators maria,
// boris and ivan, supervisor sveta, admin root.
type supEnv struct {
	*env
	sup   *desk.Supervisor
	clock *fakeClock
}

func newSupEnv(t *testing.T) *supEnv {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	store := redisstore.New(rdb, redisstore.WithPrefix(prefix), redisstore.WithLogger(quiet()))
	clock := &fakeClock{t: supT0}
	reg := prometheus.NewRegistry()
	h := hub.New(rdb, hub.WithPrefix(prefix), hub.WithLogger(quiet()), hub.WithPresence(store),
		hub.WithSnapshot(httpapi.SnapshotFunc(store, nil)), hub.WithRegisterer(reg))
	sales := desk.NewSales(store, h, desk.WithSalesLogger(quiet()), desk.WithSalesClock(clock.Now), desk.WithLocation(time.UTC))
	sup := desk.NewSupervisor(store, h, desk.WithSupervisorLogger(quiet()), desk.WithSupervisorClock(clock.Now))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	api := httpapi.New(store, h, httpapi.WithLogger(quiet()), httpapi.WithStatic(static.FS),
		httpapi.WithRealm(realm), httpapi.WithRegion("RU"), httpapi.WithRegisterer(reg), httpapi.WithGatherer(reg),
		httpapi.WithSales(sales), httpapi.WithSupervisor(sup), httpapi.WithLocation(time.UTC), httpapi.WithClock(clock.Now))
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		store.Close()
	})
	e := &supEnv{env: &env{t: t, rdb: rdb, store: store, hub: h, srv: srv}, sup: sup, clock: clock}
	for login, role := range map[string]desk.Role{"maria": desk.RoleOperator, "boris": desk.RoleOperator,
		"ivan": desk.RoleOperator, "sveta": desk.RoleSupervisor, "root": desk.RoleAdmin} {
		e.user(login, role)
	}
	return e
}

// socket is one page's websocket, read frame by frame.
type socket struct {
	t  *testing.T
	ws *websocket.Conn
}

// dial opens login's desk websocket as a page would and reads its snapshot.
func (e *supEnv) dial(login string) *socket {
	e.t.Helper()
	c := e.loggedIn(login)
	d := websocket.Dialer{Jar: c.hc.Jar, HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial(wsURL(e.env, ""), http.Header{"Origin": {e.srv.URL}})
	if err != nil {
		e.t.Fatalf("dial as %s: %v", login, err)
	}
	e.t.Cleanup(func() { ws.Close() })
	s := &socket{t: e.t, ws: ws}
	if f := s.next(); f["type"] != "snapshot" {
		e.t.Fatalf("first frame of %s: %v", login, f)
	}
	return s
}

// next reads one frame; frames cross a real hub and Redis, so a deadline (not a
// sleep) bounds the wait.
func (s *socket) next() map[string]any {
	s.t.Helper()
	s.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var f map[string]any
	if err := s.ws.ReadJSON(&f); err != nil {
		s.t.Fatalf("read frame: %v", err)
	}
	return f
}

// until reads frames until one of typ satisfies ok, and returns it with the
// frames read before it.
func (s *socket) until(typ string, ok func(f map[string]any) bool) (map[string]any, []map[string]any) {
	s.t.Helper()
	var before []map[string]any
	for {
		f := s.next()
		if f["type"] == typ && (ok == nil || ok(f)) {
			return f, before
		}
		before = append(before, f)
	}
}

func whisperOf(f map[string]any) map[string]any {
	w, _ := f["whisper"].(map[string]any)
	return w
}

// TestWhisperEndToEnd: the supervisor posts a whisper, the operator's page gets
// it, the operator acknowledges over HTTP, and the supervisor's page sees the
// acknowledgement with its time.
func TestWhisperEndToEnd(t *testing.T) {
	e := newSupEnv(t)
	ctx := context.Background()
	// maria is talking on call-7: the whisper is kept with it.
	if err := e.store.Claim(ctx, "maria", "call-7", desk.StatusTalking, time.Hour); err != nil {
		t.Fatal(err)
	}
	supPage, opPage := e.dial("sveta"), e.dial("maria")
	sveta, maria, boris := e.loggedIn("sveta"), e.loggedIn("maria"), e.loggedIn("boris")

	res := sveta.do("POST", "/api/operators/maria/whisper", map[string]string{"text": "Offer the 10% discount"}, nil)
	if res.status != http.StatusCreated {
		t.Fatalf("whisper: %d %s", res.status, res.body)
	}
	var w desk.Whisper
	res.json(t, &w)
	if w.ID == "" || w.Operator != "maria" || w.By != "sveta" || w.Text != "Offer the 10% discount" || w.CallID != "call-7" ||
		!w.At.Equal(supT0) || w.AckedAt != nil {
		t.Fatalf("whisper %+v", w)
	}
	isOurs := func(f map[string]any) bool { return whisperOf(f)["id"] == w.ID }

	got, _ := opPage.until(desk.EventWhisper, isOurs)
	if ow := whisperOf(got); ow["text"] != w.Text || ow["by"] != "sveta" || ow["call_id"] != "call-7" || ow["acked_at"] != nil {
		t.Fatalf("operator's whisper frame %v", got)
	}
	supPage.until(desk.EventWhisper, isOurs) // supervisors see every whisper too

	// Only the operator it was whispered to acknowledges it.
	for who, c := range map[string]*client{"boris": boris, "sveta": sveta} {
		if res := c.do("POST", "/api/whispers/"+w.ID+"/ack", nil, nil); res.status != http.StatusForbidden {
			t.Fatalf("ack by %s: %d %s", who, res.status, res.body)
		}
	}
	if res := maria.do("POST", "/api/whispers/nope/ack", nil, nil); res.status != http.StatusNotFound {
		t.Fatalf("ack of an unknown whisper: %d %s", res.status, res.body)
	}
	e.clock.Add(20 * time.Second)
	res = maria.do("POST", "/api/whispers/"+w.ID+"/ack", nil, nil)
	if res.status != http.StatusOK {
		t.Fatalf("ack: %d %s", res.status, res.body)
	}
	var acked desk.Whisper
	res.json(t, &acked)
	wantAck := supT0.Add(20 * time.Second)
	if acked.AckedAt == nil || !acked.AckedAt.Equal(wantAck) {
		t.Fatalf("acked %+v; want acked_at %v", acked, wantAck)
	}

	ack, _ := supPage.until(desk.EventWhisperAck, isOurs)
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(whisperOf(ack)["acked_at"]))
	if err != nil || !at.Equal(wantAck) || whisperOf(ack)["operator"] != "maria" {
		t.Fatalf("supervisor's whisper.ack frame %v (%v)", ack, err)
	}
	opPage.until(desk.EventWhisperAck, isOurs) // the operator's other tabs unpin it

	// Listing: nothing left unacknowledged; the call keeps the whisper.
	for _, tc := range []struct {
		c     *client
		path  string
		want  []string
		state int
	}{
		{maria, "/api/whispers?unacked=1", []string{}, 200},
		{maria, "/api/whispers", []string{w.ID}, 200},
		{maria, "/api/whispers?operator=boris", nil, 403},
		{maria, "/api/whispers?call=call-7", []string{w.ID}, 200},
		{boris, "/api/whispers?call=call-7", []string{}, 200},
		{sveta, "/api/whispers?operator=maria", []string{w.ID}, 200},
		{sveta, "/api/whispers?unacked=1", []string{}, 200},
		{sveta, "/api/whispers?call=call-7", []string{w.ID}, 200},
		{sveta, "/api/whispers?unacked=maybe", nil, 400},
	} {
		res := tc.c.do("GET", tc.path, nil, nil)
		if res.status != tc.state {
			t.Fatalf("GET %s: %d %s", tc.path, res.status, res.body)
		}
		if tc.state != 200 {
			continue
		}
		var ws []desk.Whisper
		res.json(t, &ws)
		ids := []string{}
		for _, w := range ws {
			ids = append(ids, w.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Fatalf("GET %s = %v; want %v", tc.path, ids, tc.want)
		}
	}
}

func TestWhisperValidation(t *testing.T) {
	e := newSupEnv(t)
	sveta := e.loggedIn("sveta")
	cases := []struct {
		name   string
		path   string
		body   any
		status int
		field  string
	}{
		{"no text", "/api/operators/maria/whisper", map[string]string{}, 400, "text"},
		{"blank text", "/api/operators/maria/whisper", map[string]string{"text": "  "}, 400, "text"},
		{"501 characters", "/api/operators/maria/whisper", map[string]string{"text": strings.Repeat("ж", 501)}, 400, "text"},
		{"unknown operator", "/api/operators/ghost/whisper", map[string]string{"text": "hi"}, 404, ""},
		{"to a supervisor", "/api/operators/sveta/whisper", map[string]string{"text": "hi"}, 404, ""},
		{"bad json", "/api/operators/maria/whisper", `{"text": `, 400, ""},
		{"500 characters", "/api/operators/maria/whisper", map[string]string{"text": strings.Repeat("ж", 500)}, 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := sveta.do("POST", tc.path, tc.body, nil)
			if res.status != tc.status {
				t.Fatalf("status %d (%s), want %d", res.status, res.body, tc.status)
			}
			if tc.field != "" {
				var b errBody
				res.json(t, &b)
				if b.Field != tc.field {
					t.Fatalf("error %+v, want field %s", b, tc.field)
				}
			}
		})
	}
}

// TestSupervisorEndpointsRefuseOperators: every supervisor endpoint answers an
// operator 403 and changes nothing, while a supervisor and an admin get through.
func TestSupervisorEndpointsRefuseOperators(t *testing.T) {
	e := newSupEnv(t)
	ctx := context.Background()
	p := &desk.Promise{ID: "p-ivan", Owner: "ivan", Kind: "promise", What: "call back", Due: supT0.Add(time.Hour), Created: supT0, State: desk.PromiseOpen}
	if err := e.store.SavePromise(ctx, p); err != nil {
		t.Fatal(err)
	}
	call := &desk.Call{ID: "c-maria", Operator: "maria", State: desk.CallEnded, From: "+79160000001", Started: supT0}
	if err := e.store.SaveCall(ctx, call); err != nil {
		t.Fatal(err)
	}
	endpoints := []struct {
		method, path string
		body         any
		staff        int // status for a supervisor or admin
	}{
		{"POST", "/api/operators/boris/whisper", map[string]string{"text": "hi"}, 201},
		{"PUT", "/api/operators/boris/presence", map[string]bool{"away": true}, 204},
		{"POST", "/api/reassign", map[string]any{"kind": "promise", "ids": []string{"p-ivan"}, "to": "boris"}, 200},
		{"GET", "/api/operators", nil, 200},
		{"GET", "/api/users", nil, 200},
		{"GET", "/api/audit", nil, 200},
		{"GET", "/api/reports/kept-rate", nil, 200},
		{"POST", "/api/calls/c-maria/wrapup/force", map[string]string{"reason": "left"}, 200},
	}
	maria := e.loggedIn("maria")
	for _, ep := range endpoints {
		t.Run("operator "+ep.method+" "+ep.path, func(t *testing.T) {
			res := maria.do(ep.method, ep.path, ep.body, nil)
			if res.status != http.StatusForbidden {
				t.Fatalf("status %d (%s), want 403", res.status, res.body)
			}
			res.errorText(t)
		})
	}
	// Nothing the operator tried happened.
	if ws, err := e.store.Whispers(ctx, "", false); err != nil || len(ws) != 0 {
		t.Fatalf("whispers after refusals: %+v %v", ws, err)
	}
	if got, _ := e.store.Promise(ctx, "p-ivan"); got.Owner != "ivan" {
		t.Fatalf("promise moved by an operator: %+v", got)
	}
	if ops, _ := e.store.Operators(ctx); slices.ContainsFunc(ops, func(o *desk.Operator) bool { return o.Away }) {
		t.Fatalf("presence forced by an operator: %+v", ops)
	}
	if log, _ := e.store.AuditLog(ctx, 0); len(log) != 0 {
		t.Fatalf("audit after refusals: %+v", log)
	}
	if rec, err := e.store.Record(ctx, "c-maria"); err == nil && rec.Wrapup != nil {
		t.Fatalf("wrap-up forced by an operator")
	}
	// The same requests pass for a supervisor and an admin (each request on a fresh
	// state is not needed: the second run's changes are idempotent or new).
	for _, who := range []string{"sveta", "root"} {
		c := e.loggedIn(who)
		for _, ep := range endpoints {
			t.Run(who+" "+ep.method+" "+ep.path, func(t *testing.T) {
				res := c.do(ep.method, ep.path, ep.body, nil)
				if res.status != ep.staff {
					t.Fatalf("status %d (%s), want %d", res.status, res.body, ep.staff)
				}
			})
		}
	}
}

// TestOperatorSocketIsolation: an operator's websocket never receives another
// operator's call frames, while that operator and the supervisors do. A frame for
// the first operator, published after them, is the barrier: frames of one channel
// arrive in publish order, so once it arrives nothing else for him is in flight.
func TestOperatorSocketIsolation(t *testing.T) {
	e := newSupEnv(t)
	mariaPage, borisPage, supPage := e.dial("maria"), e.dial("boris"), e.dial("sveta")
	call := &desk.Call{ID: "c-boris", Operator: "boris", State: desk.CallRinging, From: "+79160000002", Started: supT0}
	callFrames := []desk.Event{
		{Type: desk.EventCallRinging, Operators: []string{"boris"}, Payload: desk.Pop{Call: call}},
		{Type: desk.EventCallAnswered, Operators: []string{"boris"}, Payload: desk.CallUpdate{Call: call}},
		{Type: desk.EventScriptProgress, Operators: []string{"boris"}, Payload: desk.Progress{CallID: call.ID, Operator: "boris", Record: &desk.Record{CallID: call.ID}}},
		{Type: desk.EventCallEnded, Operators: []string{"boris"}, Payload: desk.CallUpdate{Call: call}},
		{Type: desk.EventCallMissed, Operators: []string{"boris"}, Payload: desk.CallUpdate{Call: call}},
	}
	for _, ev := range callFrames {
		e.hub.Publish(ev)
	}
	// The barrier: a whisper to maria, through the API as a supervisor sends it.
	res := e.loggedIn("sveta").do("POST", "/api/operators/maria/whisper", map[string]string{"text": "barrier"}, nil)
	if res.status != http.StatusCreated {
		t.Fatalf("whisper: %d %s", res.status, res.body)
	}
	_, before := mariaPage.until(desk.EventWhisper, nil)
	for _, f := range before {
		if typ, _ := f["type"].(string); strings.HasPrefix(typ, "call.") || typ == desk.EventScriptProgress {
			t.Fatalf("maria's page got boris's frame %v", f)
		}
		if strings.Contains(fmt.Sprint(f), "c-boris") {
			t.Fatalf("maria's page got a frame about boris's call: %v", f)
		}
	}
	for name, page := range map[string]*socket{"boris": borisPage, "sveta": supPage} {
		for _, ev := range callFrames {
			f, _ := page.until(ev.Type, nil)
			c, _ := f["call"].(map[string]any)
			if ev.Type == desk.EventScriptProgress {
				c = map[string]any{"id": f["call_id"]}
			}
			if c["id"] != "c-boris" {
				t.Fatalf("%s's %s frame %v", name, ev.Type, f)
			}
		}
	}
}

// TestBulkReassignOverHTTP: "all of ivan's open promises to maria" moves exactly
// the open ones, leaves the kept one, and audits each move with from and to.
func TestBulkReassignOverHTTP(t *testing.T) {
	e := newSupEnv(t)
	ctx := context.Background()
	kept := supT0.Add(-time.Hour)
	for _, p := range []*desk.Promise{
		{ID: "open-1", Owner: "ivan", State: desk.PromiseOpen, Due: supT0.Add(time.Hour)},
		{ID: "overdue", Owner: "ivan", State: desk.PromiseOpen, Due: supT0.Add(-time.Hour)},
		{ID: "kept", Owner: "ivan", State: desk.PromiseKept, Due: supT0.Add(-2 * time.Hour), KeptAt: &kept},
		{ID: "boris-1", Owner: "boris", State: desk.PromiseOpen, Due: supT0.Add(time.Hour)},
	} {
		p.Kind, p.What, p.Created = "promise", "send the offer", supT0.Add(-3*time.Hour)
		if err := e.store.SavePromise(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	supPage := e.dial("sveta")
	sveta := e.loggedIn("sveta")
	cases := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"to a supervisor", map[string]any{"kind": "promise", "from": "ivan", "to": "sveta"}, 400, "to"},
		{"to nobody known", map[string]any{"kind": "promise", "from": "ivan", "to": "ghost"}, 400, "to"},
		{"bulk without from", map[string]any{"kind": "promise", "to": "maria"}, 400, "from"},
		{"unknown kind", map[string]any{"kind": "meeting", "from": "ivan", "to": "maria"}, 400, "kind"},
		{"too many ids", map[string]any{"kind": "promise", "ids": make([]string, 1001), "to": "maria"}, 400, "ids"},
		{"unknown id", map[string]any{"kind": "promise", "ids": []string{"nope"}, "to": "maria"}, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := sveta.do("POST", "/api/reassign", tc.body, nil)
			if res.status != tc.status {
				t.Fatalf("status %d (%s), want %d", res.status, res.body, tc.status)
			}
			if tc.field != "" {
				var b errBody
				res.json(t, &b)
				if b.Field != tc.field {
					t.Fatalf("error %+v, want field %s", b, tc.field)
				}
			}
		})
	}

	res := sveta.do("POST", "/api/reassign", map[string]any{"kind": "promise", "from": "ivan", "to": "maria"}, nil)
	if res.status != 200 {
		t.Fatalf("reassign: %d %s", res.status, res.body)
	}
	var got desk.ReassignResult
	res.json(t, &got)
	if got != (desk.ReassignResult{Promises: 2}) {
		t.Fatalf("result %+v; want 2 promises", got)
	}
	for id, owner := range map[string]string{"open-1": "maria", "overdue": "maria", "kept": "ivan", "boris-1": "boris"} {
		if p, err := e.store.Promise(ctx, id); err != nil || p.Owner != owner {
			t.Errorf("promise %s owner %q (%v); want %q", id, p.Owner, err, owner)
		}
	}
	var mine []desk.Promise
	e.loggedIn("maria").do("GET", "/api/promises?owner=maria&state=open", nil, nil).json(t, &mine)
	if len(mine) != 2 {
		t.Errorf("maria's open promises %+v; want the 2 moved", mine)
	}

	var audit []desk.AuditEntry
	sveta.do("GET", "/api/audit", nil, nil).json(t, &audit)
	if len(audit) != 2 {
		t.Fatalf("audit %+v; want one entry per moved promise", audit)
	}
	targets := []string{}
	for _, a := range audit {
		if a.Action != "reassign.promise" || a.Who != "sveta" || a.Detail != "from ivan to maria" || !a.At.Equal(supT0) {
			t.Errorf("audit entry %+v", a)
		}
		targets = append(targets, a.Target)
	}
	slices.Sort(targets)
	if !slices.Equal(targets, []string{"open-1", "overdue"}) {
		t.Errorf("audited %v; want open-1 and overdue", targets)
	}
	// The supervisor's page hears of both moves.
	seen := map[string]bool{}
	for len(seen) < 2 {
		f, _ := supPage.until(desk.EventPromiseUpdated, nil)
		p, _ := f["promise"].(map[string]any)
		if p["owner"] != "maria" {
			t.Fatalf("promise.updated %v", f)
		}
		seen[fmt.Sprint(p["id"])] = true
	}
}

// TestForcePresence: a supervisor forces an operator away and back; both pages
// get the presence frame with his fresh presence, and it is audited.
func TestForcePresence(t *testing.T) {
	e := newSupEnv(t)
	opPage, supPage := e.dial("maria"), e.dial("sveta")
	sveta := e.loggedIn("sveta")
	for _, c := range []struct {
		name   string
		login  string
		body   any
		status int
	}{
		{"no away", "maria", map[string]any{}, 400},
		{"away not a boolean", "maria", map[string]any{"away": "yes"}, 400},
		{"unknown operator", "ghost", map[string]any{"away": true}, 404},
	} {
		if res := sveta.do("PUT", "/api/operators/"+c.login+"/presence", c.body, nil); res.status != c.status {
			t.Fatalf("%s: %d %s; want %d", c.name, res.status, res.body, c.status)
		}
	}
	for _, away := range []bool{true, false} {
		if res := sveta.do("PUT", "/api/operators/maria/presence", map[string]bool{"away": away}, nil); res.status != 204 {
			t.Fatalf("force away=%v: %d %s", away, res.status, res.body)
		}
		wantStatus := map[bool]string{true: "away", false: "available"}[away]
		for name, page := range map[string]*socket{"maria": opPage, "sveta": supPage} {
			f, _ := page.until(desk.EventPresence, func(f map[string]any) bool {
				o, _ := f["operator"].(map[string]any)
				return o["login"] == "maria" && o["away"] == away
			})
			if o := f["operator"].(map[string]any); o["status"] != wantStatus {
				t.Fatalf("%s's presence frame %v; want status %s", name, f, wantStatus)
			}
		}
	}
	var audit []desk.AuditEntry
	sveta.do("GET", "/api/audit", nil, nil).json(t, &audit)
	if len(audit) != 2 || audit[0].Action != "presence.force" || audit[0].Detail != "available" || audit[1].Detail != "away" ||
		audit[0].Target != "maria" || audit[0].Who != "sveta" {
		t.Fatalf("audit %+v", audit)
	}
}
