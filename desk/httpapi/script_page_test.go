package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
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

// scriptPage is the web side with the sales record wired in, on the real clock
// (the page counts promises down against the browser's clock), and the shipped
// default script in English with the demo configuration's sources and price list,
// as the switchboard pops it.
type scriptPage struct {
	*env
	sales  *desk.Sales
	script *desk.Script
	prices []desk.PriceRange
}

func newScriptPage(t *testing.T) *scriptPage {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	store := redisstore.New(rdb, redisstore.WithPrefix(prefix), redisstore.WithLogger(quiet()))
	set, err := yamlfile.LoadScripts(scripts.FS)
	if err != nil {
		t.Fatal(err)
	}
	cfg := yamlfile.DefaultConfig()
	script := cfg.Resolve(set.Get("default", "en"))
	var prices []desk.PriceRange
	for _, p := range cfg.PriceList {
		prices = append(prices, desk.PriceRange{Product: p.Product, Min: p.Min, Max: p.Max, Currency: p.Currency})
	}
	if len(prices) == 0 {
		t.Fatal("the demo configuration has no price list")
	}
	reg := prometheus.NewRegistry()
	var sales *desk.Sales
	h := hub.New(rdb, hub.WithPrefix(prefix), hub.WithLogger(quiet()), hub.WithPresence(store),
		hub.WithSnapshot(func(ctx context.Context, u *desk.User) (any, error) {
			return httpapi.SnapshotFunc(store, nil, httpapi.WithSales(sales))(ctx, u)
		}), hub.WithRegisterer(reg))
	sales = desk.NewSales(store, h, desk.WithSalesLogger(quiet()),
		desk.WithSalesScripts(map[string]*desk.Script{"default": script}),
		desk.WithSalesLines(cfg.Lines, "default"), desk.WithPriceList(prices))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	api := httpapi.New(store, h, httpapi.WithLogger(quiet()), httpapi.WithStatic(static.FS),
		httpapi.WithRealm(realm), httpapi.WithRegion("RU"), httpapi.WithRegisterer(reg), httpapi.WithGatherer(reg),
		httpapi.WithSales(sales))
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		store.Close()
	})
	return &scriptPage{env: &env{t: t, rdb: rdb, store: store, hub: h, srv: srv}, sales: sales, script: script, prices: prices}
}

// record reads the call's sales record as the operator's API client sees it.
func (sp *scriptPage) record(c *client, callID string) desk.Record {
	sp.t.Helper()
	r := c.do("GET", "/api/calls/"+callID+"/record", nil, nil)
	if r.status != http.StatusOK {
		sp.t.Fatalf("record: %d %s", r.status, r.body)
	}
	var rec desk.Record
	r.json(sp.t, &rec)
	return rec
}

// network switches the browser's network off (every request fails, and
// navigator.onLine says so) or back on.
func setOffline(offline bool) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return chromedp.Void{}, err
		}
		conds := []*network.Conditions{}
		if offline {
			conds = append(conds, &network.Conditions{Offline: true, DownloadThroughput: -1, UploadThroughput: -1})
		}
		if _, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule,
			network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: conds}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, t, network.OverrideNetworkState,
			network.OverrideNetworkStateParams{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1})
		return chromedp.Void{}, err
	}
}

// keys types into whatever has the focus, as a person at the keyboard would.
func keys(t *testing.T, ctx context.Context, what, k string) {
	t.Helper()
	browsertest.Step(t, ctx, what, chromedp.KeyEvent(k))
}

// currentStep is the id of the step the page shows open.
func currentStep(t *testing.T, ctx context.Context) string {
	t.Helper()
	return browsertest.Eval[string](t, ctx, `(document.querySelector('#script-steps > li.current') || {dataset: {}}).dataset.step || ''`)
}

// focused describes the element with the focus: the bind of its field, its tag
// and its value or id.
func focused(t *testing.T, ctx context.Context) string {
	t.Helper()
	return browsertest.Eval[string](t, ctx, `(() => { const a = document.activeElement; if (!a) return ''; const f = a.closest('[data-bind]'); return (f ? f.dataset.bind + ' ' : '') + a.tagName + ' ' + (a.dataset.value || a.id || ''); })()`)
}

