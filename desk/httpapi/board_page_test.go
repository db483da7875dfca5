package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/browsertest"
	"github.com/calldesk/desk/desk/httpapi"
	"github.com/calldesk/desk/desk/hub"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
	"github.com/calldesk/desk/desk/yamlfile"
	"github.com/calldesk/desk/scripts"
	"github.com/calldesk/desk/static"
)

// boardPage is the web side with everything the supervisor's pages use wired in
// as cmd/desk wires it: the sales record, the live board in the supervisors'
// snapshot, the supervisor's actions (whisper, presence, reassign) and the reports,
// on a real Redis. Days are counted in UTC, and the browsers run in UTC too.
type boardPage struct {
	*env
	sales   *desk.Sales
	super   *desk.Supervisor
	reports *desk.Reports
}

func newBoardPage(t *testing.T) *boardPage {
	t.Helper()
	return newBoardPageWith(t, boardExtras{})
}

// boardExtras are what a test adds to the board's wiring (media mode: a bridge and
// the recordings).
type boardExtras struct {
	sales []desk.SalesOption
	super []desk.SupervisorOption
	api   []httpapi.Option
}

func newBoardPageWith(t *testing.T, x boardExtras) *boardPage {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	store := redisstore.New(rdb, redisstore.WithPrefix(prefix), redisstore.WithLogger(quiet()))
	reg := prometheus.NewRegistry()
	board := desk.NewBoard(store, desk.WithBoardLocation(time.UTC), desk.WithBoardLogger(quiet()))
	var sales *desk.Sales
	h := hub.New(rdb, hub.WithPrefix(prefix), hub.WithLogger(quiet()), hub.WithPresence(store),
		hub.WithSnapshot(func(ctx context.Context, u *desk.User) (any, error) {
			return httpapi.SnapshotFunc(store, nil, httpapi.WithSales(sales),
				httpapi.WithBoard(func(ctx context.Context) (any, error) { return board.State(ctx) }))(ctx, u)
		}), hub.WithRegisterer(reg))
	set, err := yamlfile.LoadScripts(scripts.FS)
	if err != nil {
		t.Fatal(err)
	}
	cfg := yamlfile.DefaultConfig()
	sales = desk.NewSales(store, h, append([]desk.SalesOption{desk.WithSalesLogger(quiet()),
		desk.WithSalesScripts(map[string]*desk.Script{"default": cfg.Resolve(set.Get("default", "en"))}),
		desk.WithSalesLines(cfg.Lines, "default")}, x.sales...)...)
	super := desk.NewSupervisor(store, h, append([]desk.SupervisorOption{desk.WithSupervisorLogger(quiet())}, x.super...)...)
	reports := desk.NewReports(store, desk.WithReportsLocation(time.UTC),
		desk.WithReportsSources([]string{"exhibition", "web_search", "catalogue"}),
		desk.WithReportsLines([]desk.Line{{Number: "sales", Name: "Sales", Source: "web_search"}}),
		desk.WithChannelCosts(map[string]float64{"exhibition": 120000}, "RUB"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	api := httpapi.New(store, h, append([]httpapi.Option{httpapi.WithLogger(quiet()), httpapi.WithStatic(static.FS),
		httpapi.WithRealm(realm), httpapi.WithRegion("RU"), httpapi.WithRegisterer(reg), httpapi.WithGatherer(reg),
		httpapi.WithLocation(time.UTC), httpapi.WithSales(sales), httpapi.WithReports(reports), httpapi.WithSupervisor(super)}, x.api...)...)
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		store.Close()
	})
	return &boardPage{env: &env{t: t, rdb: rdb, store: store, hub: h, srv: srv}, sales: sales, super: super, reports: reports}
}

