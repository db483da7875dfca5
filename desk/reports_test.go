package desk_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
)

var msk = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		panic(err)
	}
	return loc
}()

// at is a time in Moscow on March 2025: at(3, 9, 10) is March 3, 09:10 MSK.
func at(day, hour, minute int) time.Time {
	return time.Date(2025, 3, day, hour, minute, 0, 0, msk)
}

func ptr(t time.Time) *time.Time { return &t }

// reportsSeed is a known week on the desk, stored through the real store:
//
//	10 calls on March 3-4 (MSK) on three lines (sales: preset web_search, expo:
//	preset exhibition, default: none), 6 answered, 4 missed of which 2 abandoned
//	while ringing; one call (c02) whose caller named exhibition on the sales line
//	(the one mismatch); one call on March 5, outside the range.
//	Interests moved through the funnel, 2 refusals (competitor at first_call,
//	unreachable at needs_identified), one lost after the range, one won before.
//	Promises kept on time, late, missed, open, one in the pool.
//	Meetings: 3 in the range (2 on a first call), 1 after.
type reportsSeed struct {
	store *redisstore.Store
	now   time.Time
}

var reportRange = desk.ReportQuery{From: at(3, 0, 0), To: at(5, 0, 0)}

func seedReports(t *testing.T) *reportsSeed {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	st := redisstore.New(rdb, redisstore.WithPrefix(prefix))
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	type call struct {
		id, line, op, from, contact string
		start                       time.Time
		answerAfter                 int // seconds; 0 = never answered
		reason                      string
		// record
		recContact, source, preset string
	}
	calls := []call{
		{id: "c01", line: "sales", op: "maria", from: "+79160000001", contact: "k1", start: at(3, 9, 10), answerAfter: 5, source: "web_search", preset: "web_search"},
		{id: "c02", line: "sales", op: "maria", from: "+79160000002", start: at(3, 9, 40), answerAfter: 15, recContact: "k2", source: "exhibition", preset: "web_search"},
		{id: "c03", line: "expo", op: "oleg", from: "+79160000003", contact: "k3", start: at(3, 10, 5), answerAfter: 10, source: "exhibition", preset: "exhibition"},
		{id: "c04", line: "expo", op: "oleg", from: "+79160000004", start: at(3, 10, 30), reason: "cancelled"},
		{id: "c05", line: "default", from: "+79160000005", start: at(3, 14, 0), reason: "no operator"},
		{id: "c06", line: "expo", op: "maria", from: "+79160000002", contact: "k2", start: at(4, 9, 20), answerAfter: 20, source: "exhibition", preset: "exhibition"},
		{id: "c07", line: "default", op: "oleg", from: "+79160000007", start: at(4, 11, 15), answerAfter: 8, recContact: "k4", source: "referral"},
		{id: "c08", line: "sales", op: "maria", from: "+79160000008", start: at(4, 11, 45), reason: "cancelled"},
		{id: "c09", line: "expo", op: "oleg", from: "+79160000003", contact: "k3", start: at(4, 15, 30), reason: "timeout"},
		{id: "c10", line: "sales", op: "maria", from: "+79160000010", start: at(4, 16, 0), answerAfter: 12, recContact: "k5", source: "web_search", preset: "web_search"},
		{id: "c11", line: "sales", op: "maria", from: "+79160000011", start: at(5, 10, 0), answerAfter: 3, recContact: "k6", source: "tv_radio", preset: "web_search"},
	}
	for _, c := range calls {
		dc := &desk.Call{ID: c.id, From: c.from, To: c.line, Line: c.line, Operator: c.op, ContactID: c.contact,
			Started: c.start, Reason: c.reason}
		if c.answerAfter > 0 {
			dc.State, dc.Answered, dc.Ended = desk.CallEnded, ptr(c.start.Add(time.Duration(c.answerAfter)*time.Second)), ptr(c.start.Add(5*time.Minute))
			dc.Reason = "caller hung up"
		} else {
			dc.State, dc.Ended = desk.CallMissed, ptr(c.start.Add(20*time.Second))
		}
		must(st.SaveCall(ctx, dc))
		if c.source != "" {
			must(st.SaveRecord(ctx, &desk.Record{CallID: c.id, Operator: c.op, ContactID: first(c.recContact, c.contact),
				Line: c.line, PresetSource: c.preset, Answers: map[string]string{"source": c.source}, Updated: c.start}))
		}
	}
	// k1 talked to the desk before; k5 only missed a call before, which does not
	// make his call on March 4 any less his first conversation.
	must(st.AddHistory(ctx, "k1", desk.CallSummary{CallID: "c00", At: time.Date(2025, 2, 20, 12, 0, 0, 0, msk), Operator: "maria", Outcome: "interest"}))
	must(st.AddHistory(ctx, "k5", desk.CallSummary{CallID: "c-1", At: time.Date(2025, 2, 25, 12, 0, 0, 0, msk), Outcome: "missed"}))
	must(st.AddHistory(ctx, "k2", desk.CallSummary{CallID: "c02", At: at(3, 9, 40), Operator: "maria", Outcome: "interest"}))
	must(st.AddHistory(ctx, "k2", desk.CallSummary{CallID: "c06", At: at(4, 9, 20), Operator: "maria", Outcome: "interest"}))

	sc := func(stage, state string, t time.Time, callID string) desk.StageChange {
		return desk.StageChange{Stage: stage, State: state, At: t, By: "x", CallID: callID}
	}
	feb := func(day int) time.Time { return time.Date(2025, 2, day, 12, 0, 0, 0, msk) }
	interests := []*desk.Interest{
		{ID: "i1", ContactID: "k1", Owner: "maria", Stage: "needs_identified", State: "open", Created: feb(20),
			History: []desk.StageChange{sc("first_call", "open", feb(20), "c00"), sc("needs_identified", "open", at(3, 9, 15), "c01")}},
		{ID: "i2", ContactID: "k2", Owner: "maria", Stage: "meeting", State: "open", Created: at(3, 9, 45),
			History: []desk.StageChange{sc("first_call", "open", at(3, 9, 45), "c02"), sc("meeting", "open", at(4, 9, 25), "c06")}},
		{ID: "i3", ContactID: "k3", Owner: "oleg", Stage: "first_call", State: "lost", Reason: desk.ReasonCompetitor, Created: at(3, 10, 10),
			History: []desk.StageChange{sc("first_call", "open", at(3, 10, 10), "c03"), sc("first_call", "lost", at(4, 12, 0), "c03")}},
		{ID: "i4", ContactID: "k4", Owner: "oleg", Stage: "needs_identified", State: "open", Created: at(4, 11, 20),
			History: []desk.StageChange{sc("needs_identified", "open", at(4, 11, 20), "c07")}},
		{ID: "i5", ContactID: "k5", Owner: "maria", Stage: "needs_identified", State: "lost", Reason: desk.ReasonUnreachable, Created: at(4, 16, 5),
			History: []desk.StageChange{sc("needs_identified", "lost", at(4, 16, 5), "c10")}},
		{ID: "i6", ContactID: "k6", Owner: "oleg", Stage: "payment", State: "won", Created: feb(1),
			History: []desk.StageChange{sc("contract", "open", feb(1), "c-6"), sc("payment", "won", feb(15), "c-6")}},
		{ID: "i7", ContactID: "k7", Owner: "maria", Stage: "meeting", State: "lost", Reason: desk.ReasonUnreachable, Created: feb(10),
			History: []desk.StageChange{sc("meeting", "open", feb(10), "c-7"), sc("meeting", "lost", at(5, 12, 0), "c-7")}},
	}
	for _, it := range interests {
		it.Type, it.Updated = desk.OutcomeInterest, it.History[len(it.History)-1].At
		must(st.SaveInterest(ctx, it))
	}

	promises := []*desk.Promise{
		{ID: "p1", Owner: "maria", CallID: "c01", Due: at(3, 12, 0), State: desk.PromiseKept, KeptAt: ptr(at(3, 11, 0))},
		{ID: "p2", Owner: "maria", CallID: "c02", Due: at(3, 15, 0), State: desk.PromiseKept, KeptAt: ptr(at(3, 16, 0))},
		{ID: "p3", Owner: "oleg", CallID: "c03", Due: at(4, 10, 0), State: desk.PromiseOpen},
		{ID: "p4", Owner: "oleg", CallID: "c07", Due: at(4, 18, 0), State: desk.PromiseKept, KeptAt: ptr(at(4, 17, 0))},
		{ID: "p5", Owner: "", CallID: "c08", Kind: "callback", Due: at(4, 12, 15), State: desk.PromiseOpen},
		{ID: "p6", Owner: "maria", CallID: "c10", Due: at(10, 12, 0), State: desk.PromiseOpen},
		{ID: "p7", Owner: "oleg", CallID: "c09", Due: at(4, 21, 0), State: desk.PromiseOpen},
	}
	for _, p := range promises {
		if p.Kind == "" {
			p.Kind = "promise"
		}
		p.What, p.Created = "check stock", p.Due.Add(-2*time.Hour)
		must(st.SavePromise(ctx, p))
	}

	meetings := []*desk.Meeting{
		{ID: "m1", ContactID: "k2", CallID: "c02", Owner: "maria", At: at(7, 11, 0), Format: "office", Created: at(3, 9, 50)},
		{ID: "m2", ContactID: "k2", CallID: "c06", Owner: "maria", At: at(8, 11, 0), Format: "online", Created: at(4, 9, 30)},
		{ID: "m3", ContactID: "k4", CallID: "c07", Owner: "oleg", At: at(9, 15, 0), Format: "client_site", Created: at(4, 11, 25)},
		{ID: "m4", ContactID: "k6", CallID: "c11", Owner: "oleg", At: at(12, 15, 0), Format: "office", Created: at(5, 10, 5)},
	}
	for _, m := range meetings {
		must(st.SaveMeeting(ctx, m))
	}
	return &reportsSeed{store: st, now: at(4, 17, 30)}
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

var sourceIDs = []string{"exhibition", "web_search", "catalogue", "tv_radio", "referral", "other"}

func (s *reportsSeed) reports(opts ...desk.ReportsOption) *desk.Reports {
	base := []desk.ReportsOption{
		desk.WithReportsClock(func() time.Time { return s.now }),
		desk.WithReportsLocation(msk),
		desk.WithReportsSources(sourceIDs),
		desk.WithReportsLines([]desk.Line{{Number: "sales", Source: "web_search"}, {Number: "expo", Source: "exhibition"}, {Number: "default"}}),
		desk.WithChannelCosts(map[string]float64{"exhibition": 120000, "web_search": 30000}, "RUB"),
	}
	return desk.NewReports(s.store, append(base, opts...)...)
}

var (
	boss  = &desk.User{Login: "boss", Role: desk.RoleSupervisor}
	admin = &desk.User{Login: "root", Role: desk.RoleAdmin}
)

// rows is a table's rows as JSON, so 3 and 3.0 and nil compare as the page sees them.
func rowsJSON(t *testing.T, rows [][]any) string {
	t.Helper()
	b, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReports(t *testing.T) {
	seed := seedReports(t)
	r := seed.reports()
	ctx := context.Background()
	// An admin entry overrides the config's web_search cost; exhibition keeps 120000.
	if _, err := r.SetCosts(ctx, admin, desk.ChannelCosts{Costs: map[string]float64{"web_search": 45000}}); err != nil {
		t.Fatal(err)
	}
	q := func(manager, line string) desk.ReportQuery {
		x := reportRange
		x.Manager, x.Line = manager, line
		return x
	}
	type want map[string][][]any // table name → rows
	tests := []struct {
		name, report string
		q            desk.ReportQuery
		want         want
	}{
		{"calls", "calls", q("", ""), want{
			"per_day": {
				{"2025-03-03", 5, 3, 2, 1, 10.0},
				{"2025-03-04", 5, 3, 2, 1, 13.3},
			},
			"per_hour": hours(map[int][]any{
				9:  {3, 3, 0, 0, 13.3},
				10: {2, 1, 1, 1, 10.0},
				11: {2, 1, 1, 1, 8.0},
				14: {1, 0, 1, 0, 0},
				15: {1, 0, 1, 0, 0},
				16: {1, 1, 0, 0, 12.0},
			}),
		}},
		{"calls of maria", "calls", q("maria", ""), want{
			"per_day": {
				{"2025-03-03", 2, 2, 0, 0, 10.0},
				{"2025-03-04", 3, 2, 1, 1, 16.0},
			},
		}},
		{"calls on expo", "calls", q("", "expo"), want{
			"per_day": {
				{"2025-03-03", 2, 1, 1, 1, 10.0},
				{"2025-03-04", 2, 1, 1, 0, 20.0},
			},
		}},
		{"sources", "sources", q("", ""), want{
			"channels": {
				{"exhibition", 5, 3, 1, 0.2, 120000.0, 40000.0, "RUB"},
				{"web_search", 3, 3, 0, 0, 45000.0, 15000.0, "RUB"},
				{"catalogue", 0, 0, 0, 0, nil, nil, ""},
				{"tv_radio", 0, 0, 0, 0, nil, nil, ""},
				{"referral", 1, 1, 0, 0, nil, nil, ""},
				{"other", 0, 0, 0, 0, nil, nil, ""},
				{"unknown", 1, 1, 0, 0, nil, nil, ""},
			},
			"lines": {
				{"default", "", 2, 1, 0, 0},
				{"expo", "exhibition", 4, 2, 0, 0},
				{"sales", "web_search", 4, 3, 1, 0.3333},
			},
		}},
		{"sources of oleg", "sources", q("oleg", ""), want{
			"channels": {
				{"exhibition", 3, 2, 0, 0, 120000.0, 60000.0, "RUB"},
				{"web_search", 0, 0, 0, 0, 45000.0, nil, "RUB"},
				{"catalogue", 0, 0, 0, 0, nil, nil, ""},
				{"tv_radio", 0, 0, 0, 0, nil, nil, ""},
				{"referral", 1, 1, 0, 0, nil, nil, ""},
				{"other", 0, 0, 0, 0, nil, nil, ""},
			},
		}},
		{"funnel", "funnel", q("", ""), want{
			"open": {
				{"maria", 0, 1, 2, 0, 0, 3},
				{"oleg", 0, 1, 0, 0, 0, 1},
			},
			"conversion": {
				{"first_call", "needs_identified", 4, 3, 0.75},
				{"needs_identified", "meeting", 3, 1, 0.3333},
				{"meeting", "contract", 1, 0, 0},
				{"contract", "payment", 0, 0, 0},
			},
			"loss": {
				{"first_call", 1}, {"needs_identified", 1}, {"meeting", 0}, {"contract", 0}, {"payment", 0},
			},
			"reasons": {
				{"unreachable", 1}, {"competitor", 1}, {"not_prospective", 0},
			},
		}},
		{"funnel of oleg", "funnel", q("oleg", ""), want{
			"open":       {{"oleg", 0, 1, 0, 0, 0, 1}},
			"conversion": {{"first_call", "needs_identified", 2, 1, 0.5}, {"needs_identified", "meeting", 1, 0, 0}, {"meeting", "contract", 0, 0, 0}, {"contract", "payment", 0, 0, 0}},
			"reasons":    {{"unreachable", 0}, {"competitor", 1}, {"not_prospective", 0}},
		}},
		{"funnel on sales", "funnel", q("", "sales"), want{
			// i2 (made on c02) and i5 (on c10); i1 was made on a call before the desk kept calls.
			"open":    {{"maria", 0, 0, 1, 0, 0, 1}},
			"loss":    {{"first_call", 0}, {"needs_identified", 1}, {"meeting", 0}, {"contract", 0}, {"payment", 0}},
			"reasons": {{"unreachable", 1}, {"competitor", 0}, {"not_prospective", 0}},
		}},
		{"promises", "promises", q("", ""), want{
			"kept": {
				{"pool", 0, 0, 1, 0, 0},
				{"maria", 1, 1, 0, 0, 0.5},
				{"oleg", 1, 0, 1, 1, 0.5},
			},
		}},
		{"promises of the pool", "promises", q("pool", ""), want{
			"kept": {{"pool", 0, 0, 1, 0, 0}},
		}},
		{"promises on expo", "promises", q("", "expo"), want{
			"kept": {{"oleg", 0, 0, 1, 1, 0}},
		}},
		{"meetings", "meetings", q("", ""), want{
			"per_manager": {
				{"maria", 2, 2, 1, 0.5},
				{"oleg", 1, 2, 1, 0.5},
			},
		}},
		{"meetings of oleg", "meetings", q("oleg", ""), want{
			"per_manager": {{"oleg", 1, 2, 1, 0.5}},
		}},
		{"meetings on sales", "meetings", q("", "sales"), want{
			"per_manager": {{"maria", 1, 2, 1, 0.5}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := r.Run(ctx, boss, tt.report, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Name != tt.report || !rep.From.Equal(tt.q.From) || !rep.To.Equal(tt.q.To) {
				t.Errorf("report header: %s %v %v", rep.Name, rep.From, rep.To)
			}
			got := map[string]desk.Table{}
			for _, tb := range rep.Tables {
				got[tb.Name] = tb
			}
			for name, rows := range tt.want {
				tb, ok := got[name]
				if !ok {
					t.Errorf("no table %q", name)
					continue
				}
				for i, row := range tb.Rows {
					if len(row) != len(tb.Columns) {
						t.Errorf("%s row %d has %d cells for %d columns", name, i, len(row), len(tb.Columns))
					}
				}
				if g, w := rowsJSON(t, tb.Rows), rowsJSON(t, rows); g != w {
					t.Errorf("%s (%v):\n got %s\nwant %s", name, tb.Columns, g, w)
				}
			}
		})
	}
}

// hours fills the 24 rows of per_hour: the given hours, zeros elsewhere.
func hours(m map[int][]any) [][]any {
	out := make([][]any, 24)
	for h := range out {
		v := m[h]
		if v == nil {
			v = []any{0, 0, 0, 0, 0}
		}
		out[h] = append([]any{h}, v...)
	}
	return out
}

func TestReportsRefuse(t *testing.T) {
	seed := seedReports(t)
	r := seed.reports()
	ctx := context.Background()
	op := &desk.User{Login: "maria", Role: desk.RoleOperator}
	for _, name := range desk.ReportNames {
		if _, err := r.Run(ctx, op, name, reportRange); !errors.Is(err, desk.ErrForbidden) {
			t.Errorf("operator ran %s: %v", name, err)
		}
	}
	if _, err := r.Costs(ctx, op); !errors.Is(err, desk.ErrForbidden) {
		t.Errorf("operator read costs: %v", err)
	}
	for _, u := range []*desk.User{op, boss} {
		if _, err := r.SetCosts(ctx, u, desk.ChannelCosts{Costs: map[string]float64{"exhibition": 1}}); !errors.Is(err, desk.ErrForbidden) {
			t.Errorf("%s set costs: %v", u.Role, err)
		}
	}
	if _, err := r.Run(ctx, nil, "calls", reportRange); !errors.Is(err, desk.ErrUnauthorized) {
		t.Errorf("no user: %v", err)
	}
	if _, err := r.Run(ctx, boss, "revenue", reportRange); !errors.Is(err, desk.ErrNotFound) {
		t.Errorf("unknown report: %v", err)
	}
	bad := []struct {
		name  string
		q     desk.ReportQuery
		field string
	}{
		{"no from", desk.ReportQuery{To: at(5, 0, 0)}, "from"},
		{"no to", desk.ReportQuery{From: at(5, 0, 0)}, "to"},
		{"backwards", desk.ReportQuery{From: at(5, 0, 0), To: at(3, 0, 0)}, "to"},
		{"too long", desk.ReportQuery{From: at(5, 0, 0).AddDate(-2, 0, 0), To: at(5, 0, 0)}, "to"},
	}
	for _, tt := range bad {
		var fe *desk.FieldError
		if _, err := r.Run(ctx, boss, "calls", tt.q); !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	badCosts := []struct {
		name  string
		c     desk.ChannelCosts
		field string
	}{
		{"unknown channel", desk.ChannelCosts{Costs: map[string]float64{"billboards": 5}}, "costs.billboards"},
		{"negative", desk.ChannelCosts{Costs: map[string]float64{"exhibition": -1}}, "costs.exhibition"},
		{"huge", desk.ChannelCosts{Costs: map[string]float64{"exhibition": 1e13}}, "costs.exhibition"},
		{"currency", desk.ChannelCosts{Currency: "rubles", Costs: map[string]float64{"exhibition": 1}}, "currency"},
		{"bad id", desk.ChannelCosts{Costs: map[string]float64{"a b": 1}}, "costs"},
	}
	for _, tt := range badCosts {
		var fe *desk.FieldError
		if _, err := r.SetCosts(ctx, admin, tt.c); !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	// Without a configured currency an admin must name one.
	bare := desk.NewReports(seed.store, desk.WithReportsSources(sourceIDs))
	var fe *desk.FieldError
	if _, err := bare.SetCosts(ctx, admin, desk.ChannelCosts{Costs: map[string]float64{"exhibition": 1}}); !errors.As(err, &fe) || fe.Field != "currency" {
		t.Errorf("no currency anywhere: %v", err)
	}
}

// Costs: the config's, overridden channel by channel by an admin's, who is
// audited; clearing the overrides brings the config's back.
func TestReportsCosts(t *testing.T) {
	seed := seedReports(t)
	r := seed.reports()
	ctx := context.Background()
	v, err := r.Costs(ctx, boss)
	if err != nil {
		t.Fatal(err)
	}
	if v.Currency != "RUB" || v.Costs["exhibition"] != 120000 || v.Costs["web_search"] != 30000 || v.Overrides != nil {
		t.Errorf("config costs: %+v", v)
	}
	v, err = r.SetCosts(ctx, admin, desk.ChannelCosts{Currency: "EUR", Costs: map[string]float64{"web_search": 500, "referral": 0}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Currency != "EUR" || len(v.Costs) != 3 || v.Costs["exhibition"] != 120000 || v.Costs["web_search"] != 500 ||
		v.Costs["referral"] != 0 || v.Overrides == nil || v.Overrides.By != "root" || !v.Overrides.Updated.Equal(seed.now) ||
		v.Config.Costs["web_search"] != 30000 {
		t.Errorf("overridden: %+v %+v", v, v.Overrides)
	}
	rep, err := r.Run(ctx, boss, "sources", reportRange)
	if err != nil {
		t.Fatal(err)
	}
	// A channel whose cost is 0 has a cost per lead of 0, not an empty cell.
	if got := rowsJSON(t, rep.Tables[0].Rows[4:5]); got != `[["referral",1,1,0,0,0,0,"EUR"]]` {
		t.Errorf("referral at cost 0: %s", got)
	}
	log, err := seed.store.AuditLog(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].Who != "root" || log[0].Action != "config.costs" || log[0].Target != "channel_costs" ||
		log[0].Detail != "currency EUR referral=0 web_search=500" {
		t.Errorf("audit: %+v", log)
	}
	v, err = r.SetCosts(ctx, admin, desk.ChannelCosts{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Overrides != nil || v.Currency != "RUB" || v.Costs["web_search"] != 30000 {
		t.Errorf("cleared: %+v", v)
	}
	if log, _ := seed.store.AuditLog(ctx, 10); len(log) != 2 || log[0].Detail != "cleared" {
		t.Errorf("audit of clearing: %+v", log)
	}
}

// The CSV of every table of every report parses back to the JSON's rows.
func TestReportsCSV(t *testing.T) {
	seed := seedReports(t)
	r := seed.reports()
	ctx := context.Background()
	for _, name := range desk.ReportNames {
		rep, err := r.Run(ctx, boss, name, reportRange)
		if err != nil {
			t.Fatal(err)
		}
		for i, tb := range rep.Tables {
			table := tb.Name
			if i == 0 {
				table = "" // the first table is the default
			}
			var buf bytes.Buffer
			if err := desk.WriteCSV(&buf, rep, table); err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(&buf).ReadAll()
			if err != nil {
				t.Fatalf("%s/%s: %v", name, tb.Name, err)
			}
			if len(recs) != len(tb.Rows)+1 || strings.Join(recs[0], ",") != strings.Join(tb.Columns, ",") {
				t.Fatalf("%s/%s: header %v, %d records for %d rows", name, tb.Name, recs[0], len(recs), len(tb.Rows))
			}
			for j, row := range tb.Rows {
				if err := sameRow(row, recs[j+1]); err != nil {
					t.Errorf("%s/%s row %d: %v", name, tb.Name, j, err)
				}
			}
		}
	}
	rep, _ := r.Run(ctx, boss, "calls", reportRange)
	var fe *desk.FieldError
	if err := desk.WriteCSV(&bytes.Buffer{}, rep, "per_week"); !errors.As(err, &fe) || fe.Field != "table" {
		t.Errorf("unknown table: %v", err)
	}
	// A text cell a spreadsheet would run as a formula is neutralised.
	var buf bytes.Buffer
	evil := &desk.Report{Name: "x", Tables: []desk.Table{{Name: "t", Columns: []string{"a", "b"}, Rows: [][]any{{"=HYPERLINK(1)", -5}}}}}
	if err := desk.WriteCSV(&buf, evil, ""); err != nil || buf.String() != "a,b\n'=HYPERLINK(1),-5\n" {
		t.Errorf("formula cell: %q %v", buf.String(), err)
	}
}

// sameRow compares JSON cells with CSV cells: numbers by value, null as empty.
func sameRow(row []any, rec []string) error {
	if len(row) != len(rec) {
		return fmt.Errorf("%d cells, csv has %d", len(row), len(rec))
	}
	for i, v := range row {
		var want string
		switch x := v.(type) {
		case nil:
			want = ""
		case string:
			want = x
		case int:
			want = fmt.Sprint(x)
		case float64:
			b, _ := json.Marshal(x)
			want = string(b)
		default:
			return fmt.Errorf("cell %d: unexpected type %T", i, v)
		}
		if rec[i] != want {
			return fmt.Errorf("cell %d: csv %q, json %q", i, rec[i], want)
		}
	}
	return nil
}