// onCard are what must show without scrolling during a call: the card head, the
// current step, the step buttons and the promise countdowns.
var onCard = []string{"#card-state", "#caller-name", "#script-steps > li.current", "#script-nav", "#promises"}

// inView checks that, at 1366x768, each of sels is wholly on screen and that the
// page itself does not scroll.
func inView(t *testing.T, ctx context.Context, where string, sels ...string) {
	t.Helper()
	list, _ := json.Marshal(sels)
	got := browsertest.Eval[string](t, ctx, `(() => {
		const h = window.innerHeight, w = window.innerWidth;
		const out = [];
		const box = (sel) => { const n = document.querySelector(sel); return n ? n.getBoundingClientRect() : null; };
		for (const sel of `+string(list)+`) {
			const r = box(sel);
			if (!r) { out.push(sel + ' missing'); continue; }
			if (r.top < 0 || r.bottom > h || r.left < 0 || r.right > w || r.height === 0) out.push(sel + ' at ' + Math.round(r.top) + '..' + Math.round(r.bottom));
		}
		if (document.scrollingElement.scrollHeight > h + 1) out.push('the page scrolls: ' + document.scrollingElement.scrollHeight);
		return out.join('; ');
	})()`)
	if got != "" {
		t.Errorf("%s: not in view at 1366x768: %s", where, got)
	}
}

// fieldSaved waits until the field bound to bind shows the saved mark.
func fieldSaved(t *testing.T, ctx context.Context, bind string) {
	t.Helper()
	browsertest.WaitFor(t, ctx, bind+" saved", `(document.querySelector('[data-bind="`+bind+`"] .save-mark') || {dataset: {}}).dataset.save === 'saved'`)
}

