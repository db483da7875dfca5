package httpapi_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/httpapi"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
	"github.com/calldesk/desk/static"
)

var reportsZone = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		panic(err)
	}
	return loc
}()

// reportsEnv is the web side with the real reports on a seeded Redis: four calls
// on March 3-4 2025 (Moscow), one record with a source mismatch, an interest, a
// promise and a meeting, and the users maria (operator), sveta (supervisor) and
// root (admin).
func newReportsEnv(t *testing.T) *env {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	store := redisstore.New(rdb, redisstore.WithPrefix(prefix), redisstore.WithLogger(quiet()))
	now := func() time.Time { return time.Date(2025, 3, 6, 12, 0, 0, 0, reportsZone) }
	reports := desk.NewReports(store, desk.WithReportsClock(now), desk.WithReportsLocation(reportsZone),
		desk.WithReportsSources([]string{"exhibition", "web_search", "referral"}),
		desk.WithReportsLines([]desk.Line{{Number: "sales", Source: "web_search"}, {Number: "expo", Source: "exhibition"}}),
		desk.WithChannelCosts(map[string]float64{"exhibition": 90000}, "RUB"))
	api := httpapi.New(store, nil, httpapi.WithLogger(quiet()), httpapi.WithStatic(static.FS), httpapi.WithRealm(realm),
		httpapi.WithLocation(reportsZone), httpapi.WithClock(now), httpapi.WithReports(reports))
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		store.Close()
	})
	e := &env{t: t, rdb: rdb, store: store, srv: srv}
	e.user("maria", desk.RoleOperator)
	e.user("sveta", desk.RoleSupervisor)
	e.user("root", desk.RoleAdmin)

	ctx := context.Background()
	at := func(day, h, m int) time.Time { return time.Date(2025, 3, day, h, m, 0, 0, reportsZone) }
	tp := func(t time.Time) *time.Time { return &t }
	calls := []*desk.Call{
		{ID: "c1", Line: "sales", Operator: "maria", From: "+79160000001", ContactID: "k1", State: desk.CallEnded, Started: at(3, 9, 0), Answered: tp(at(3, 9, 0).Add(10 * time.Second))},
		{ID: "c2", Line: "expo", Operator: "oleg", From: "+79160000002", State: desk.CallMissed, Reason: "cancelled", Started: at(3, 23, 30)},
		{ID: "c3", Line: "sales", Operator: "maria", From: "+79160000003", ContactID: "k3", State: desk.CallEnded, Started: at(4, 10, 0), Answered: tp(at(4, 10, 0).Add(20 * time.Second))},
		{ID: "c4", Line: "default", From: "+79160000004", State: desk.CallMissed, Reason: "no operator", Started: at(4, 11, 0)},
	}
	for _, c := range calls {
		if err := store.SaveCall(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*desk.Record{
		{CallID: "c1", Operator: "maria", ContactID: "k1", Line: "sales", PresetSource: "web_search", Answers: map[string]string{"source": "exhibition"}},
		{CallID: "c3", Operator: "maria", ContactID: "k3", Line: "sales", PresetSource: "web_search", Answers: map[string]string{"source": "web_search"}},
	} {
		if err := store.SaveRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.SaveInterest(ctx, &desk.Interest{ID: "i1", ContactID: "k1", Owner: "maria", Stage: "needs_identified", State: "open",
		Created: at(3, 9, 5), History: []desk.StageChange{{Stage: "needs_identified", State: "open", At: at(3, 9, 5), CallID: "c1"}}}); err != nil {
		t.Fatal(err)
	}
	if err := store.SavePromise(ctx, &desk.Promise{ID: "p1", Owner: "maria", CallID: "c1", Kind: "promise", What: "offer",
		Due: at(3, 12, 0), State: desk.PromiseKept, KeptAt: tp(at(3, 11, 0)), Created: at(3, 9, 5)}); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveMeeting(ctx, &desk.Meeting{ID: "m1", ContactID: "k1", CallID: "c1", Owner: "maria", At: at(10, 10, 0),
		Format: "office", Created: at(3, 9, 6)}); err != nil {
		t.Fatal(err)
	}
	return e
}

const reportDays = "from=2025-03-03&to=2025-03-04"

// getReport fetches a report as JSON, with numbers kept as written.
func getReport(t *testing.T, c *client, path string) map[string][][]any {
	t.Helper()
	res := c.do("GET", path, nil, nil)
	if res.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, res.status, res.body)
	}
	var rep struct {
		Tables []struct {
			Name string  `json:"name"`
			Rows [][]any `json:"rows"`
		} `json:"tables"`
	}
	dec := json.NewDecoder(bytes.NewReader(res.body))
	dec.UseNumber()
	if err := dec.Decode(&rep); err != nil {
		t.Fatal(err)
	}
	out := map[string][][]any{}
	for _, tb := range rep.Tables {
		out[tb.Name] = tb.Rows
	}
	return out
}

