package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/httpapi"
	"github.com/calldesk/desk/desk/hub"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
	"github.com/calldesk/desk/desk/webhook"
	"github.com/calldesk/desk/desk/yamlfile"
	"github.com/calldesk/desk/scripts"
	"github.com/calldesk/desk/static"
)

// fakeClock is the sales desk's clock: deadlines and the kept-rate depend on it,
// never on the machine's.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var salesT0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

// salesEnv is env with the real sales desk on the same Redis, the shipped
// scripts, and a CRM webhook posting to a loopback server.
type salesEnv struct {
	*env
	sales *desk.Sales
	wh    *webhook.Webhook
	clock *fakeClock

	crmMu   sync.Mutex
	crmGot  [][]byte
	crmSigs []string
}

const crmSecret = "crm-secret"

func newSalesEnv(t *testing.T) *salesEnv {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	store := redisstore.New(rdb, redisstore.WithPrefix(prefix), redisstore.WithLogger(quiet()))
	se := &salesEnv{clock: &fakeClock{t: salesT0}}

	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		se.crmMu.Lock()
		se.crmGot = append(se.crmGot, body)
		se.crmSigs = append(se.crmSigs, r.Header.Get("X-Desk-Signature"))
		se.crmMu.Unlock()
	}))
	wh := webhook.New(crm.URL, crmSecret, webhook.WithLogger(quiet()), webhook.WithRedis(rdb, prefix))
	whCtx, whStop := context.WithCancel(context.Background())
	wh.Start(whCtx)

	set, err := yamlfile.LoadScripts(scripts.FS)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	// The hub's snapshot reads the sales desk, which publishes through the hub.
	var sales *desk.Sales
	h := hub.New(rdb, hub.WithPrefix(prefix), hub.WithLogger(quiet()), hub.WithPresence(store),
		hub.WithSnapshot(func(ctx context.Context, u *desk.User) (any, error) {
			return httpapi.SnapshotFunc(store, nil, httpapi.WithSales(sales))(ctx, u)
		}), hub.WithRegisterer(reg))
	sales = desk.NewSales(store, h, desk.WithSalesLogger(quiet()), desk.WithSalesClock(se.clock.Now),
		desk.WithSalesScripts(set.Map("en")),
		desk.WithSalesLines([]desk.Line{{Number: "sales", Name: "Sales", Script: "default", Source: "exhibition"}}, "default"),
		desk.WithLocation(time.UTC), desk.WithNotifier(wh))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	api := httpapi.New(store, h, httpapi.WithLogger(quiet()), httpapi.WithStatic(static.FS),
		httpapi.WithRealm(realm), httpapi.WithRegion("RU"), httpapi.WithRegisterer(reg), httpapi.WithGatherer(reg),
		httpapi.WithSales(sales), httpapi.WithDeliveries(wh), httpapi.WithLocation(time.UTC), httpapi.WithClock(se.clock.Now))
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		whStop()
		wh.Close()
		crm.Close()
		cancel()
		<-done
		store.Close()
	})
	se.env = &env{t: t, rdb: rdb, store: store, hub: h, srv: srv}
	se.sales, se.wh = sales, wh
	return se
}

// endedCall stores an answered call of operator that has just ended and tells
// the sales desk, as the switchboard does: the operator then owes its wrap-up.
func (se *salesEnv) endedCall(id, operator, from string) *desk.Call {
	se.t.Helper()
	now := se.clock.Now()
	answered, ended := now.Add(-3*time.Minute), now
	c := &desk.Call{ID: id, SIPCallID: "sip-" + id, From: from, To: "sales", Line: "sales", Script: "default",
		Operator: operator, State: desk.CallEnded, Started: now.Add(-4 * time.Minute), Answered: &answered, Ended: &ended}
	ctx := context.Background()
	if err := se.store.SaveCall(ctx, c); err != nil {
		se.t.Fatal(err)
	}
	se.sales.CallEnded(ctx, c)
	return c
}

// answers is the body of PUT /api/calls/ID/answers.
func answers(op, step string, fields map[string]any) map[string]any {
	return map[string]any{"op": op, "step": step, "fields": fields}
}

type errBody struct {
	Error   string   `json:"error"`
	Field   string   `json:"field"`
	Missing []string `json:"missing"`
}