// TestScriptPage works a call through the script on the operator's page with the
// keyboard alone, against the real sales record: answers saved per field, a reload
// mid-call restoring them, an answer typed offline resent and stored once, the
// wrap-up refused with the missing source highlighted and then closed, and the
// "+2 h" promise counting down in the promises strip.
func TestScriptPage(t *testing.T) {
	ctx := browsertest.Start(t)
	sp := newScriptPage(t)
	sp.user("anna", desk.RoleOperator)
	api := sp.loggedIn("anna")

	browsertest.Step(t, ctx, "open the page at 1366x768", chromedp.EmulateViewport(1366, 768),
		chromedp.Navigate(sp.srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("login-login"), "anna"),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.ID("login-submit")))
	browsertest.WaitFor(t, ctx, "the feed", `document.getElementById('desk').dataset.synced === 'true' && document.getElementById('conn-state').dataset.state === 'connected'`)

	// A new caller rings on the "sales" line, preset to web search.
	bg := context.Background()
	call := &desk.Call{ID: "sp-call-1", SIPCallID: "sp-sip-1", From: "+79160000077", To: "sales", Line: "sales",
		Script: "default", Operator: "anna", State: desk.CallRinging, Started: time.Now().UTC()}
	if err := sp.store.SaveCall(bg, call); err != nil {
		t.Fatal(err)
	}
	sp.hub.Publish(desk.Event{Type: desk.EventCallRinging, Operators: []string{"anna"}, Payload: desk.Pop{
		Call: call, Script: sp.script, PresetSource: "web_search", Prices: sp.prices}})
	browsertest.WaitFor(t, ctx, "the ringing card with the script", `document.getElementById('card').dataset.state === 'ringing' && document.querySelector('#script-steps > li.current') !== null`)
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('#script-steps > li').length`); n != len(sp.script.Steps) {
		t.Fatalf("the script shows %d steps, want %d", n, len(sp.script.Steps))
	}
	if got := currentStep(t, ctx); got != "greeting" {
		t.Fatalf("the ringing card opens step %q, want greeting", got)
	}
	if browsertest.Eval[bool](t, ctx, `document.getElementById('script-steps').textContent.includes('{{')`) {
		t.Fatalf("raw placeholders on the page")
	}
	inView(t, ctx, "ringing", onCard...)
	browsertest.Screenshot(t, ctx, "script-1-ringing")

	answered := time.Now().UTC()
	call.State, call.Answered = desk.CallAnswered, &answered
	if err := sp.store.SaveCall(bg, call); err != nil {
		t.Fatal(err)
	}
	sp.hub.Publish(desk.Event{Type: desk.EventCallAnswered, Operators: []string{"anna"}, Payload: desk.CallUpdate{Call: call}})
	browsertest.WaitFor(t, ctx, "talking", `document.getElementById('card').dataset.state === 'talking'`)

	// Keyboard only: Enter leaves the greeting, "3" answers "something else" and
	// branches to the contact step, whose first field gets the focus.
	browsertest.WaitFor(t, ctx, "the focus on Next", `document.activeElement && document.activeElement.id === 'step-next'`)
	keys(t, ctx, "Enter on the greeting", "\r")
	browsertest.WaitFor(t, ctx, "the need question", `document.querySelector('#script-steps > li.current').dataset.step === 'need'`)
	keys(t, ctx, "3: something else", "3")
	browsertest.WaitFor(t, ctx, "the contact step", `document.querySelector('#script-steps > li.current').dataset.step === 'contact'`)
	if got := focused(t, ctx); !strings.HasPrefix(got, "contact.name INPUT") {
		t.Fatalf("focus on %q, want the name field", got)
	}
	inView(t, ctx, "the contact step", onCard...)
	keys(t, ctx, "type the name", "Ivan Petrov")
	keys(t, ctx, "Tab to the company", "\t")
	if got := focused(t, ctx); !strings.HasPrefix(got, "contact.company INPUT") {
		t.Fatalf("Tab went to %q, want the company field", got)
	}
	keys(t, ctx, "type the company", "Romashka LLC")
	browsertest.Screenshot(t, ctx, "script-2-contact")
	keys(t, ctx, "Enter: next step", "\r")
	browsertest.WaitFor(t, ctx, "the details step", `document.querySelector('#script-steps > li.current').dataset.step === 'company_details'`)
	fieldSaved(t, ctx, "contact.name")
	fieldSaved(t, ctx, "contact.company")
	rec := sp.record(api, call.ID)
	if rec.Answers["contact.name"] != "Ivan Petrov" || rec.Answers["contact.company"] != "Romashka LLC" || rec.Answers["need"] != "other" {
		t.Fatalf("record after the contact step: %v", rec.Answers)
	}
	// The step is saved by its own request, after the fields: give it a moment.
	for deadline := time.Now().Add(5 * time.Second); rec.Step != "company_details" && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		rec = sp.record(api, call.ID)
	}
	if rec.Step != "company_details" {
		t.Errorf("record step %q, want company_details", rec.Step)
	}

	// A reload mid-call restores the step and the answers from the server.
	browsertest.Step(t, ctx, "reload", chromedp.Reload())
	browsertest.WaitFor(t, ctx, "the restored card", `document.getElementById('desk').dataset.synced === 'true' && document.getElementById('card').dataset.state === 'talking'`)
	browsertest.WaitFor(t, ctx, "the restored answers", `document.querySelector('[data-bind="contact.name"] input').value === 'Ivan Petrov' && document.querySelector('[data-bind="contact.company"] input').value === 'Romashka LLC'`)
	if got := currentStep(t, ctx); got != "company_details" {
		t.Errorf("after the reload the page shows step %q, want company_details", got)
	}
	fieldSaved(t, ctx, "contact.name")
	fieldSaved(t, ctx, "contact.company")
	if got := browsertest.Eval[string](t, ctx, `[...document.querySelectorAll('li[data-step="need"] .option[aria-pressed="true"]')].map(b => b.dataset.value).join()`); got != "other" {
		t.Errorf("after the reload the need question shows %q chosen, want other", got)
	}

	// Offline: the e-mail typed now waits in the outbox (and in localStorage), then
	// goes once the network is back, and the server applies it once.
	browsertest.WaitFor(t, ctx, "the focus on the e-mail", `document.activeElement && document.activeElement.closest('[data-bind="contact.email"]') !== null`)
	opsBefore := sp.record(api, call.ID).Ops
	browsertest.Step(t, ctx, "go offline", setOffline(true))
	keys(t, ctx, "type the e-mail offline", "ivan@example.com")
	browsertest.WaitFor(t, ctx, "the op in the outbox", `(JSON.parse(localStorage.getItem('desk.outbox.sp-call-1') || '[]')).some(o => o.fields && o.fields.email === 'ivan@example.com')`)
	browsertest.WaitFor(t, ctx, "the unsaved count", `!document.getElementById('outbox-state').hidden`)
	time.Sleep(1500 * time.Millisecond) // let a retry or two fail while offline
	if got := browsertest.Eval[string](t, ctx, `document.querySelector('[data-bind="contact.email"] .save-mark').dataset.save`); got != "pending" {
		t.Errorf("offline the e-mail shows %q, want pending", got)
	}
	if v := sp.record(api, call.ID).Answers["contact.email"]; v != "" {
		t.Fatalf("the server has the e-mail %q while the page was offline", v)
	}
	browsertest.Screenshot(t, ctx, "script-3-offline")
	browsertest.Step(t, ctx, "back online", setOffline(false))
	fieldSaved(t, ctx, "contact.email")
	browsertest.WaitFor(t, ctx, "the outbox empty", `localStorage.getItem('desk.outbox.sp-call-1') === null && document.getElementById('outbox-state').hidden`)
	after := sp.record(api, call.ID)
	if after.Answers["contact.email"] != "ivan@example.com" {
		t.Fatalf("e-mail after the resend: %q", after.Answers["contact.email"])
	}
	// Step ops (the page tells the step it is on) are none here: only the e-mail.
	if after.Ops != opsBefore+1 {
		t.Errorf("ops %d after the resend, want %d: the e-mail applied exactly once", after.Ops, opsBefore+1)
	}

	// The price step: a product shows its range, never one price.
	browsertest.Step(t, ctx, "open the price step", chromedp.Click(chromedp.CSS(`li[data-step="price"] > .step-title`)))
	keys(t, ctx, "1: the first product", "1")
	p := sp.prices[0]
	browsertest.WaitFor(t, ctx, "the range noted", `document.querySelector('[data-bind="price.product"] .price-range').dataset.noted === 'true'`)
	rangeText := browsertest.Eval[string](t, ctx, `document.querySelector('[data-bind="price.product"] .price-range .range').textContent`)
	if !regexp.MustCompile(`^[\d\s\x{a0}\x{202f},.]+ – [\d\s\x{a0}\x{202f},.]+ `+regexp.QuoteMeta(p.Currency)+`$`).MatchString(rangeText) || !strings.Contains(strings.Map(digitsOnly, rangeText), strings.Map(digitsOnly, fmtInt(p.Min))) {
		t.Errorf("price range %q for %+v", rangeText, p)
	}
	if r := sp.record(api, call.ID).Range; r == nil || r.Product != p.Product {
		t.Errorf("the record does not note the range: %+v", r)
	}

	// The promise step: what by keyboard, the deadline by the "+2 h" chip; the page
	// shows the time the server resolved it to.
	keys(t, ctx, "Enter: on to the promise", "\r")
	browsertest.WaitFor(t, ctx, "the promise step", `document.querySelector('#script-steps > li.current').dataset.step === 'promise'`)
	keys(t, ctx, "what is promised", "Check stock")
	browsertest.Step(t, ctx, "+2 h", chromedp.Click(chromedp.CSS(`[data-bind="promise.due"] .chip[data-value="+2h"]`)))
	fieldSaved(t, ctx, "promise.due")
	fieldSaved(t, ctx, "promise.what")
	due, err := time.Parse(time.RFC3339, sp.record(api, call.ID).Answers["promise.due"])
	if err != nil || due.Sub(time.Now()) < 119*time.Minute || due.Sub(time.Now()) > 121*time.Minute {
		t.Fatalf("promise due %v (%v), want about two hours from now", due, err)
	}
	if got := browsertest.Eval[string](t, ctx, `document.querySelector('[data-bind="promise.due"] .resolved').textContent`); !strings.HasPrefix(got, "Due: ") {
		t.Errorf("resolved deadline shown as %q", got)
	}
	inView(t, ctx, "the promise step", onCard...)
	browsertest.Screenshot(t, ctx, "script-4-promise")

	// The call ends: the card stays in wrap-up.
	ended := time.Now().UTC()
	call.State, call.Ended = desk.CallEnded, &ended
	if err := sp.store.SaveCall(bg, call); err != nil {
		t.Fatal(err)
	}
	sp.sales.CallEnded(bg, call)
	sp.hub.Publish(desk.Event{Type: desk.EventCallEnded, Operators: []string{"anna"}, Payload: desk.CallUpdate{Call: call}})
	browsertest.WaitFor(t, ctx, "the wrap-up", `document.getElementById('card').dataset.wrapup === 'pending' && !document.getElementById('close-call').hidden`)

	// Wrap-up by keyboard: "2" picks the interest outcome, Enter goes to Close call,
	// Enter presses it; the source was never asked, so the server refuses and the
	// page takes the operator to it.
	browsertest.Step(t, ctx, "open the wrap-up step", chromedp.Click(chromedp.CSS(`li[data-step="wrapup"] > .step-title`)))
	keys(t, ctx, "2: interest", "2")
	fieldSaved(t, ctx, "outcome")
	keys(t, ctx, "Enter: to Close call", "\r")
	if got := focused(t, ctx); !strings.Contains(got, "close-call") {
		t.Fatalf("Enter on the last step focused %q, want Close call", got)
	}
	keys(t, ctx, "Enter: Close call", "\r")
	browsertest.WaitFor(t, ctx, "the missing source", `document.querySelector('[data-bind="source"]').classList.contains('missing') && document.querySelector('#script-steps > li.current').dataset.step === 'source'`)
	if got := focused(t, ctx); !strings.HasPrefix(got, "source BUTTON") {
		t.Errorf("after the refusal the focus is on %q, want the source", got)
	}
	if msg := browsertest.Text(t, ctx, "script-msg"); !strings.Contains(msg, "Source") {
		t.Errorf("refusal message %q does not name the source", msg)
	}
	inView(t, ctx, "the missing source", onCard...)
	browsertest.Screenshot(t, ctx, "script-5-missing-source")

	// The caller says "catalogue" (3), not the line's web search: flagged.
	keys(t, ctx, "3: catalogue", "3")
	fieldSaved(t, ctx, "source")
	if !browsertest.Eval[bool](t, ctx, `!document.querySelector('[data-bind="source"] .mismatch').hidden`) {
		t.Errorf("no mismatch mark for a source other than the line's")
	}
	if r := sp.record(api, call.ID); r.Answers["source"] != "catalogue" || !r.SourceMismatch {
		t.Errorf("record source %q mismatch %v", r.Answers["source"], r.SourceMismatch)
	}
	browsertest.Step(t, ctx, "Close call", chromedp.Click(chromedp.ID("close-call")))
	browsertest.WaitFor(t, ctx, "the card cleared", `document.getElementById('card').hidden && !document.getElementById('idle').hidden`)
	if r := sp.record(api, call.ID); r.Wrapup == nil || r.Wrapup.Outcome != desk.OutcomeInterest {
		t.Fatalf("wrap-up not stored: %+v", r.Wrapup)
	}

	// The promise counts down in the strip.
	browsertest.WaitFor(t, ctx, "the promise in the strip", `[...document.querySelectorAll('#promise-list .promise')].some(li => li.textContent.includes('Check stock'))`)
	cd := browsertest.Eval[string](t, ctx, `[...document.querySelectorAll('#promise-list .promise')].find(li => li.textContent.includes('Check stock')).querySelector('.countdown').textContent`)
	if !regexp.MustCompile(`^01:5\d:\d\d$|^02:00:00$`).MatchString(cd) {
		t.Errorf("countdown %q, want about 02:00:00", cd)
	}
	browsertest.WaitFor(t, ctx, "the countdown ticking", `[...document.querySelectorAll('#promise-list .promise .countdown')].some(c => c.textContent !== `+browsertest.QuoteJS(cd)+`)`)
	inView(t, ctx, "idle", "#promises", "#idle")
	browsertest.Screenshot(t, ctx, "script-6-closed")

	// After a reload the promise is still there (from the snapshot).
	browsertest.Step(t, ctx, "reload after the wrap-up", chromedp.Reload())
	browsertest.WaitFor(t, ctx, "the promise after a reload", `document.getElementById('desk').dataset.synced === 'true' && document.querySelectorAll('#promise-list .promise').length === 1 && document.getElementById('card').hidden`)
}

func digitsOnly(r rune) rune {
	if r >= '0' && r <= '9' {
		return r
	}
	return -1
}

func fmtInt(f float64) string {
	b, _ := json.Marshal(int64(f))
	return string(b)
}

// TestSupervisorScriptPage: the supervisor watches the answers of a live call
// appear with the step the operator is on and the source mismatch, sees an overdue
// promise, and force-closes the wrap-up the operator still owes.
func TestSupervisorScriptPage(t *testing.T) {
	ctx := browsertest.Start(t)
	sp := newScriptPage(t)
	sp.user("anna", desk.RoleOperator)
	sp.user("sveta", desk.RoleSupervisor)
	anna := sp.loggedIn("anna")

	browsertest.Step(t, ctx, "open and log in", chromedp.EmulateViewport(1366, 768),
		chromedp.Navigate(sp.srv.URL+"/supervisor.html"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-form input[name=login]"), "sveta"),
		chromedp.SendKeys(chromedp.CSS("#login-form input[name=password]"), password),
		chromedp.Click(chromedp.CSS("#login-form button")))
	browsertest.WaitFor(t, ctx, "the board", `document.getElementById('conn-state').dataset.state === 'connected'`)

	bg := context.Background()
	answered := time.Now().UTC()
	call := &desk.Call{ID: "sup-sp-1", SIPCallID: "sup-sip-1", From: "+79160000088", To: "sales", Line: "sales",
		Script: "default", Operator: "anna", State: desk.CallAnswered, Started: answered, Answered: &answered}
	if err := sp.store.SaveCall(bg, call); err != nil {
		t.Fatal(err)
	}
	sp.hub.Publish(desk.Event{Type: desk.EventCallAnswered, Operators: []string{"anna"}, Payload: desk.CallUpdate{Call: call}})
	browsertest.WaitFor(t, ctx, "the call row", `document.querySelector('#calls tr[data-id="sup-sp-1"]') !== null`)

	for i, a := range []struct {
		step   string
		fields map[string]any
	}{
		{"contact", map[string]any{"name": "<b>Olga</b>", "company": "Vector"}},
		{"source", map[string]any{"source": "catalogue"}},
	} {
		r := anna.do("PUT", "/api/calls/sup-sp-1/answers", map[string]any{"op": "sup-op-" + string(rune('a'+i)), "step": a.step, "fields": a.fields}, nil)
		if r.status != http.StatusOK {
			t.Fatalf("answer %v: %d %s", a, r.status, r.body)
		}
	}
	row := `document.querySelector('#calls tr[data-id="sup-sp-1"]')`
	browsertest.WaitFor(t, ctx, "the answers on the row", row+`.querySelector('.answers').textContent.includes('catalogue')`)
	if got := browsertest.Eval[string](t, ctx, row+`.querySelector('.step').textContent`); got != "source" {
		t.Errorf("step on the row %q, want source", got)
	}
	if got := browsertest.Eval[string](t, ctx, row+`.querySelector('.answer[data-key="contact.name"]').textContent`); got != "contact.name: <b>Olga</b>" {
		t.Errorf("name on the row %q", got)
	}
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('#calls b').length`); n != 0 {
		t.Fatalf("an answer became markup")
	}
	if !browsertest.Eval[bool](t, ctx, row+`.querySelector('.mismatch') !== null`) {
		t.Errorf("no source mismatch mark: catalogue on a web-search line")
	}

	// An overdue promise is raised to the supervisors.
	due := time.Now().Add(-12 * time.Minute)
	sp.hub.Publish(desk.Event{Type: desk.EventPromiseOverdue, Operators: []string{"anna"}, Payload: desk.PromiseUpdate{Promise: &desk.Promise{
		ID: "pr-1", Owner: "anna", Kind: "callback", Phone: "+79160000099", Due: due, State: desk.PromiseOpen}}})
	browsertest.WaitFor(t, ctx, "the overdue promise", `document.querySelector('#overdue tr[data-id="pr-1"]') !== null`)
	if got := browsertest.Eval[string](t, ctx, `document.querySelector('#overdue tr[data-id="pr-1"] .late').textContent`); !regexp.MustCompile(`^00:1[23]:\d\d$`).MatchString(got) {
		t.Errorf("overdue for %q, want about 00:12:00", got)
	}

	// The call ends; anna owes the wrap-up; the supervisor closes it.
	ended := time.Now().UTC()
	call.State, call.Ended = desk.CallEnded, &ended
	if err := sp.store.SaveCall(bg, call); err != nil {
		t.Fatal(err)
	}
	sp.sales.CallEnded(bg, call)
	sp.hub.Publish(desk.Event{Type: desk.EventCallEnded, Operators: []string{"anna"}, Payload: desk.CallUpdate{Call: call}})
	browsertest.WaitFor(t, ctx, "the wrap-up row", row+`.classList.contains('state-wrapup') && `+row+`.querySelector('button.force') !== null`)
	browsertest.Screenshot(t, ctx, "script-7-supervisor")
	browsertest.Step(t, ctx, "force close", chromedp.Click(chromedp.CSS(`#calls tr[data-id="sup-sp-1"] button.force`)))
	browsertest.WaitFor(t, ctx, "the reason input focused", `document.activeElement && document.activeElement.classList.contains('force-reason')`)
	browsertest.Step(t, ctx, "give the reason", chromedp.KeyEvent("operator went home\r"))
	browsertest.WaitFor(t, ctx, "the wrap-up closed", row+` === null || !`+row+`.classList.contains('state-wrapup')`)
	rec := sp.record(anna, "sup-sp-1")
	if rec.Wrapup == nil || !rec.Wrapup.Forced {
		t.Fatalf("wrap-up after force: %+v", rec.Wrapup)
	}
}

