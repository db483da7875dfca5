package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/browsertest"
	"github.com/calldesk/desk/desk/redistest"
)

// Real-browser end-to-end tests through the running desk: startDesk on a private
// redis-server with the demo users, the operator's phone a registered sipp UAS, the
// caller `desk call` or a sipp UAC, and the operator's and the supervisor's pages
// in two headless Chromium browsers (each its own profile, so its own session).
//
// DESK_UPDATE_SCREENSHOTS=1 rewrites the committed screenshots in docs/screenshots
// (1366x768, the README shows them); DESK_SCREENSHOTS=DIR keeps a copy of each too.

// screenshotDir is where DESK_UPDATE_SCREENSHOTS=1 writes the committed set.
const screenshotDir = "../../docs/screenshots"

// screenW and screenH are the viewport of both pages: a common office laptop.
const screenW, screenH = 1366, 768

// browserDesk is a desk on a private redis-server, in demo mode: maria (operator,
// her phone's SIP password maria-sip), sveta (supervisor), the demo contact and a
// week of demo history.
func browserDesk(t *testing.T) *testDesk {
	t.Helper()
	rs := redistest.StartServer(t)
	return startDesk(t, map[string]string{
		"DESK_REDIS_URL": "redis://" + rs.Addr + "/0",
		"DESK_DEMO":      "1",
	})
}

// openPage starts a browser at 1366x768 in UTC, records window.alert calls and
// Content-Security-Policy violations from the first script on, and logs in.
func openPage(t *testing.T, url, login, password string) context.Context {
	t.Helper()
	ctx := browsertest.Start(t)
	browsertest.Step(t, ctx, "prepare the browser", chromedp.EmulateViewport(screenW, screenH),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
				Source: `window.__alerts = []; window.alert = (m) => { window.__alerts.push(String(m)); };
window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`,
			}); err != nil {
				return err
			}
			_, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "UTC"})
			return err
		}))
	browsertest.Step(t, ctx, "open "+url+" as "+login, chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-form input[name=login]"), login),
		chromedp.SendKeys(chromedp.CSS("#login-form input[name=password]"), password),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	return ctx
}

// shot saves what the page shows: to DESK_SCREENSHOTS (browser-NAME.png) when set,
// and over docs/screenshots/NAME.png when DESK_UPDATE_SCREENSHOTS=1.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	browsertest.Screenshot(t, ctx, "browser-"+name)
	if os.Getenv("DESK_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if len(png) > 300<<10 {
		t.Errorf("screenshot %s is %d KB, keep it under 300 KB", name, len(png)>>10)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(screenshotDir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d KB)", p, len(png)>>10)
}

// press sends keys to whatever has the focus, as a person at the keyboard would.
func press(t *testing.T, ctx context.Context, what, keys string) {
	t.Helper()
	browsertest.Step(t, ctx, what, chromedp.KeyEvent(keys))
}

// opStep is the step the operator's page shows open.
func opStep(t *testing.T, ctx context.Context) string {
	t.Helper()
	return browsertest.Eval[string](t, ctx, `(document.querySelector('#script-steps > li.current') || {dataset: {}}).dataset.step || ''`)
}

// waitStep waits until the operator's page shows step open, and says when it did.
func waitStep(t *testing.T, ctx context.Context, step string) time.Time {
	t.Helper()
	browsertest.WaitFor(t, ctx, "step "+step, `(document.querySelector('#script-steps > li.current') || {dataset: {}}).dataset.step === `+browsertest.QuoteJS(step))
	return time.Now()
}

// focusOn is the bind of the field holding the focus and the focused element's
// tag: "contact.name INPUT".
func focusOn(t *testing.T, ctx context.Context) string {
	t.Helper()
	return browsertest.Eval[string](t, ctx, `(() => { const a = document.activeElement; if (!a) return ''; const f = a.closest('[data-bind]'); return (f ? f.dataset.bind + ' ' : '') + a.tagName + (a.id ? '#' + a.id : ''); })()`)
}

// saved waits until the field bound to bind shows its saved mark.
func saved(t *testing.T, ctx context.Context, bind string) {
	t.Helper()
	browsertest.WaitFor(t, ctx, bind+" saved", `(document.querySelector('[data-bind="`+bind+`"] .save-mark') || {dataset: {}}).dataset.save === 'saved'`)
}