// TestSalesAPI walks one call through the API as the page and a supervisor
// would: answers (with a replay and refusals), the wrap-up refused then accepted,
// the promise kept, the card, notes, the manager, a forced wrap-up in the audit,
// the kept-rate and the webhook deliveries. Steps run in order and share state.
func TestSalesAPI(t *testing.T) {
	se := newSalesEnv(t)
	for _, u := range []struct {
		login string
		role  desk.Role
	}{{"anna", desk.RoleOperator}, {"boris", desk.RoleOperator}, {"sveta", desk.RoleSupervisor}, {"root", desk.RoleAdmin}} {
		se.user(u.login, u.role)
	}
	clients := map[string]*client{}
	for _, l := range []string{"anna", "boris", "sveta", "root"} {
		clients[l] = se.loggedIn(l)
	}
	se.endedCall("c1", "anna", "+79161110001")
	se.endedCall("c2", "boris", "+79161110002")

	var (
		contactID string
		promiseID string
	)
	record := func(t *testing.T, r result) desk.Record {
		var rec desk.Record
		r.json(t, &rec)
		return rec
	}
	wantErr := func(field string, missing ...string) func(t *testing.T, r result) {
		return func(t *testing.T, r result) {
			var b errBody
			r.json(t, &b)
			if b.Error == "" || b.Field != field || !slices.Equal(b.Missing, missing) {
				t.Fatalf("error body %s, want field %q missing %v", r.body, field, missing)
			}
		}
	}
	steps := []struct {
		name   string
		as     string
		method string
		path   func() string
		body   any
		want   int
		check  func(t *testing.T, r result)
	}{
		{"operator answers", "anna", "PUT", fixed("/api/calls/c1/answers"),
			answers("op-1", "contact", map[string]any{"name": "Ivan Petrov", "company": "Romashka"}), 200,
			func(t *testing.T, r result) {
				rec := record(t, r)
				if rec.Answers["contact.name"] != "Ivan Petrov" || rec.Answers["contact.company"] != "Romashka" || rec.Ops != 1 || rec.CallID != "c1" {
					t.Fatalf("record %s", r.body)
				}
			}},
		{"a replayed op returns the same record", "anna", "PUT", fixed("/api/calls/c1/answers"),
			answers("op-1", "contact", map[string]any{"name": "Somebody Else"}), 200,
			func(t *testing.T, r result) {
				if rec := record(t, r); rec.Answers["contact.name"] != "Ivan Petrov" || rec.Ops != 1 {
					t.Fatalf("replay changed the record: %s", r.body)
				}
			}},
		{"another operator may not answer", "boris", "PUT", fixed("/api/calls/c1/answers"),
			answers("op-b", "contact", map[string]any{"name": "X"}), 403, nil},
		{"a supervisor may answer", "sveta", "PUT", fixed("/api/calls/c1/answers"),
			answers("op-s", "contact", map[string]any{"position": "CTO"}), 200,
			func(t *testing.T, r result) {
				if rec := record(t, r); rec.Answers["contact.position"] != "CTO" || rec.Ops != 2 {
					t.Fatalf("record %s", r.body)
				}
			}},
		{"a bad e-mail names its field", "anna", "PUT", fixed("/api/calls/c1/answers"),
			answers("op-2", "company_details", map[string]any{"email": "ivan at romashka"}), 400, wantErr("email")},
		{"op is required", "anna", "PUT", fixed("/api/calls/c1/answers"),
			answers("", "contact", map[string]any{"name": "X"}), 400, wantErr("op")},
		{"a nested value is refused", "anna", "PUT", fixed("/api/calls/c1/answers"),
			answers("op-3", "contact", map[string]any{"name": map[string]any{"first": "Ivan"}}), 400, wantErr("fields.name")},
		{"numbers and booleans are taken as strings", "anna", "PUT", fixed("/api/calls/c1/answers"),
			answers("op-4", "need_product", map[string]any{"quantity": 12, "product": true}), 200,
			func(t *testing.T, r result) {
				if rec := record(t, r); rec.Answers["need.quantity"] != "12" || rec.Answers["need.product"] != "true" {
					t.Fatalf("record %s", r.body)
				}
			}},
		{"bad json", "anna", "PUT", fixed("/api/calls/c1/answers"), `{"op": `, 400,
			func(t *testing.T, r result) {
				if !strings.Contains(r.errorText(t), "bad json") {
					t.Fatalf("error %s", r.body)
				}
			}},
		{"unknown call", "anna", "PUT", fixed("/api/calls/nope/answers"),
			answers("op-5", "contact", map[string]any{"name": "X"}), 404, nil},
		{"not logged in", "", "PUT", fixed("/api/calls/c1/answers"),
			answers("op-6", "contact", map[string]any{"name": "X"}), 401, nil},
		{"the record", "anna", "GET", fixed("/api/calls/c1/record"), nil, 200,
			func(t *testing.T, r result) {
				if rec := record(t, r); rec.Answers["contact.name"] != "Ivan Petrov" || rec.PresetSource != "exhibition" {
					t.Fatalf("record %s", r.body)
				}
			}},
		{"another operator may not read it", "boris", "GET", fixed("/api/calls/c1/record"), nil, 403, nil},
		{"a promise without a deadline", "anna", "PUT", fixed("/api/calls/c1/answers"),
			answers("op-7", "promise", map[string]any{"what": "Send an offer"}), 200, nil},
		{"wrap-up refused with what is missing", "anna", "POST", fixed("/api/calls/c1/wrapup"),
			map[string]string{"outcome": "interest"}, 422, wantErr("", "source", "promise.due")},
		{"source and a quick deadline", "anna", "PUT", fixed("/api/calls/c1/answers"),
			answers("op-8", "source", map[string]any{"source": "web_search"}), 200,
			func(t *testing.T, r result) {
				if rec := record(t, r); !rec.SourceMismatch {
					t.Fatalf("source differs from the line's preset but is not flagged: %s", r.body)
				}
			}},
		{"deadline +2h", "anna", "PUT", fixed("/api/calls/c1/answers"),
			answers("op-9", "promise", map[string]any{"due": "+2h"}), 200,
			func(t *testing.T, r result) {
				if rec := record(t, r); rec.Answers["promise.due"] != salesT0.Add(2*time.Hour).Format(time.RFC3339) {
					t.Fatalf("due %q", rec.Answers["promise.due"])
				}
			}},
		{"a bad outcome names its field", "anna", "POST", fixed("/api/calls/c1/wrapup"),
			map[string]string{"outcome": "maybe"}, 400, wantErr("outcome")},
		{"wrap-up accepted", "anna", "POST", fixed("/api/calls/c1/wrapup"),
			map[string]string{"outcome": "interest", "stage": "needs_identified", "note": "Prefers e-mail"}, 200,
			func(t *testing.T, r result) {
				var res desk.WrapupResult
				r.json(t, &res)
				if res.Contact == nil || res.Promise == nil || res.Interest == nil || res.Record.Wrapup == nil ||
					res.Interest.Stage != "needs_identified" || !res.Promise.Due.Equal(salesT0.Add(2*time.Hour)) {
					t.Fatalf("wrap-up %s", r.body)
				}
				contactID, promiseID = res.Contact.ID, res.Promise.ID
			}},
		{"answers after the wrap-up are refused", "anna", "PUT", fixed("/api/calls/c1/answers"),
			answers("op-10", "contact", map[string]any{"name": "Late"}), 400, nil},
		{"open promises", "anna", "GET", fixed("/api/promises?state=open"), nil, 200,
			func(t *testing.T, r result) {
				var ps []desk.Promise
				r.json(t, &ps)
				if len(ps) != 1 || ps[0].ID != promiseID || ps[0].What != "Send an offer" || ps[0].Owner != "anna" {
					t.Fatalf("promises %s", r.body)
				}
			}},
		{"a bad promise state", "anna", "GET", fixed("/api/promises?state=lost"), nil, 400, wantErr("state")},
		{"another operator's promises", "anna", "GET", fixed("/api/promises?owner=boris"), nil, 403, nil},
		{"another operator may not keep it", "boris", "POST", func() string { return "/api/promises/" + promiseID + "/kept" },
			map[string]string{"result": "x"}, 403, nil},
		{"kept", "anna", "POST", func() string { return "/api/promises/" + promiseID + "/kept" },
			map[string]string{"result": "Offer sent"}, 200,
			func(t *testing.T, r result) {
				var p desk.Promise
				r.json(t, &p)
				if p.State != desk.PromiseKept || p.Result != "Offer sent" || p.KeptAt == nil {
					t.Fatalf("promise %s", r.body)
				}
			}},
		{"no promise left open", "anna", "GET", fixed("/api/promises?state=open"), nil, 200,
			func(t *testing.T, r result) {
				if string(r.body) != "[]\n" && string(r.body) != "[]" {
					t.Fatalf("promises %s", r.body)
				}
			}},
		{"a note", "anna", "POST", func() string { return "/api/contacts/" + contactID + "/notes" },
			map[string]string{"text": "Has a warehouse in Tver", "call_id": "c1"}, 201, nil},
		{"an empty note", "anna", "POST", func() string { return "/api/contacts/" + contactID + "/notes" },
			map[string]string{"text": "  "}, 400, wantErr("text")},
		{"a note on an unknown contact", "anna", "POST", fixed("/api/contacts/nope/notes"),
			map[string]string{"text": "x"}, 404, nil},
		{"another operator may not read the card (contact outside his work)", "boris", "GET",
			func() string { return "/api/contacts/" + contactID + "/card" }, nil, 403, nil},
		{"the card shows the history, the interest and the notes", "anna", "GET",
			func() string { return "/api/contacts/" + contactID + "/card" }, nil, 200,
			func(t *testing.T, r result) {
				var card desk.Card
				r.json(t, &card)
				if len(card.Calls) != 1 || card.Calls[0].CallID != "c1" || card.Calls[0].Operator != "anna" ||
					card.Calls[0].Outcome != "interest" || card.Calls[0].Seconds != 180 {
					t.Fatalf("card calls %+v", card.Calls)
				}
				if card.Interest == nil || card.Interest.Stage != "needs_identified" {
					t.Fatalf("card interest %+v", card.Interest)
				}
				var notes []string
				for _, n := range card.Notes {
					notes = append(notes, n.Text)
				}
				if !slices.Equal(notes, []string{"Has a warehouse in Tver", "Prefers e-mail"}) {
					t.Fatalf("card notes %q", notes)
				}
			}},
		{"an operator sets the manager", "anna", "PUT", func() string { return "/api/contacts/" + contactID + "/manager" },
			map[string]string{"manager": "anna"}, 200,
			func(t *testing.T, r result) {
				var c desk.Contact
				r.json(t, &c)
				if c.Manager != "anna" {
					t.Fatalf("contact %s", r.body)
				}
			}},
		{"a supervisor changes the manager", "sveta", "PUT", func() string { return "/api/contacts/" + contactID + "/manager" },
			map[string]string{"manager": "boris"}, 200, nil},
		{"the manager must be an operator", "sveta", "PUT", func() string { return "/api/contacts/" + contactID + "/manager" },
			map[string]string{"manager": "sveta"}, 400, wantErr("manager")},
		{"an operator may not force a wrap-up", "anna", "POST", fixed("/api/calls/c2/wrapup/force"),
			map[string]string{"reason": "x"}, 403, nil},
		{"forcing needs a reason", "sveta", "POST", fixed("/api/calls/c2/wrapup/force"),
			map[string]string{}, 400, wantErr("reason")},
		{"a supervisor forces it", "sveta", "POST", fixed("/api/calls/c2/wrapup/force"),
			map[string]string{"reason": "boris went home"}, 200,
			func(t *testing.T, r result) {
				var res desk.WrapupResult
				r.json(t, &res)
				if res.Record == nil || res.Record.Wrapup == nil || !res.Record.Wrapup.Forced || res.Record.Wrapup.ClosedBy != "sveta" {
					t.Fatalf("forced wrap-up %s", r.body)
				}
			}},
		{"the audit shows both", "root", "GET", fixed("/api/audit"), nil, 200,
			func(t *testing.T, r result) {
				var log []desk.AuditEntry
				r.json(t, &log)
				var got []string
				for _, e := range log {
					got = append(got, e.Who+" "+e.Action+" "+e.Target)
				}
				want := []string{"sveta wrapup.force c2", "sveta contact.manager " + contactID}
				if !slices.Equal(got, want) {
					t.Fatalf("audit %q, want %q (%s)", got, want, r.body)
				}
			}},
		{"operators may not read the audit", "anna", "GET", fixed("/api/audit"), nil, 403, nil},
		{"a bad audit limit", "sveta", "GET", fixed("/api/audit?limit=0"), nil, 400, wantErr("limit")},
		{"kept-rate by dates", "sveta", "GET", fixed("/api/reports/kept-rate?from=2025-03-01&to=2025-03-31"), nil, 200,
			func(t *testing.T, r result) {
				var body struct {
					From, To time.Time
					Rows     []desk.KeptRate
				}
				r.json(t, &body)
				if !body.From.Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)) || !body.To.Equal(time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)) {
					t.Fatalf("range %v - %v", body.From, body.To)
				}
				if len(body.Rows) != 1 || body.Rows[0].Owner != "anna" || body.Rows[0].OnTime != 1 || body.Rows[0].Rate != 1 {
					t.Fatalf("kept-rate %s", r.body)
				}
				if !strings.Contains(string(r.body), `"on_time":1`) {
					t.Fatalf("kept-rate JSON is not snake_case: %s", r.body)
				}
			}},
		{"kept-rate by default covers the last 30 days", "root", "GET", fixed("/api/reports/kept-rate"), nil, 200,
			func(t *testing.T, r result) {
				var body struct{ From, To time.Time }
				r.json(t, &body)
				if !body.To.Equal(salesT0) || !body.From.Equal(salesT0.AddDate(0, 0, -30)) {
					t.Fatalf("range %v - %v", body.From, body.To)
				}
			}},
		{"kept-rate with RFC3339", "sveta", "GET", fixed("/api/reports/kept-rate?from=2025-03-04T11:00:00Z&to=2025-03-04T13:00:00Z"), nil, 200,
			func(t *testing.T, r result) {
				var body struct{ Rows []desk.KeptRate }
				r.json(t, &body)
				if len(body.Rows) != 1 || body.Rows[0].OnTime != 1 {
					t.Fatalf("kept-rate %s", r.body)
				}
			}},
		{"kept-rate with a bad date", "sveta", "GET", fixed("/api/reports/kept-rate?from=March"), nil, 400, wantErr("from")},
		{"kept-rate with from after to", "sveta", "GET", fixed("/api/reports/kept-rate?from=2025-03-05&to=2025-03-01"), nil, 400, wantErr("from")},
		{"operators may not read the kept-rate", "anna", "GET", fixed("/api/reports/kept-rate"), nil, 403, nil},
		{"operators may not list deliveries", "anna", "GET", fixed("/api/webhook/deliveries"), nil, 403, nil},
	}
	clients[""] = se.client()
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := clients[st.as].do(st.method, st.path(), st.body, nil)
			if r.status != st.want {
				t.Fatalf("%s %s as %q: %d %s, want %d", st.method, st.path(), st.as, r.status, r.body, st.want)
			}
			if r.status >= 400 {
				r.errorText(t)
			}
			if st.check != nil {
				st.check(t, r)
			}
		})
		if t.Failed() {
			return // later steps build on this one
		}
	}

	// Both wrap-ups went to the CRM, signed; the supervisor sees them delivered.
	var body struct {
		Configured bool               `json:"configured"`
		Deliveries []webhook.Delivery `json:"deliveries"`
	}
	eventually(t, "both wrap-ups delivered", func() bool {
		r := clients["sveta"].do("GET", "/api/webhook/deliveries", nil, nil)
		if r.status != 200 {
			t.Fatalf("deliveries: %d %s", r.status, r.body)
		}
		r.json(t, &body)
		n := 0
		for _, d := range body.Deliveries {
			if d.Delivered && d.Kind == "wrapup" && d.Attempts == 1 {
				n++
			}
		}
		return body.Configured && n == 2 && len(body.Deliveries) == 2
	})
	se.crmMu.Lock()
	defer se.crmMu.Unlock()
	var calls []string
	for i, b := range se.crmGot {
		if !webhook.Verify([]byte(crmSecret), b, se.crmSigs[i]) {
			t.Fatalf("delivery %d: signature %q does not verify", i, se.crmSigs[i])
		}
		var env struct {
			Kind string `json:"kind"`
			Data struct {
				Record desk.Record `json:"record"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, env.Kind+" "+env.Data.Record.CallID)
	}
	slices.Sort(calls)
	if !slices.Equal(calls, []string{"wrapup c1", "wrapup c2"}) {
		t.Fatalf("the CRM got %q", calls)
	}
}

func fixed(p string) func() string { return func() string { return p } }

// eventually waits for something another goroutine does (a webhook POST); it is
// not time logic, so a real deadline is fine.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSnapshotPendingWrapup checks that a reloaded operator page starts in the
// wrap-up it owes, with its open promises and the pool's, and that the wrap-up is
// gone from the snapshot once done.
func TestSnapshotPendingWrapup(t *testing.T) {
	se := newSalesEnv(t)
	se.user("anna", desk.RoleOperator)
	se.user("sveta", desk.RoleSupervisor)
	anna := se.loggedIn("anna")
	se.endedCall("c1", "anna", "+79161110001")
	// A missed call from an unknown number becomes a callback promise of the pool.
	ctx := context.Background()
	missed := &desk.Call{ID: "m1", From: "+79161119999", To: "sales", Line: "sales", State: desk.CallMissed, Started: salesT0}
	if err := se.store.SaveCall(ctx, missed); err != nil {
		t.Fatal(err)
	}
	se.sales.CallMissed(ctx, missed)

	type snapshot struct {
		Type   string `json:"type"`
		Wrapup *struct {
			Call   *desk.Call   `json:"call"`
			Record *desk.Record `json:"record"`
		} `json:"wrapup"`
		Promises []desk.Promise `json:"promises"`
	}
	read := func(login string) snapshot {
		t.Helper()
		c := se.loggedIn(login)
		d := websocket.Dialer{Jar: c.hc.Jar, HandshakeTimeout: 5 * time.Second}
		ws, _, err := d.Dial(wsURL(se.env, ""), http.Header{"Origin": {se.srv.URL}})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var s snapshot
		if err := ws.ReadJSON(&s); err != nil || s.Type != "snapshot" {
			t.Fatalf("snapshot %+v: %v", s, err)
		}
		return s
	}

	s := read("anna")
	if s.Wrapup == nil || s.Wrapup.Call == nil || s.Wrapup.Call.ID != "c1" || s.Wrapup.Record == nil || s.Wrapup.Record.CallID != "c1" {
		t.Fatalf("pending wrap-up %+v", s.Wrapup)
	}
	if len(s.Promises) != 1 || s.Promises[0].Kind != "callback" || s.Promises[0].Owner != "" || s.Promises[0].Phone != "+79161119999" {
		t.Fatalf("promises %+v", s.Promises)
	}
	if sup := read("sveta"); sup.Wrapup != nil || sup.Promises != nil {
		t.Fatalf("a supervisor's snapshot has operator parts: %+v", sup)
	}

	anna.do("PUT", "/api/calls/c1/answers", answers("op-1", "contact", map[string]any{"name": "Ivan", "company": "Romashka"}), nil)
	anna.do("PUT", "/api/calls/c1/answers", answers("op-2", "source", map[string]any{"source": "exhibition"}), nil)
	if r := anna.do("POST", "/api/calls/c1/wrapup", map[string]string{"outcome": "interest"}, nil); r.status != 200 {
		t.Fatalf("wrap-up: %d %s", r.status, r.body)
	}
	if s := read("anna"); s.Wrapup != nil || len(s.Promises) != 1 {
		t.Fatalf("after the wrap-up: %+v", s)
	}
}

// TestSalesNotConfigured: a server without WithSales answers the sales routes 503
// and keeps the rest (and its snapshot) working; the deliveries say no webhook.
func TestSalesNotConfigured(t *testing.T) {
	e := newEnv(t)
	e.user("sveta", desk.RoleSupervisor)
	c := e.loggedIn("sveta")
	cases := []struct {
		method, path string
		body         any
		want         int
	}{
		{"PUT", "/api/calls/c1/answers", answers("op", "contact", nil), 503},
		{"GET", "/api/promises", nil, 503},
		{"GET", "/api/reports/kept-rate", nil, 503},
		{"GET", "/api/webhook/deliveries", nil, 200},
		{"GET", "/api/calls/live", nil, 200},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := c.do(tc.method, tc.path, tc.body, nil)
			if r.status != tc.want {
				t.Fatalf("status %d %s, want %d", r.status, r.body, tc.want)
			}
			if tc.path == "/api/webhook/deliveries" && strings.TrimSpace(string(r.body)) != `{"configured":false,"deliveries":[]}` {
				t.Fatalf("body %s", r.body)
			}
		})
	}
}