// TestCardHistoryPage: a known caller's card shows his last calls, the open
// interest and its stage, open promises (overdue in red) and notes; the operator
// adds a note and changes the personal manager on the card, in Russian.
func TestCardHistoryPage(t *testing.T) {
	ctx := browsertest.Start(t)
	sp := newScriptPage(t)
	sp.user("anna", desk.RoleOperator)
	sp.user("boris", desk.RoleOperator)
	bg := context.Background()
	contact := &desk.Contact{ID: "ct-h1", Name: "Анна Смирнова", Company: "ООО Ромашка", Manager: "anna",
		Phones: []string{"+79160000055"}, Created: time.Now(), Updated: time.Now()}
	if err := sp.store.CreateContact(bg, contact); err != nil {
		t.Fatal(err)
	}

	browsertest.Step(t, ctx, "open the page in Russian at 1366x768", chromedp.EmulateViewport(1366, 768),
		chromedp.Navigate(sp.srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.Evaluate[chromedp.Void](`localStorage.setItem('desk.lang', 'ru')`),
		chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("login-login"), "anna"),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.ID("login-submit")))
	browsertest.WaitFor(t, ctx, "the feed", `document.getElementById('desk').dataset.synced === 'true'`)

	now := time.Now().UTC()
	call := &desk.Call{ID: "h-call-1", SIPCallID: "h-sip-1", From: "+79160000055", To: "sales", Line: "sales",
		Script: "default", Operator: "anna", State: desk.CallRinging, ContactID: contact.ID, Started: now}
	if err := sp.store.SaveCall(bg, call); err != nil {
		t.Fatal(err)
	}
	card := &desk.Card{
		Calls:    []desk.CallSummary{{CallID: "old-1", At: now.Add(-48 * time.Hour), Operator: "anna", Outcome: desk.OutcomeInterest, Seconds: 185}},
		Interest: &desk.Interest{ID: "in-1", ContactID: contact.ID, Type: "deal", Owner: "anna", Stage: "meeting", State: "open"},
		Promises: []*desk.Promise{
			{ID: "p-late", Owner: "anna", Kind: "promise", What: "Send the offer", Due: now.Add(-time.Hour), State: desk.PromiseOpen},
			{ID: "p-next", Owner: "anna", Kind: "promise", What: "Check stock", Due: now.Add(time.Hour), State: desk.PromiseOpen},
		},
		Notes: []desk.Note{{ID: "n-1", ContactID: contact.ID, Text: "<i>Prefers mornings</i>", By: "anna", At: now.Add(-48 * time.Hour)}},
	}
	sp.hub.Publish(desk.Event{Type: desk.EventCallRinging, Operators: []string{"anna"}, Payload: desk.Pop{
		Call: call, Contact: contact, Manager: "Name of anna", Script: sp.script, Card: card, PresetSource: "web_search", Prices: sp.prices}})
	browsertest.WaitFor(t, ctx, "the history", `!document.getElementById('history').hidden && document.querySelectorAll('#history-calls tr').length === 1`)
	row := browsertest.Eval[string](t, ctx, `document.querySelector('#history-calls tr').textContent`)
	if !strings.Contains(row, "Интерес") || !strings.Contains(row, "03:05") || !strings.Contains(row, "anna") {
		t.Errorf("history row %q: want the outcome, the operator and the duration", row)
	}
	if got := browsertest.Text(t, ctx, "interest"); !strings.Contains(got, "Потенциальная сделка") || !strings.Contains(got, "Встреча / презентация") {
		t.Errorf("interest %q", got)
	}
	if got := browsertest.Eval[string](t, ctx, `[...document.querySelectorAll('#card-promises li')].map(li => li.classList.contains('overdue') + ':' + li.firstChild.textContent).join('|')`); got != "true:Send the offer|false:Check stock" {
		t.Errorf("card promises %q", got)
	}
	if got := browsertest.Eval[string](t, ctx, `document.querySelector('#notes .note-text').textContent`); got != "<i>Prefers mornings</i>" {
		t.Errorf("note %q", got)
	}
	if got := browsertest.Text(t, ctx, "close-call"); got != "Закрыть звонок" {
		t.Errorf("Russian Close call label %q", got)
	}
	if got := browsertest.Text(t, ctx, "caller-manager"); got != "Name of anna" {
		t.Errorf("manager %q", got)
	}
	inView(t, ctx, "a known caller", onCard...)
	browsertest.Screenshot(t, ctx, "script-8-card-history-ru")

	// Add a note with the keyboard.
	browsertest.Step(t, ctx, "add a note", chromedp.Click(chromedp.ID("note-input")), chromedp.KeyEvent("Wants a demo in May\r"))
	browsertest.WaitFor(t, ctx, "the note on the card", `document.querySelector('#notes .note-text').textContent === 'Wants a demo in May'`)
	c, err := sp.sales.Card(bg, contact.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notes) != 1 || c.Notes[0].Text != "Wants a demo in May" || c.Notes[0].CallID != call.ID {
		t.Errorf("stored notes %+v", c.Notes)
	}

	// Change the manager: an operator may not list operators, so he types a login.
	browsertest.Step(t, ctx, "change the manager", chromedp.Click(chromedp.ID("manager-change")))
	browsertest.WaitFor(t, ctx, "the manager input", `document.activeElement && document.activeElement.id === 'manager-value'`)
	browsertest.Step(t, ctx, "type boris", chromedp.KeyEvent("boris\r"))
	browsertest.WaitFor(t, ctx, "the new manager", `document.getElementById('caller-manager').textContent === 'boris' && document.getElementById('manager-form').hidden`)
	got, err := sp.store.Contact(bg, contact.ID)
	if err != nil || got.Manager != "boris" {
		t.Fatalf("manager after the change: %+v %v", got, err)
	}
}