// noScriptRan checks that no alert was called and no Content-Security-Policy
// violation happened on the page.
func noScriptRan(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	if a := browsertest.Eval[[]string](t, ctx, `window.__alerts || ['the alert recorder did not run']`); len(a) > 0 {
		t.Errorf("%s: window.alert was called %d times: %q", where, len(a), a)
	}
	if v := browsertest.Eval[[]string](t, ctx, `window.__csp || ['the CSP watcher did not run']`); len(v) > 0 {
		t.Errorf("%s: Content-Security-Policy violations: %q", where, v)
	}
}

// TestBrowserRealCallScript is an operator's call as it happens, through real SIP:
// maria's page and her sipp phone, sveta's supervisor page in a second browser,
// and a call from the demo contact by `desk call`. The card pops with the caller's
// name while the phone still rings (2 s); after the answer maria works the script
// with the keyboard alone (Enter, digits, Tab, typing), and every field is saved on
// the server; a reload in the middle keeps the card, the step and every answer;
// sveta's board follows her step and answers live. The caller hangs up; the wrap-up
// is refused while the promise has no deadline (highlighted), then accepted.
func TestBrowserRealCallScript(t *testing.T) {
	d := browserDesk(t)
	op := openPage(t, d.Base+"/", "maria", "maria-demo")
	browsertest.WaitFor(t, op, "maria's desk", `document.getElementById('desk').dataset.synced === 'true' && document.getElementById('conn-state').dataset.state === 'connected'`)
	sup := openPage(t, d.Base+"/supervisor.html", "sveta", "sveta-demo")
	browsertest.WaitFor(t, sup, "sveta's board", `document.getElementById('board').dataset.synced === 'true' && document.getElementById('conn-state').dataset.state === 'connected'`)
	api := newWebClient(t, d.Base)
	api.login("maria", "maria-demo")
	record := func(callID string) desk.Record {
		t.Helper()
		var rec desk.Record
		api.mustDo("GET", "/api/calls/"+callID+"/record", nil, &rec)
		return rec
	}

	s := newSipp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	phonePort := strconv.Itoa(freePort(t))
	s.register(ctx, d, "maria", "maria-sip", phonePort, "u1", "600")
	browsertest.WaitFor(t, op, "the phone shown registered", `document.getElementById('phone-state').dataset.state === 'on'`)

	// The phone rings for 2 s, then answers and waits for the caller's BYE (its own
	// time limit raised over sipp's usual 20 s: the call lasts while maria types).
	uasOut := &syncBuffer{}
	uas := s.command(ctx, "-sf", mustAbs(t, filepath.Join("testdata", "sipp", "uas.xml")), "-p", phonePort, "-m", "1", "-d", "2000", "-timeout", "60")
	uas.Stdout, uas.Stderr = uasOut, uasOut
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the phone bind its port
	callCtx, hangUp := context.WithCancel(ctx)
	defer hangUp()
	callOut := &syncBuffer{}
	callDone := make(chan error, 1)
	go func() {
		// A long hold: the caller hangs up when the test cancels callCtx (BYE).
		callDone <- run(callCtx, []string{"call", "--server", d.SIPAddr, "--from", demoContact.Phones[0], "--to", "sales", "--hold", "60s"},
			func(string) string { return "" }, callOut)
	}()
	dialled := time.Now()

	// 1. The card pops while the phone rings, with the caller's name.
	browsertest.WaitFor(t, op, "the ringing card", `document.getElementById('card').dataset.state === 'ringing' && document.querySelector('#script-steps > li.current') !== null`)
	popped := time.Since(dialled)
	name, company := browsertest.Text(t, op, "caller-name"), browsertest.Text(t, op, "caller-company")
	ringing := browsertest.Eval[string](t, op, `document.getElementById('card').dataset.state`)
	if name != demoContact.Name || company != demoContact.Company {
		t.Errorf("the ringing card shows %q of %q, want %q of %q", name, company, demoContact.Name, demoContact.Company)
	}
	if ringing != "ringing" {
		t.Fatalf("the phone answered before the card was read (state %q): the pop came %v after dialling", ringing, popped)
	}
	t.Logf("the card popped %v after dialling, while the phone rang", popped.Round(time.Millisecond))
	callID := browsertest.Eval[string](t, op, `(Object.keys(localStorage).find(k => k.startsWith('desk.pop.')) || '').slice('desk.pop.'.length)`)
	if callID == "" {
		t.Fatal("the page kept no pop in localStorage")
	}
	shot(t, op, "operator-ringing")

	// The supervisor's board has the call, ringing at maria.
	row := `document.querySelector('#calls tr[data-id="` + callID + `"]')`
	browsertest.WaitFor(t, sup, "the call on the board", row+` !== null`)
	// supStep waits until the board shows the call on step, and, when given, the
	// answer key with value; it logs how long after the operator's page (at) it did.
	supStep := func(at time.Time, step, key, value string) {
		t.Helper()
		cond := row + ` !== null && ` + row + `.querySelector('.step').textContent === ` + browsertest.QuoteJS(step)
		if key != "" {
			cond += ` && (` + row + `.querySelector('.answer[data-key="` + key + `"]') || {textContent: ''}).textContent === ` + browsertest.QuoteJS(key+": "+value)
		}
		browsertest.WaitFor(t, sup, "the board on "+step, cond)
		t.Logf("the board showed step %s (answer %s) %v after the operator's page", step, key, time.Since(at).Round(time.Millisecond))
	}

	// 2. Answered: the script by keyboard alone.
	browsertest.WaitFor(t, op, "talking", `document.getElementById('card').dataset.state === 'talking'`)
	browsertest.WaitFor(t, op, "the focus on Next", `document.activeElement && document.activeElement.id === 'step-next'`)
	press(t, op, "Enter on the greeting", "\r")
	waitStep(t, op, "need")
	press(t, op, "1: names a product", "1")
	at := waitStep(t, op, "need_product")
	if got := focusOn(t, op); !strings.HasPrefix(got, "need.product INPUT") {
		t.Fatalf("focus on %q, want the product field", got)
	}
	supStep(at, "need_product", "need", "product")

	typed := map[string]string{ // bind -> what maria types
		"need.product":     "Стеллажи R-200",
		"need.quantity":    "40",
		"contact.name":     demoContact.Name,
		"contact.company":  demoContact.Company,
		"contact.position": "Руководитель закупок",
		"contact.email":    "smirnova@romashka.example",
		"promise.what":     "Отправить предложение",
		"need":             "product", // the option "1" picks
		"outcome":          "deal",    // the choice "1" picks
	}
	press(t, op, "type the product", typed["need.product"])
	press(t, op, "Tab to the quantity", "\t")
	if got := focusOn(t, op); !strings.HasPrefix(got, "need.quantity INPUT") {
		t.Fatalf("Tab went to %q, want the quantity", got)
	}
	press(t, op, "type the quantity", typed["need.quantity"])
	press(t, op, "Enter: to the contact", "\r")
	waitStep(t, op, "contact")
	for i, bind := range []string{"contact.name", "contact.company", "contact.position"} {
		if i > 0 {
			press(t, op, "Tab to "+bind, "\t")
		}
		if got := focusOn(t, op); !strings.HasPrefix(got, bind+" INPUT") {
			t.Fatalf("focus on %q, want %s", got, bind)
		}
		press(t, op, "type "+bind, typed[bind])
	}
	shot(t, op, "operator-script")
	press(t, op, "Enter: to the details", "\r")
	at = waitStep(t, op, "company_details")
	if got := focusOn(t, op); !strings.HasPrefix(got, "contact.email INPUT") {
		t.Fatalf("focus on %q, want the e-mail", got)
	}
	supStep(at, "company_details", "contact.position", typed["contact.position"])
	press(t, op, "type the e-mail", typed["contact.email"])
	press(t, op, "Enter: to the source", "\r")
	at = waitStep(t, op, "source")
	supStep(at, "source", "contact.email", typed["contact.email"])
	for _, b := range []string{"need.product", "need.quantity", "contact.name", "contact.company", "contact.position", "contact.email"} {
		saved(t, op, b)
	}
	rec := record(callID)
	for _, b := range []string{"need", "need.product", "need.quantity", "contact.name", "contact.company", "contact.position", "contact.email"} {
		if rec.Answers[b] != typed[b] {
			t.Errorf("server record %s = %q, want %q", b, rec.Answers[b], typed[b])
		}
	}
	if rec.Step != "source" {
		t.Errorf("server record step %q, want source", rec.Step)
	}

	// 3. A reload in the middle of the call: the card, the step and every answer.
	browsertest.Step(t, op, "reload", chromedp.Reload())
	browsertest.WaitFor(t, op, "the card after the reload", `document.getElementById('desk').dataset.synced === 'true' && document.getElementById('card').dataset.state === 'talking' && document.querySelector('#script-steps > li.current') !== null`)
	if got := browsertest.Text(t, op, "caller-name"); got != demoContact.Name {
		t.Errorf("after the reload the card shows %q, want %q", got, demoContact.Name)
	}
	values := `Object.fromEntries([...document.querySelectorAll('#script-steps [data-bind] input.control')].map(i => [i.closest('[data-bind]').dataset.bind, i.value]))`
	browsertest.WaitFor(t, op, "the answers restored", values+`['contact.email'] === `+browsertest.QuoteJS(typed["contact.email"]))
	shown := browsertest.Eval[map[string]string](t, op, values)
	for _, b := range []string{"need.product", "need.quantity", "contact.name", "contact.company", "contact.position", "contact.email"} {
		if shown[b] != typed[b] {
			t.Errorf("after the reload %s shows %q, want %q", b, shown[b], typed[b])
		}
		saved(t, op, b)
	}
	if got := browsertest.Eval[string](t, op, `[...document.querySelectorAll('li[data-step="need"] .option[aria-pressed="true"]')].map(b => b.dataset.value).join()`); got != "product" {
		t.Errorf("after the reload the need question shows %q chosen, want product", got)
	}
	if got := opStep(t, op); got != "source" {
		t.Errorf("after the reload the page shows step %q, want source", got)
	}

	// On by keyboard: "2" picks the second source, Enter moves on; "1" picks the
	// first price-list item; the promise is typed without a deadline; Enter through
	// the meeting; "1" is the outcome "potential deal".
	browsertest.WaitFor(t, op, "the focus on a source", `document.activeElement && document.activeElement.closest('[data-bind="source"]') !== null`)
	typed["source"] = browsertest.Eval[string](t, op, `document.querySelector('[data-bind="source"] button[data-digit="2"]').dataset.value`)
	press(t, op, "2: the second source", "2")
	saved(t, op, "source")
	press(t, op, "Enter: to the price", "\r")
	at = waitStep(t, op, "price")
	supStep(at, "price", "source", typed["source"])
	typed["price.product"] = browsertest.Eval[string](t, op, `document.querySelector('[data-bind="price.product"] button[data-digit="1"]').dataset.value`)
	press(t, op, "1: the first product", "1")
	saved(t, op, "price.product")
	press(t, op, "Enter: to the promise", "\r")
	waitStep(t, op, "promise")
	if got := focusOn(t, op); !strings.HasPrefix(got, "promise.what INPUT") {
		t.Fatalf("focus on %q, want what is promised", got)
	}
	press(t, op, "type the promise", typed["promise.what"])
	press(t, op, "Enter: to the meeting", "\r")
	waitStep(t, op, "meeting")
	press(t, op, "Enter: to the wrap-up", "\r")
	waitStep(t, op, "wrapup")
	press(t, op, "1: potential deal", "1")
	saved(t, op, "outcome")
	at = time.Now()
	saved(t, op, "promise.what")
	supStep(at, "wrapup", "outcome", "deal")
	shot(t, sup, "supervisor-board")
	rec = record(callID)
	for _, b := range []string{"need", "need.product", "need.quantity", "contact.name", "contact.company", "contact.position", "contact.email", "source", "price.product", "promise.what", "outcome"} {
		if rec.Answers[b] != typed[b] {
			t.Errorf("server record %s = %q, want %q", b, rec.Answers[b], typed[b])
		}
	}
	if rec.Wrapup != nil {
		t.Fatalf("the record is wrapped up during the call: %+v", rec.Wrapup)
	}

	// The caller hangs up: the card stays in wrap-up.
	hangUp()
	if err := <-callDone; err != nil {
		t.Fatalf("desk call: %v\n%s", err, callOut.String())
	}
	if err := uas.Wait(); err != nil {
		t.Fatalf("the phone: %v\n%s", err, uasOut.String())
	}
	browsertest.WaitFor(t, op, "the wrap-up", `document.getElementById('card').dataset.wrapup === 'pending' && !document.getElementById('close-call').hidden`)
	browsertest.WaitFor(t, sup, "the wrap-up owed on the board", row+`.classList.contains('state-wrapup')`)

	// 4. Enter on the outcome goes to Close call, Enter presses it: refused, the
	// promise has no deadline; the page highlights it and takes maria there.
	press(t, op, "Enter: to Close call", "\r")
	if got := focusOn(t, op); got != "BUTTON#close-call" {
		t.Fatalf("Enter on the outcome focused %q, want Close call", got)
	}
	press(t, op, "Enter: Close call", "\r")
	browsertest.WaitFor(t, op, "the missing deadline", `document.querySelector('[data-bind="promise.due"]').classList.contains('missing') && document.querySelector('#script-steps > li.current').dataset.step === 'promise'`)
	if n := browsertest.Eval[int](t, op, `document.querySelectorAll('#script-steps .field.missing').length`); n != 1 {
		t.Errorf("%d fields highlighted as missing, want the deadline alone", n)
	}
	if msg := browsertest.Text(t, op, "script-msg"); msg == "" {
		t.Errorf("no refusal message")
	}
	if got := focusOn(t, op); !strings.HasPrefix(got, "promise.due INPUT") {
		t.Errorf("after the refusal the focus is on %q, want the deadline", got)
	}
	if rec := record(callID); rec.Wrapup != nil {
		t.Fatalf("a refused wrap-up was stored: %+v", rec.Wrapup)
	}
	shot(t, op, "operator-wrapup")

	// Tab through the date and time parts of the deadline to its "+2 h" chip,
	// Enter; then Close call.
	chip := func() string { return browsertest.Eval[string](t, op, `document.activeElement.dataset.value || ''`) }
	for i := 0; i < 10 && chip() != "+2h"; i++ {
		press(t, op, "Tab to the +2 h chip", "\t")
	}
	if got := chip(); got != "+2h" {
		t.Fatalf("Tab from the deadline reached %q (%s), want the +2h chip", got, focusOn(t, op))
	}
	press(t, op, "Enter: +2 h", "\r")
	saved(t, op, "promise.due")
	browsertest.Step(t, op, "Close call", chromedp.Click(chromedp.ID("close-call")))
	browsertest.WaitFor(t, op, "the card cleared", `document.getElementById('card').hidden && !document.getElementById('idle').hidden`)
	rec = record(callID)
	if rec.Wrapup == nil || rec.Wrapup.Outcome != desk.OutcomeDeal {
		t.Fatalf("wrap-up not stored: %+v", rec.Wrapup)
	}
	if due, err := time.Parse(time.RFC3339, rec.Answers["promise.due"]); err != nil || time.Until(due) < 110*time.Minute || time.Until(due) > 121*time.Minute {
		t.Errorf("promise due %q, want about two hours from now", rec.Answers["promise.due"])
	}
	browsertest.WaitFor(t, sup, "the wrap-up done on the board", row+` === null || !`+row+`.classList.contains('state-wrapup')`)
	noScriptRan(t, op, "operator page")
	noScriptRan(t, sup, "supervisor page")
}