func TestReportsAPIRoles(t *testing.T) {
	e := newReportsEnv(t)
	op, sup, adm := e.loggedIn("maria"), e.loggedIn("sveta"), e.loggedIn("root")
	for _, name := range append(desk.ReportNames, "kept-rate") {
		if res := op.do("GET", "/api/reports/"+name+"?"+reportDays, nil, nil); res.status != http.StatusForbidden {
			t.Errorf("operator got %s: %d", name, res.status)
		}
		if res := op.do("GET", "/api/reports/"+name+"?format=csv", nil, nil); res.status != http.StatusForbidden {
			t.Errorf("operator got %s as csv: %d", name, res.status)
		}
	}
	if res := e.client().do("GET", "/api/reports/calls", nil, nil); res.status != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", res.status)
	}
	body := map[string]any{"costs": map[string]float64{"exhibition": 1}}
	for _, tt := range []struct {
		who          string
		c            *client
		method, path string
		want         int
	}{
		{"operator", op, "GET", "/api/config/costs", http.StatusForbidden},
		{"operator", op, "PUT", "/api/config/costs", http.StatusForbidden},
		{"supervisor", sup, "PUT", "/api/config/costs", http.StatusForbidden},
		{"supervisor", sup, "GET", "/api/config/costs", http.StatusOK},
		{"supervisor", sup, "GET", "/api/reports/calls?" + reportDays, http.StatusOK},
		{"admin", adm, "GET", "/api/reports/funnel?" + reportDays, http.StatusOK},
	} {
		var b any
		if tt.method == "PUT" {
			b = body
		}
		if res := tt.c.do(tt.method, tt.path, b, nil); res.status != tt.want {
			t.Errorf("%s %s %s: %d, want %d (%s)", tt.who, tt.method, tt.path, res.status, tt.want, res.body)
		}
	}
	if log, _ := e.store.AuditLog(context.Background(), 10); len(log) != 0 {
		t.Errorf("a refused change was audited: %+v", log)
	}
}

// Every table of every report, as CSV, parses back to the JSON's rows.
func TestReportsAPICSV(t *testing.T) {
	e := newReportsEnv(t)
	sup := e.loggedIn("sveta")
	for _, name := range desk.ReportNames {
		base := "/api/reports/" + name + "?" + reportDays
		tables := getReport(t, sup, base)
		res := sup.do("GET", base, nil, nil)
		var rep desk.Report
		res.json(t, &rep)
		for i, tb := range rep.Tables {
			path := base + "&format=csv&table=" + tb.Name
			if i == 0 {
				path = base + "&format=csv" // the first table is the default
			}
			res := sup.do("GET", path, nil, nil)
			if res.status != http.StatusOK || res.header.Get("Content-Type") != "text/csv; charset=utf-8" {
				t.Fatalf("%s: %d %q %s", path, res.status, res.header.Get("Content-Type"), res.body)
			}
			wantFile := `attachment; filename="` + name + "-" + tb.Name + `-20250303-20250304.csv"`
			if got := res.header.Get("Content-Disposition"); got != wantFile {
				t.Errorf("%s: Content-Disposition %q, want %q", path, got, wantFile)
			}
			recs, err := csv.NewReader(bytes.NewReader(res.body)).ReadAll()
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if strings.Join(recs[0], ",") != strings.Join(tb.Columns, ",") {
				t.Errorf("%s: header %v, want %v", path, recs[0], tb.Columns)
			}
			rows := tables[tb.Name]
			if len(recs)-1 != len(rows) {
				t.Fatalf("%s: %d csv rows, %d json rows", path, len(recs)-1, len(rows))
			}
			for j, row := range rows {
				for k, cell := range row {
					want := ""
					switch v := cell.(type) {
					case json.Number:
						want = v.String()
					case string:
						want = v
					case nil:
					default:
						t.Fatalf("%s row %d cell %d: %T", path, j, k, cell)
					}
					if recs[j+1][k] != want {
						t.Errorf("%s row %d cell %d (%s): csv %q, json %q", path, j, k, tb.Columns[k], recs[j+1][k], want)
					}
				}
			}
		}
	}
}