// cspWatch records Content-Security-Policy violations from the first script on,
// and puts the browser in UTC, as the server counts days.
func cspWatch(t *testing.T, ctx context.Context) {
	t.Helper()
	browsertest.Step(t, ctx, "watch for CSP violations", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber));`,
		}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "UTC"})
		return err
	}))
}

func noCSPViolations(t *testing.T, ctx context.Context) {
	t.Helper()
	if v := browsertest.Eval[[]string](t, ctx, `window.__csp || ['the watcher did not run']`); len(v) > 0 {
		t.Fatalf("Content-Security-Policy violations: %q", v)
	}
}

// logIn signs in on the page's form (every desk page has the same one).
func logIn(t *testing.T, ctx context.Context, url, login string) {
	t.Helper()
	browsertest.Step(t, ctx, "open "+url+" as "+login, chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-form input[name=login]"), login),
		chromedp.SendKeys(chromedp.CSS("#login-form input[name=password]"), password),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
}

// paintedPixels counts the canvas pixels of one colour (r, g, b), or every
// non-transparent pixel when r is negative.
func paintedPixels(t *testing.T, ctx context.Context, canvas string, r, g, b int) int {
	t.Helper()
	return browsertest.Eval[int](t, ctx, fmt.Sprintf(`(() => {
		const c = document.querySelector(%s);
		if (!c || !c.width || !c.height) return -1;
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 0; i < d.length; i += 4) {
			if (%d < 0 ? d[i + 3] > 0 : (d[i + 3] > 200 && Math.abs(d[i] - %d) < 6 && Math.abs(d[i + 1] - %d) < 6 && Math.abs(d[i + 2] - %d) < 6)) n++;
		}
		return n;
	})()`, browsertest.QuoteJS(canvas), r, r, g, b))
}

// TestReportsPage: a few calls over the last days, with the sources the operators
// recorded; the reports page draws a chart per report (pixels of the series'
// colours on the canvas), its tables hold exactly the server's numbers, the calls
// per day are the ones made, and the Content-Security-Policy holds throughout.
func TestReportsPage(t *testing.T) {
	ctx := browsertest.Start(t)
	bp := newBoardPage(t)
	bp.user("anna", desk.RoleOperator)
	bp.user("boris", desk.RoleOperator)
	bp.user("sveta", desk.RoleSupervisor)
	bg := context.Background()

	today := time.Now().UTC().Truncate(24 * time.Hour)
	day := func(n int) time.Time { return today.AddDate(0, 0, -n) }
	at := func(d time.Time, h, m int) *time.Time {
		x := d.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
		return &x
	}
	type seed struct {
		id, from, op, source string
		day                  int
		answered             bool
		reason               string
	}
	seeds := []seed{
		{"r-1", "+79160000001", "anna", "exhibition", 3, true, ""},
		{"r-2", "+79160000002", "anna", "exhibition", 3, true, ""},
		{"r-3", "+79160000003", "boris", "", 3, false, "cancelled"},
		{"r-4", "+79160000004", "boris", "web_search", 1, true, ""},
		{"r-5", "+79160000005", "", "", 1, false, "no operator"},
		{"r-6", "+79160000001", "anna", "catalogue", 1, true, ""},
	}
	for i, s := range seeds {
		d := day(s.day)
		c := &desk.Call{ID: s.id, SIPCallID: "sip-" + s.id, From: s.from, To: "sales", Line: "sales", Script: "default",
			Operator: s.op, Started: *at(d, 10+i, 0)}
		if s.answered {
			c.State, c.Answered, c.Ended = desk.CallEnded, at(d, 10+i, 1), at(d, 10+i, 6)
		} else {
			c.State, c.Ended, c.Reason = desk.CallMissed, at(d, 10+i, 1), s.reason
		}
		if err := bp.store.SaveCall(bg, c); err != nil {
			t.Fatal(err)
		}
		if s.source != "" {
			rec := &desk.Record{CallID: s.id, Operator: s.op, Line: "sales", Script: "default", PresetSource: "web_search"}
			if _, _, err := bp.store.ApplyAnswers(bg, rec, desk.AnswerOp{Op: "op-" + s.id, Step: "source", Fields: map[string]string{"source": s.source}, At: *c.Answered}); err != nil {
				t.Fatal(err)
			}
		}
	}

	cspWatch(t, ctx)
	browsertest.Step(t, ctx, "a wide window", chromedp.EmulateViewport(1400, 1000))
	logIn(t, ctx, bp.srv.URL+"/reports.html", "sveta")
	browsertest.WaitFor(t, ctx, "the reports", `document.getElementById('reports').dataset.ready === 'true'`)
	browsertest.Screenshot(t, ctx, "reports-1")

	// The default range is the last 7 days, today included.
	if got, want := browsertest.Eval[string](t, ctx, `document.getElementById('f-from').value + '..' + document.getElementById('f-to').value`),
		day(6).Format(time.DateOnly)+".."+today.Format(time.DateOnly); got != want {
		t.Fatalf("default range %s, want %s", got, want)
	}
	for _, name := range desk.ReportNames {
		if st := browsertest.Eval[string](t, ctx, `document.getElementById('report-`+name+`').dataset.state`); st != "ok" {
			t.Fatalf("report %s: %s: %s", name, st, browsertest.Text(t, ctx, "report-"+name))
		}
	}

	// Every chart drew: some pixels on each canvas, and the series' own colours.
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('#reports canvas').length`); n != 6 {
		t.Fatalf("%d charts, want 6 (calls per day and per hour, sources, funnel, promises, meetings)", n)
	}
	for _, name := range []string{"calls", "sources", "funnel", "promises", "meetings"} {
		sel := `#report-` + name + ` canvas`
		if n := paintedPixels(t, ctx, sel, -1, 0, 0); n <= 0 {
			t.Errorf("chart of %s is empty (%d pixels)", name, n)
		}
	}
	perDay := `#report-calls [data-chart="per_day"] canvas`
	if n := paintedPixels(t, ctx, perDay, 0x2b, 0x8a, 0x3e); n < 50 {
		t.Errorf("answered bars: %d green pixels", n)
	}
	if n := paintedPixels(t, ctx, perDay, 0xe0, 0x31, 0x31); n < 50 {
		t.Errorf("missed bars: %d red pixels", n)
	}
	if n := paintedPixels(t, ctx, `#report-sources canvas`, 0x1f, 0x6f, 0xeb); n < 50 {
		t.Errorf("leads bars: %d blue pixels", n)
	}
	// The chart's series are the table's numbers.
	series := browsertest.Eval[[][]float64](t, ctx, `Chart.getChart(document.querySelector('`+perDay+`')).data.datasets.map(d => d.data)`)
	want := [][]float64{{0, 0, 0, 2, 0, 2, 0}, {0, 0, 0, 1, 0, 1, 0}} // answered, missed, from 6 days ago to today
	if fmt.Sprint(series) != fmt.Sprint(want) {
		t.Errorf("calls per day on the chart %v, want answered/missed %v", series, want)
	}

	// Every table on the page holds the server's numbers, row by row.
	sveta := bp.loggedIn("sveta")
	q := "from=" + day(6).Format(time.DateOnly) + "&to=" + today.Format(time.DateOnly)
	for _, name := range desk.ReportNames {
		r := sveta.do("GET", "/api/reports/"+name+"?"+q, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("report %s: %d %s", name, r.status, r.body)
		}
		var rep desk.Report
		r.json(t, &rep)
		for _, tbl := range rep.Tables {
			sel := fmt.Sprintf(`#report-%s [data-table="%s"] tbody tr`, name, tbl.Name)
			shown := browsertest.Eval[[][]string](t, ctx, `[...document.querySelectorAll('`+sel+`')].map(tr => [...tr.children].map(td => td.dataset.value))`)
			if len(shown) != len(tbl.Rows) {
				t.Errorf("%s/%s: %d rows on the page, %d from the API", name, tbl.Name, len(shown), len(tbl.Rows))
				continue
			}
			for i, row := range tbl.Rows {
				for j, v := range row {
					if got, want := shown[i][j], jsString(v); got != want {
						t.Errorf("%s/%s row %d %s = %q, API %q", name, tbl.Name, i, tbl.Columns[j], got, want)
					}
				}
			}
		}
	}
	// Known answers: two answered and one abandoned three days ago; exhibition
	// leads cost 120000 / 2.
	cell := func(report, table, date, col string) string {
		return browsertest.Eval[string](t, ctx, fmt.Sprintf(`(() => { const tr = [...document.querySelectorAll('#report-%s [data-table="%s"] tbody tr')].find(tr => tr.children[0].dataset.value === %s); return tr ? tr.querySelector('[data-col="%s"]').textContent : 'no row'; })()`,
			report, table, browsertest.QuoteJS(date), col))
	}
	d3 := day(3).Format(time.DateOnly)
	for _, c := range []struct{ report, table, key, col, want string }{
		{"calls", "per_day", d3, "answered", "2"},
		{"calls", "per_day", d3, "missed", "1"},
		{"calls", "per_day", d3, "abandoned_while_ringing", "1"},
		{"sources", "channels", "exhibition", "leads", "2"},
		{"sources", "channels", "exhibition", "cost_per_lead", "60,000"},
		{"sources", "channels", "catalogue", "mismatches", "1"},
	} {
		if got := cell(c.report, c.table, c.key, c.col); got != c.want {
			t.Errorf("%s/%s %s %s = %q, want %q", c.report, c.table, c.key, c.col, got, c.want)
		}
	}
	// CSV links carry the range and the table.
	href := browsertest.Eval[string](t, ctx, `document.querySelector('#report-calls [data-table="per_day"] a.csv').getAttribute('href')`)
	if !strings.Contains(href, "format=csv") || !strings.Contains(href, "table=per_day") || !strings.Contains(href, "from="+day(6).Format(time.DateOnly)) {
		t.Errorf("CSV link %q", href)
	}
	if r := sveta.do("GET", href, nil, nil); r.status != http.StatusOK || !strings.HasPrefix(string(r.body), "date,calls,answered") {
		t.Errorf("CSV: %d %q", r.status, r.body)
	}

	// A manager filter narrows every report; the page says so in its address.
	browsertest.Step(t, ctx, "pick anna", chromedp.SetValue(chromedp.ID("f-manager"), "anna"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('reports').dataset.ready = 'false'`),
		chromedp.Click(chromedp.ID("f-apply")))
	browsertest.WaitFor(t, ctx, "anna's reports", `document.getElementById('reports').dataset.ready === 'true' && location.search.includes('manager=anna')`)
	if got := cell("calls", "per_day", d3, "missed"); got != "0" {
		t.Errorf("anna's missed calls three days ago %q, want 0", got)
	}
	if got := cell("calls", "per_day", d3, "answered"); got != "2" {
		t.Errorf("anna's answered calls three days ago %q, want 2", got)
	}

	// Russian: headings and columns change language; the charts redraw.
	browsertest.Step(t, ctx, "switch to Russian", chromedp.SetValue(chromedp.ID("lang"), "ru"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('lang').dispatchEvent(new Event('change'))`))
	if got := browsertest.Eval[string](t, ctx, `document.querySelector('#report-calls h2').textContent + ' / ' + document.querySelector('#report-calls th[data-col="answered"]').textContent`); got != "Звонки / Принято" {
		t.Errorf("Russian headings %q", got)
	}
	if n := paintedPixels(t, ctx, perDay, 0x2b, 0x8a, 0x3e); n < 50 {
		t.Errorf("answered bars after the language switch: %d green pixels", n)
	}
	browsertest.Screenshot(t, ctx, "reports-2-ru")
	noCSPViolations(t, ctx)
}