// hostileName is a caller-chosen SIP display name that would run script if a
// page put it into HTML.
const hostileName = `<img src=x onerror=alert(1)>`

// TestBrowserHostileCallerName: a sipp caller whose From display name is an HTML
// image with an onerror handler rings maria. Her card and sveta's board show the
// name as text, there is no img element on either page, window.alert is never
// called and the Content-Security-Policy reports nothing.
func TestBrowserHostileCallerName(t *testing.T) {
	d := browserDesk(t)
	op := openPage(t, d.Base+"/", "maria", "maria-demo")
	browsertest.WaitFor(t, op, "maria's desk", `document.getElementById('desk').dataset.synced === 'true' && document.getElementById('conn-state').dataset.state === 'connected'`)
	sup := openPage(t, d.Base+"/supervisor.html", "sveta", "sveta-demo")
	browsertest.WaitFor(t, sup, "sveta's board", `document.getElementById('board').dataset.synced === 'true' && document.getElementById('conn-state').dataset.state === 'connected'`)

	s := newSipp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	phonePort := strconv.Itoa(freePort(t))
	s.register(ctx, d, "maria", "maria-sip", phonePort, "u1", "600")
	browsertest.WaitFor(t, op, "the phone shown registered", `document.getElementById('phone-state').dataset.state === 'on'`)

	uasOut := &syncBuffer{}
	uas := s.command(ctx, "-sf", mustAbs(t, filepath.Join("testdata", "sipp", "uas.xml")), "-p", phonePort, "-m", "1", "-d", "1500")
	uas.Stdout, uas.Stderr = uasOut, uasOut
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// uac.xml puts the csv's second field in the From display name, quoted.
	callers := s.file("hostile.csv", "SEQUENTIAL\n+79160000066;"+hostileName+";\n")
	uac := s.command(ctx, "-sf", mustAbs(t, filepath.Join("testdata", "sipp", "uac.xml")), "-inf", callers,
		d.SIPAddr, "-t", "u1", "-s", "sales", "-p", strconv.Itoa(freePort(t)), "-m", "1", "-d", "1000")
	uacOut := &syncBuffer{}
	uac.Stdout, uac.Stderr = uacOut, uacOut
	if err := uac.Start(); err != nil {
		t.Fatal(err)
	}

	browsertest.WaitFor(t, op, "the ringing card", `document.getElementById('card').dataset.state === 'ringing'`)
	browsertest.WaitFor(t, sup, "the call on the board", `document.querySelector('#calls tr.call') !== null`)
	check := func(when string) {
		t.Helper()
		if got := browsertest.Text(t, op, "caller-display"); got != hostileName {
			t.Errorf("%s: the card's caller ID is %q, want the display name as text %q", when, got, hostileName)
		}
		if got := browsertest.Eval[string](t, sup, `document.querySelector('#calls tr.call .caller .sub').textContent`); got != hostileName {
			t.Errorf("%s: the board's caller is %q, want the display name as text %q", when, got, hostileName)
		}
		if n := browsertest.Eval[int](t, op, `document.querySelectorAll('#desk img, #card img').length`); n != 0 {
			t.Errorf("%s: %d img elements on the operator's page", when, n)
		}
		if n := browsertest.Eval[int](t, sup, `document.querySelectorAll('#board img').length`); n != 0 {
			t.Errorf("%s: %d img elements on the board", when, n)
		}
		noScriptRan(t, op, when+", operator page")
		noScriptRan(t, sup, when+", supervisor page")
	}
	check("ringing")
	browsertest.WaitFor(t, op, "talking", `document.getElementById('card').dataset.state === 'talking'`)
	check("talking")
	if err := uac.Wait(); err != nil {
		t.Fatalf("the sipp caller: %v\n%s\ndesk:\n%s", err, uacOut.String(), d.Out.String())
	}
	if err := uas.Wait(); err != nil {
		t.Fatalf("the phone: %v\n%s", err, uasOut.String())
	}
	browsertest.WaitFor(t, op, "the wrap-up", `document.getElementById('card').dataset.wrapup === 'pending'`)
	check("wrap-up")
	// An image that loaded would have asked the server for /x.
	if n := browsertest.Eval[int](t, op, `performance.getEntriesByType('resource').filter(e => /\/x$/.test(e.name)).length`); n != 0 {
		t.Errorf("the page fetched the image src %d times", n)
	}

	// The control: the same name put into HTML on purpose is caught by the
	// watchers (the alert when it runs, the CSP report when the policy blocks it),
	// so their silence above means something.
	browsertest.Step(t, op, "inject the name as HTML", chromedp.Evaluate[chromedp.Void](
		`(() => { const d = document.createElement('div'); d.innerHTML = `+browsertest.QuoteJS(hostileName)+`; document.body.append(d); })()`))
	browsertest.WaitFor(t, op, "the watchers to see the injected markup", `window.__alerts.length > 0 || window.__csp.length > 0`)
	t.Logf("control, the name injected as HTML: alerts %d, CSP reports %q",
		browsertest.Eval[int](t, op, `window.__alerts.length`), browsertest.Eval[[]string](t, op, `window.__csp`))
}