// The numbers of the seeded calls, and the manager, line and date filters.
func TestReportsAPIValues(t *testing.T) {
	e := newReportsEnv(t)
	sup := e.loggedIn("sveta")
	rowsOf := func(path, table string) string {
		t.Helper()
		b, _ := json.Marshal(getReport(t, sup, path)[table])
		return string(b)
	}
	tests := []struct {
		name, path, table, want string
	}{
		{"calls per day", "/api/reports/calls?" + reportDays, "per_day",
			`[["2025-03-03",2,1,1,1,10],["2025-03-04",2,1,1,0,20]]`},
		// c2 rang at 23:30 Moscow: March 3 and hour 23 in the desk's zone, though March 3 20:30 UTC.
		{"late call's hour", "/api/reports/calls?" + reportDays, "per_hour", ""},
		{"calls of maria", "/api/reports/calls?" + reportDays + "&manager=maria", "per_day",
			`[["2025-03-03",1,1,0,0,10],["2025-03-04",1,1,0,0,20]]`},
		{"calls on expo", "/api/reports/calls?" + reportDays + "&line=expo", "per_day",
			`[["2025-03-03",1,0,1,1,0],["2025-03-04",0,0,0,0,0]]`},
		{"one bare day", "/api/reports/calls?from=2025-03-04&to=2025-03-04", "per_day",
			`[["2025-03-04",2,1,1,0,20]]`},
		{"RFC3339", "/api/reports/calls?from=2025-03-03T09:00:00%2B03:00&to=2025-03-03T09:00:01%2B03:00", "per_day",
			`[["2025-03-03",1,1,0,0,10]]`},
		{"sources", "/api/reports/sources?" + reportDays, "channels",
			`[["exhibition",2,2,1,0.5,90000,45000,"RUB"],["web_search",1,1,0,0,null,null,""],["referral",0,0,0,0,null,null,""],["unknown",1,1,0,0,null,null,""]]`},
		{"source mismatch by line", "/api/reports/sources?" + reportDays, "lines",
			`[["default","",1,0,0,0],["expo","exhibition",1,0,0,0],["sales","web_search",2,2,1,0.5]]`},
		{"funnel", "/api/reports/funnel?" + reportDays, "open", `[["maria",0,1,0,0,0,1]]`},
		{"funnel of oleg", "/api/reports/funnel?" + reportDays + "&manager=oleg", "open", `[]`},
		{"promises", "/api/reports/promises?" + reportDays, "kept", `[["maria",1,0,0,0,1]]`},
		{"meetings", "/api/reports/meetings?" + reportDays, "per_manager", `[["maria",1,2,1,0.5]]`},
		{"meetings on expo", "/api/reports/meetings?" + reportDays + "&line=expo", "per_manager", `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rowsOf(tt.path, tt.table)
			if tt.name == "late call's hour" {
				var rows [][]any
				json.Unmarshal([]byte(got), &rows)
				if len(rows) != 24 || rows[23][1] != 1.0 || rows[23][3] != 1.0 || rows[20][1] != 0.0 {
					t.Errorf("per_hour: %s", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestReportsAPIErrors(t *testing.T) {
	e := newReportsEnv(t)
	sup := e.loggedIn("sveta")
	for _, tt := range []struct {
		path  string
		want  int
		field string
	}{
		{"/api/reports/revenue?" + reportDays, http.StatusNotFound, ""},
		{"/api/reports/calls?from=yesterday", http.StatusBadRequest, "from"},
		{"/api/reports/calls?to=03.04.2025", http.StatusBadRequest, "to"},
		{"/api/reports/calls?from=2025-03-05&to=2025-03-03", http.StatusBadRequest, "from"},
		{"/api/reports/calls?from=2023-01-01&to=2025-03-03", http.StatusBadRequest, "to"},
		{"/api/reports/calls?" + reportDays + "&format=xlsx", http.StatusBadRequest, "format"},
		{"/api/reports/calls?" + reportDays + "&format=csv&table=per_week", http.StatusBadRequest, "table"},
		{"/api/reports/calls?" + reportDays + "&manager=" + strings.Repeat("m", 200), http.StatusBadRequest, "manager"},
	} {
		res := sup.do("GET", tt.path, nil, nil)
		var body struct {
			Field string `json:"field"`
		}
		json.Unmarshal(res.body, &body)
		if res.status != tt.want || body.Field != tt.field {
			t.Errorf("%s: %d %s, want %d field %q", tt.path, res.status, res.body, tt.want, tt.field)
		}
	}
	// The default range is the last 30 days up to now (March 6): March 3-4 are in it.
	if rows := getReport(t, sup, "/api/reports/calls")["per_day"]; len(rows) != 31 {
		t.Errorf("default range: %d days", len(rows))
	}
	// Without the reports wired the routes say so.
	bare := newEnv(t)
	bare.user("sveta", desk.RoleSupervisor)
	if res := bare.loggedIn("sveta").do("GET", "/api/reports/calls", nil, nil); res.status != http.StatusServiceUnavailable {
		t.Errorf("unwired reports: %d", res.status)
	}
}

// An admin's costs override the config's, are audited, and show in the sources
// report; bad entries are refused by field.
func TestReportsAPICosts(t *testing.T) {
	e := newReportsEnv(t)
	adm, sup := e.loggedIn("root"), e.loggedIn("sveta")
	res := adm.do("PUT", "/api/config/costs", map[string]any{"currency": "RUB", "costs": map[string]float64{"web_search": 30000}}, nil)
	if res.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", res.status, res.body)
	}
	var v desk.CostsView
	sup.do("GET", "/api/config/costs", nil, nil).json(t, &v)
	if v.Currency != "RUB" || v.Costs["exhibition"] != 90000 || v.Costs["web_search"] != 30000 || v.Overrides == nil || v.Overrides.By != "root" {
		t.Errorf("costs: %+v", v)
	}
	b, _ := json.Marshal(getReport(t, sup, "/api/reports/sources?"+reportDays)["channels"][1])
	if string(b) != `["web_search",1,1,0,0,30000,30000,"RUB"]` {
		t.Errorf("web_search row: %s", b)
	}
	log, err := e.store.AuditLog(context.Background(), 10)
	if err != nil || len(log) != 1 || log[0].Who != "root" || log[0].Action != "config.costs" || log[0].Detail != "currency RUB web_search=30000" {
		t.Errorf("audit: %+v %v", log, err)
	}
	for _, tt := range []struct {
		body  any
		field string
	}{
		{map[string]any{"costs": map[string]any{"exhibition": -1}}, "costs.exhibition"},
		{map[string]any{"costs": map[string]any{"tv_radio": 1}}, "costs.tv_radio"},
		{map[string]any{"currency": "RUR1", "costs": map[string]any{"exhibition": 1}}, "currency"},
	} {
		res := adm.do("PUT", "/api/config/costs", tt.body, nil)
		var body struct {
			Field string `json:"field"`
		}
		json.Unmarshal(res.body, &body)
		if res.status != http.StatusBadRequest || body.Field != tt.field {
			t.Errorf("%v: %d %s", tt.body, res.status, res.body)
		}
	}
	if res := adm.do("PUT", "/api/config/costs", `{"costs": {"exhibition": "lots"}}`, nil); res.status != http.StatusBadRequest {
		t.Errorf("a cost that is not a number: %d %s", res.status, res.body)
	}
}