// jsString is how the page writes a JSON value into data-value: String(v).
func jsString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case float64:
		b, _ := json.Marshal(x)
		return string(b)
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// TestSupervisorBoardPage drives the supervisor's live board and the operator's
// page in two browsers: a call rings for anna (the queue shows who rings), she
// answers (the live calls and her day's count follow), her answers move the step
// and fields on the board live; the supervisor whispers, anna's page pins it, she
// acknowledges and the board says so; a whisper not acknowledged survives her
// reload; the supervisor forces her away and back, focuses on one operator, and
// reassigns her overdue promise; a reload of the board rebuilds it from the
// snapshot, step included.
func TestSupervisorBoardPage(t *testing.T) {
	sup := browsertest.Start(t)
	op := browsertest.Start(t)
	bp := newBoardPage(t)
	bp.user("anna", desk.RoleOperator)
	bp.user("boris", desk.RoleOperator)
	bp.user("sveta", desk.RoleSupervisor)
	anna := bp.loggedIn("anna")
	sveta := bp.loggedIn("sveta")
	bg := context.Background()

	// An overdue promise of anna's, for the reassignment at the end.
	due := time.Now().Add(-20 * time.Minute).UTC()
	if err := bp.store.SavePromise(bg, &desk.Promise{ID: "pr-late", Owner: "anna", Kind: "promise", What: "send the offer",
		Phone: "+79160000077", Due: due, Created: due.Add(-time.Hour), State: desk.PromiseOpen}); err != nil {
		t.Fatal(err)
	}

	cspWatch(t, sup)
	browsertest.Step(t, sup, "a wide window", chromedp.EmulateViewport(1500, 1000))
	logIn(t, sup, bp.srv.URL+"/supervisor.html", "sveta")
	browsertest.WaitFor(t, sup, "the board", `document.getElementById('board').dataset.synced === 'true' && document.getElementById('conn-state').dataset.state === 'connected'`)
	browsertest.WaitFor(t, sup, "anna's row", `document.querySelector('#operators tr[data-login="anna"]') !== null`)
	if !browsertest.Eval[bool](t, sup, `document.querySelector('#overdue tr[data-id="pr-late"]') !== null`) {
		t.Fatalf("the board's overdue promise is not shown: %s", browsertest.Text(t, sup, "overdue"))
	}

	cspWatch(t, op)
	logIn(t, op, bp.srv.URL+"/", "anna")
	browsertest.WaitFor(t, op, "anna's desk", `document.getElementById('desk').dataset.synced === 'true'`)

	// The call rings for anna: the queue says who rings, and for how long.
	started := time.Now().UTC().Add(-3 * time.Second)
	call := &desk.Call{ID: "live-1", SIPCallID: "sip-live-1", From: "+79160000055", To: "sales", Line: "sales", Script: "default",
		Operator: "anna", State: desk.CallRinging, Started: started, Attempts: []desk.Attempt{{Operator: "anna", Started: started}}}
	if err := bp.store.SaveCall(bg, call); err != nil {
		t.Fatal(err)
	}
	bp.hub.Publish(desk.Event{Type: desk.EventCallRinging, Operators: []string{"anna"}, Payload: desk.Pop{Call: call,
		Contact: &desk.Contact{ID: "ct-olga", Name: "Olga <i>Petrova</i>", Company: "Vector", Phones: []string{"+79160000055"}}}})
	queued := `document.querySelector('#queue tr[data-id="live-1"]')`
	browsertest.WaitFor(t, sup, "the queued call", queued+` !== null`)
	if got := browsertest.Eval[string](t, sup, queued+`.querySelector('.rings-at').textContent`); got != "Name of anna" {
		t.Errorf("rings at %q", got)
	}
	if got := browsertest.Eval[string](t, sup, queued+`.querySelector('.ringing-for').textContent`); got < "00:03" || len(got) != 5 {
		t.Errorf("ringing for %q, want 00:03 or more", got)
	}
	row := `document.querySelector('#calls tr[data-id="live-1"]')`
	if got := browsertest.Eval[string](t, sup, row+`.querySelector('.contact').textContent`); got != "Olga <i>Petrova</i>Vector" {
		t.Errorf("contact on the call row %q", got)
	}

	// Answered: out of the queue, talking, and anna's day counts it.
	answered := time.Now().UTC()
	call.State, call.Answered = desk.CallAnswered, &answered
	call.Attempts[0].Outcome = "answered"
	if err := bp.store.SaveCall(bg, call); err != nil {
		t.Fatal(err)
	}
	bp.hub.Publish(desk.Event{Type: desk.EventCallAnswered, Operators: []string{"anna"}, Payload: desk.CallUpdate{Call: call}})
	browsertest.WaitFor(t, sup, "talking", row+`.classList.contains('state-talking') && `+queued+` === null`)
	if got := browsertest.Eval[string](t, sup, `document.querySelector('#operators tr[data-login="anna"] .today').dataset.answered`); got != "1" {
		t.Errorf("anna's answered today %q, want 1", got)
	}

	// Her answers move the step and the fields on the board as she types.
	for i, a := range []struct {
		step   string
		fields map[string]string
	}{
		{"contact", map[string]string{"name": "<b>Olga</b>", "company": "Vector"}},
		{"source", map[string]string{"source": "catalogue"}},
	} {
		r := anna.do("PUT", "/api/calls/live-1/answers", map[string]any{"op": fmt.Sprintf("op-%d", i), "step": a.step, "fields": a.fields}, nil)
		if r.status != http.StatusOK {
			t.Fatalf("answer %v: %d %s", a, r.status, r.body)
		}
		browsertest.WaitFor(t, sup, "step "+a.step, row+`.querySelector('.step').textContent === `+browsertest.QuoteJS(a.step))
	}
	if got := browsertest.Eval[string](t, sup, row+`.querySelector('.answer[data-key="source"]').textContent`); got != "source: catalogue" {
		t.Errorf("source on the row %q", got)
	}
	if n := browsertest.Eval[int](t, sup, `document.querySelectorAll('#board b, #board i').length`); n != 0 {
		t.Fatalf("caller text became markup")
	}
	browsertest.Screenshot(t, sup, "board-1-talking")

	// A call boris let ring out is missed; its callback promise shows with it.
	mstart := time.Now().UTC().Add(-40 * time.Second)
	mend := mstart.Add(30 * time.Second)
	missedCall := &desk.Call{ID: "missed-1", From: "+79160000066", To: "sales", Line: "sales", Operator: "boris", State: desk.CallMissed,
		Started: mstart, Ended: &mend, Reason: "timeout", Attempts: []desk.Attempt{{Operator: "boris", Started: mstart, Outcome: "timeout"}}}
	bp.hub.Publish(desk.Event{Type: desk.EventCallMissed, Operators: []string{"boris"}, Payload: desk.CallUpdate{Call: missedCall}})
	mrow := `document.querySelector('#missed tr[data-id="missed-1"]')`
	browsertest.WaitFor(t, sup, "the missed call", mrow+` !== null && `+mrow+`.querySelector('.callback').dataset.state === 'none'`)
	bp.hub.Publish(desk.Event{Type: desk.EventPromiseUpdated, Operators: []string{"boris"}, Payload: desk.PromiseUpdate{Promise: &desk.Promise{
		ID: "cb-1", Owner: "boris", Kind: "callback", CallID: "missed-1", Phone: "+79160000066", Due: time.Now().Add(time.Hour), State: desk.PromiseOpen}}})
	browsertest.WaitFor(t, sup, "its callback", mrow+`.querySelector('.callback').dataset.state === 'open'`)
	if got := browsertest.Eval[string](t, sup, `document.querySelector('#operators tr[data-login="boris"] .today').dataset.missed`); got != "1" {
		t.Errorf("boris's missed today %q, want 1", got)
	}

	// Whisper: pinned on anna's page, as text; OK acknowledges it on the board.
	const whisper = `Offer her the <b>demo</b> on Friday`
	browsertest.Step(t, sup, "whisper to anna",
		chromedp.Click(chromedp.CSS(`#operators tr[data-login="anna"] button.whisper-open`)),
		chromedp.SendKeys(chromedp.ID("whisper-text"), whisper),
		chromedp.Click(chromedp.ID("whisper-send")))
	wrow := `document.querySelector('#whispers tr.whisper-row')`
	browsertest.WaitFor(t, sup, "the whisper sent", wrow+` !== null && `+wrow+`.querySelector('.w-state').dataset.state === 'sent'`)
	browsertest.WaitFor(t, op, "the pinned whisper", `!document.getElementById('whisper-pins').hidden`)
	if got := browsertest.Eval[string](t, op, `document.querySelector('#whisper-list .whisper-text').textContent`); got != whisper {
		t.Errorf("pinned text %q", got)
	}
	if got := browsertest.Eval[string](t, op, `document.querySelector('#whisper-list .whisper-by').textContent`); got != "From sveta" {
		t.Errorf("pinned from %q", got)
	}
	if n := browsertest.Eval[int](t, op, `document.querySelectorAll('#whisper-pins b').length`); n != 0 {
		t.Fatalf("the whisper became markup")
	}
	browsertest.Screenshot(t, op, "board-2-whisper-pinned")
	browsertest.Step(t, op, "OK", chromedp.Click(chromedp.CSS(`#whisper-list button.whisper-ok`)))
	browsertest.WaitFor(t, op, "the pin cleared", `document.getElementById('whisper-pins').hidden`)
	browsertest.WaitFor(t, sup, "acknowledged", wrow+`.querySelector('.w-state').dataset.state === 'acked'`)
	if got := browsertest.Eval[string](t, sup, wrow+`.querySelector('.w-state').textContent`); !strings.HasPrefix(got, "acknowledged ") {
		t.Errorf("whisper state %q", got)
	}
	if got := browsertest.Eval[string](t, sup, `document.querySelector('#operators tr[data-login="anna"] .w-state').dataset.state`); got != "acked" {
		t.Errorf("anna's row whisper state %q", got)
	}
	browsertest.Screenshot(t, sup, "board-3-acknowledged")

	// A whisper she has not acknowledged is still pinned after a reload.
	if r := sveta.do("POST", "/api/operators/anna/whisper", map[string]string{"text": "Call me when free"}, nil); r.status != http.StatusCreated {
		t.Fatalf("whisper: %d %s", r.status, r.body)
	}
	browsertest.WaitFor(t, op, "the second whisper", `!document.getElementById('whisper-pins').hidden`)
	browsertest.Step(t, op, "reload", chromedp.Reload())
	browsertest.WaitFor(t, op, "the whisper after the reload", `!document.getElementById('whisper-pins').hidden && document.querySelector('#whisper-list .whisper-text').textContent === 'Call me when free'`)

	// Force away and back: the presence frame updates the row.
	arow := `document.querySelector('#operators tr[data-login="anna"]')`
	browsertest.Step(t, sup, "force away", chromedp.Click(chromedp.CSS(`#operators tr[data-login="anna"] button.presence-force`)))
	browsertest.WaitFor(t, sup, "anna away", arow+`.querySelector('.presence-force').dataset.away === 'true'`)
	browsertest.Step(t, sup, "back", chromedp.Click(chromedp.CSS(`#operators tr[data-login="anna"] button.presence-force`)))
	browsertest.WaitFor(t, sup, "anna back", arow+`.querySelector('.presence-force').dataset.away === 'false'`)

	// Focus on boris: every table shows only his; anna's call and promise go.
	browsertest.Step(t, sup, "focus on boris", chromedp.SetValue(chromedp.ID("focus"), "op:boris"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('focus').dispatchEvent(new Event('change'))`))
	if got := browsertest.Eval[string](t, sup, `[document.querySelectorAll('#calls tr[data-id="live-1"]').length, document.querySelectorAll('#overdue tr').length, [...document.querySelectorAll('#operators tr')].map(tr => tr.dataset.login).join()].join('|')`); got != "0|0|boris" {
		t.Errorf("focused on boris: calls|overdue|operators = %s", got)
	}
	browsertest.Step(t, sup, "focus on the sales line", chromedp.SetValue(chromedp.ID("focus"), "line:sales"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('focus').dispatchEvent(new Event('change'))`))
	if n := browsertest.Eval[int](t, sup, `document.querySelectorAll('#calls tr[data-id="live-1"]').length`); n != 1 {
		t.Errorf("the sales line's call is not shown under its focus")
	}
	browsertest.Step(t, sup, "focus on everyone", chromedp.SetValue(chromedp.ID("focus"), ""),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('focus').dispatchEvent(new Event('change'))`))

	// Reassign the ticked overdue promise to boris; the dialog shows the count.
	browsertest.Step(t, sup, "reassign",
		chromedp.Click(chromedp.CSS(`#overdue tr[data-id="pr-late"] input.pick`)),
		chromedp.Click(chromedp.ID("reassign-open")),
		chromedp.WaitVisible(chromedp.ID("reassign-dialog")),
		chromedp.SetValue(chromedp.ID("reassign-to"), "boris"),
		chromedp.Click(chromedp.ID("reassign-submit")))
	browsertest.WaitFor(t, sup, "the result", `document.getElementById('reassign-result').dataset.promises === '1'`)
	browsertest.Screenshot(t, sup, "board-4-reassigned")
	if got := browsertest.Eval[string](t, sup, `document.getElementById('reassign-ids').value + '|' + document.getElementById('reassign-from').value`); got != "pr-late|anna" {
		t.Errorf("dialog filled with %q", got)
	}
	browsertest.Step(t, sup, "close", chromedp.Click(chromedp.ID("reassign-close")))
	if p, err := bp.store.Promise(bg, "pr-late"); err != nil || p.Owner != "boris" {
		t.Fatalf("promise after the reassignment: %+v %v", p, err)
	}
	browsertest.WaitFor(t, sup, "the new owner on the board", `document.querySelector('#overdue tr[data-id="pr-late"] .owner').textContent === 'Name of boris'`)

	// A reload rebuilds the board from the snapshot: the call, its step and
	// fields, the unacknowledged whisper.
	browsertest.Step(t, sup, "reload the board", chromedp.Reload())
	browsertest.WaitFor(t, sup, "the rebuilt board", `document.getElementById('board').dataset.synced === 'true' && document.querySelector('#calls tr[data-id="live-1"] .step') !== null`)
	if got := browsertest.Eval[string](t, sup, row+`.querySelector('.step').textContent + '|' + `+row+`.querySelector('.answer[data-key="source"]').textContent`); got != "source|source: catalogue" {
		t.Errorf("after a reload the row shows %q", got)
	}
	browsertest.WaitFor(t, sup, "the open whisper", `[...document.querySelectorAll('#whispers .w-text')].some(td => td.textContent.startsWith('Call me when free'))`)
	noCSPViolations(t, sup)
	noCSPViolations(t, op)
}
