package httpapi_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/browsertest"
)

// TestOperatorPage drives the operator page in a real browser: log in through the
// form, get a pop with hostile caller-supplied text, then talking and ended.
func TestOperatorPage(t *testing.T) {
	ctx := browsertest.Start(t)
	e := newEnv(t)
	e.user("anna", desk.RoleOperator)

	browsertest.Step(t, ctx, "open the page", chromedp.Navigate(e.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-form")))
	browsertest.Screenshot(t, ctx, "0-login")
	browsertest.Step(t, ctx, "log in",
		chromedp.SendKeys(chromedp.ID("login-login"), "anna"),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.ID("login-submit")))
	browsertest.WaitFor(t, ctx, "the feed", `document.getElementById('desk').dataset.synced === 'true' && document.getElementById('conn-state').dataset.state === 'connected'`)
	if got := browsertest.Text(t, ctx, "user-name"); got != "Name of anna" {
		t.Fatalf("user name %q", got)
	}

	const hostileName = `<img src=x onerror=alert(1)>`
	const hostileDisplay = `"><img src=y onerror=alert(2)><b>Boss</b>`
	now := time.Now().UTC()
	call := &desk.Call{ID: "call-1", SIPCallID: "sip-1", From: "+79160000001", FromDisplay: hostileDisplay,
		To: "sales", Line: "Sales line", Operator: "anna", State: desk.CallRinging, Started: now}
	e.hub.Publish(desk.Event{Type: desk.EventCallRinging, Operators: []string{"anna"}, Payload: desk.Pop{
		Call:    call,
		Contact: &desk.Contact{ID: "ct-1", Name: hostileName, Company: "Romashka <i>LLC</i>", Manager: "anna", Phones: []string{"+79160000001"}},
		Manager: "Anna Ivanova",
		Script: &desk.Script{ID: "default", Title: "Inbound sales", Steps: []desk.Step{
			{ID: "greet", Title: "Greeting", Text: "Say hello <script>alert(3)</script>"},
			{ID: "contact", Title: "Contact", Fields: []desk.Field{{ID: "name", Label: "Full name <u>", Required: true}, {ID: "email", Label: "E-mail"}}},
		}},
	}})
	browsertest.WaitFor(t, ctx, "the ringing card", `document.getElementById('card').dataset.state === 'ringing'`)
	browsertest.Screenshot(t, ctx, "1-ringing")
	checks := []struct{ id, want string }{
		{"caller-name", hostileName},
		{"caller-display", hostileDisplay},
		{"caller-company", "Romashka <i>LLC</i>"},
		{"caller-manager", "Anna Ivanova"},
		{"caller-number", "+7 916 000-00-01"},
		{"call-line", "Sales line"},
		{"card-state", "Incoming call"},
	}
	for _, c := range checks {
		if got := browsertest.Text(t, ctx, c.id); got != c.want {
			t.Errorf("#%s = %q, want %q", c.id, got, c.want)
		}
	}
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('img, b, i, u').length`); n != 0 {
		t.Fatalf("caller text became markup: %d elements", n)
	}
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('script').length`); n != 1 {
		t.Fatalf("%d script elements, want only the page's own", n)
	}
	if got := browsertest.Eval[string](t, ctx, `[...document.querySelectorAll('#script-steps > li')].map(li => li.textContent).join(' | ')`); got != "GreetingSay hello <script>alert(3)</script> | ContactFull name <u> (required)E-mail" {
		t.Fatalf("script steps %q", got)
	}
	if browsertest.Eval[bool](t, ctx, `!document.getElementById('new-caller').hidden`) {
		t.Fatalf("a known caller is shown as new")
	}

	answered := time.Now().UTC().Add(-2 * time.Second)
	call.State, call.Answered = desk.CallAnswered, &answered
	e.hub.Publish(desk.Event{Type: desk.EventCallAnswered, Operators: []string{"anna"}, Payload: desk.CallUpdate{Call: call}})
	browsertest.WaitFor(t, ctx, "talking", `document.getElementById('card').dataset.state === 'talking'`)
	if got := browsertest.Text(t, ctx, "card-state"); got != "Talking" {
		t.Fatalf("card state %q", got)
	}
	first := browsertest.Text(t, ctx, "card-timer")
	if !regexp.MustCompile(`^\d\d:\d\d$`).MatchString(first) || first < "00:02" {
		t.Fatalf("timer %q, want mm:ss from the answer time", first)
	}
	browsertest.WaitFor(t, ctx, "the timer to run", `document.getElementById('card-timer').textContent !== `+browsertest.QuoteJS(first))
	browsertest.Screenshot(t, ctx, "2-talking")

	ended := time.Now().UTC()
	call.State, call.Ended = desk.CallEnded, &ended
	e.hub.Publish(desk.Event{Type: desk.EventCallEnded, Operators: []string{"anna"}, Payload: desk.CallUpdate{Call: call}})
	browsertest.WaitFor(t, ctx, "ended", `document.getElementById('card').dataset.state === 'ended'`)
	if got := browsertest.Text(t, ctx, "card-state"); got != "Ended" {
		t.Fatalf("card state %q", got)
	}
	browsertest.Screenshot(t, ctx, "3-ended")

	// An unknown caller while the lookup is down: formatted number, no "new caller"
	// claim, and the warning.
	unknown := &desk.Call{ID: "call-2", From: "+79160000002", To: "sales", Line: "Sales line", Operator: "anna",
		State: desk.CallRinging, Started: time.Now().UTC(), LookupFailed: true}
	e.hub.Publish(desk.Event{Type: desk.EventCallRinging, Operators: []string{"anna"}, Payload: desk.Pop{Call: unknown, Lookup: "unavailable"}})
	browsertest.WaitFor(t, ctx, "the second call", `document.getElementById('card').dataset.state === 'ringing'`)
	if got := browsertest.Text(t, ctx, "caller-name"); got != "+7 916 000-00-02" {
		t.Fatalf("unknown caller name %q", got)
	}
	if !browsertest.Eval[bool](t, ctx, `!document.getElementById('lookup-note').hidden && document.getElementById('new-caller').hidden`) {
		t.Fatalf("lookup-unavailable card shows the wrong notes")
	}
	browsertest.Screenshot(t, ctx, "4-lookup-unavailable")

	// An unknown caller with a working lookup is a new caller; in Russian too.
	e.hub.Publish(desk.Event{Type: desk.EventCallRinging, Operators: []string{"anna"}, Payload: desk.Pop{
		Call: &desk.Call{ID: "call-3", From: "+79160000003", Line: "Sales line", Operator: "anna", State: desk.CallRinging, Started: time.Now().UTC()}}})
	browsertest.WaitFor(t, ctx, "the new caller", `!document.getElementById('new-caller').hidden && document.getElementById('caller-number').textContent === '+7 916 000-00-03'`)
	if got := browsertest.Text(t, ctx, "new-caller"); got != "New caller" {
		t.Fatalf("new caller label %q", got)
	}
	browsertest.Step(t, ctx, "switch to Russian", chromedp.SetValue(chromedp.ID("lang"), "ru"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('lang').dispatchEvent(new Event('change'))`))
	if got := browsertest.Text(t, ctx, "new-caller"); got != "Новый клиент" {
		t.Fatalf("new caller label in Russian %q", got)
	}
	browsertest.Screenshot(t, ctx, "5-new-caller-ru")
}

// TestSupervisorPage: the supervisor sees operators' presence and live calls from
// the snapshot and the frames.
func TestSupervisorPage(t *testing.T) {
	ctx := browsertest.Start(t)
	e := newEnv(t)
	e.user("anna", desk.RoleOperator)
	e.user("sveta", desk.RoleSupervisor)
	browsertest.Step(t, ctx, "open and log in", chromedp.Navigate(e.srv.URL+"/supervisor.html"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-form input[name=login]"), "sveta"),
		chromedp.SendKeys(chromedp.CSS("#login-form input[name=password]"), password),
		chromedp.Click(chromedp.CSS("#login-form button")))
	browsertest.WaitFor(t, ctx, "the operator row", `document.querySelector('#operators tr[data-login="anna"]') !== null`)
	e.hub.Publish(desk.Event{Type: desk.EventCallRinging, Operators: []string{"anna"}, Payload: desk.Pop{
		Call: &desk.Call{ID: "sup-call", From: "+79160000001", FromDisplay: "<img src=x>", Line: "Sales line", Operator: "anna",
			State: desk.CallRinging, Started: time.Now().UTC()}}})
	browsertest.WaitFor(t, ctx, "the call row", `document.querySelector('#calls tr[data-id="sup-call"]') !== null`)
	got := browsertest.Eval[string](t, ctx, `document.querySelector('#calls tr[data-id="sup-call"]').textContent`)
	if !strings.Contains(got, "+7 916 000-00-01") || !strings.Contains(got, "<img src=x>") || !strings.Contains(got, "Name of anna") {
		t.Fatalf("call row %q", got)
	}
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('img').length`); n != 0 {
		t.Fatalf("caller text became markup")
	}
	browsertest.Screenshot(t, ctx, "6-supervisor")
}
