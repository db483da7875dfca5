package httpapi_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/calldesk/desk/desk"
)

// browser starts Debian's headless chromium for a page test. The CI installs it,
// so a missing browser fails the test; DESK_NO_BROWSER=1 skips it on purpose.
func browser(t *testing.T) context.Context {
	t.Helper()
	if os.Getenv("DESK_NO_BROWSER") == "1" {
		t.Skip("DESK_NO_BROWSER=1: page tests skipped")
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("page test needs chromium (apt-get install chromium), or set DESK_NO_BROWSER=1 to skip: %v", err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.Flag("window-size", "1100,900"),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser without a deadline
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[string](`document.getElementById(`+quoteJS(id)+`).textContent`))
	if err != nil {
		t.Fatalf("read #%s: %v", id, err)
	}
	return v
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	step(t, ctx, "wait for "+what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(10*time.Second)))
}

func quoteJS(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("DESK_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
}

// TestOperatorPage drives the operator page in a real browser: log in through the
// form, get a pop with hostile caller-supplied text, then talking and ended.
func TestOperatorPage(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t)
	e.user("anna", desk.RoleOperator)

	step(t, ctx, "open the page", chromedp.Navigate(e.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-form")))
	screenshot(t, ctx, "0-login")
	step(t, ctx, "log in",
		chromedp.SendKeys(chromedp.ID("login-login"), "anna"),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.ID("login-submit")))
	waitFor(t, ctx, "the feed", `document.getElementById('desk').dataset.synced === 'true' && document.getElementById('conn-state').dataset.state === 'connected'`)
	if got := text(t, ctx, "user-name"); got != "Name of anna" {
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
	waitFor(t, ctx, "the ringing card", `document.getElementById('card').dataset.state === 'ringing'`)
	screenshot(t, ctx, "1-ringing")
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
		if got := text(t, ctx, c.id); got != c.want {
			t.Errorf("#%s = %q, want %q", c.id, got, c.want)
		}
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('img, b, i, u').length`); n != 0 {
		t.Fatalf("caller text became markup: %d elements", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('script').length`); n != 1 {
		t.Fatalf("%d script elements, want only the page's own", n)
	}
	if got := eval[string](t, ctx, `[...document.querySelectorAll('#script-steps > li')].map(li => li.textContent).join(' | ')`); got != "GreetingSay hello <script>alert(3)</script> | ContactFull name <u> (required)E-mail" {
		t.Fatalf("script steps %q", got)
	}
	if eval[bool](t, ctx, `!document.getElementById('new-caller').hidden`) {
		t.Fatalf("a known caller is shown as new")
	}

	answered := time.Now().UTC().Add(-2 * time.Second)
	call.State, call.Answered = desk.CallAnswered, &answered
	e.hub.Publish(desk.Event{Type: desk.EventCallAnswered, Operators: []string{"anna"}, Payload: desk.CallUpdate{Call: call}})
	waitFor(t, ctx, "talking", `document.getElementById('card').dataset.state === 'talking'`)
	if got := text(t, ctx, "card-state"); got != "Talking" {
		t.Fatalf("card state %q", got)
	}
	first := text(t, ctx, "card-timer")
	if !regexp.MustCompile(`^\d\d:\d\d$`).MatchString(first) || first < "00:02" {
		t.Fatalf("timer %q, want mm:ss from the answer time", first)
	}
	waitFor(t, ctx, "the timer to run", `document.getElementById('card-timer').textContent !== `+quoteJS(first))
	screenshot(t, ctx, "2-talking")

	ended := time.Now().UTC()
	call.State, call.Ended = desk.CallEnded, &ended
	e.hub.Publish(desk.Event{Type: desk.EventCallEnded, Operators: []string{"anna"}, Payload: desk.CallUpdate{Call: call}})
	waitFor(t, ctx, "ended", `document.getElementById('card').dataset.state === 'ended'`)
	if got := text(t, ctx, "card-state"); got != "Ended" {
		t.Fatalf("card state %q", got)
	}
	screenshot(t, ctx, "3-ended")

	// An unknown caller while the lookup is down: formatted number, no "new caller"
	// claim, and the warning.
	unknown := &desk.Call{ID: "call-2", From: "+79160000002", To: "sales", Line: "Sales line", Operator: "anna",
		State: desk.CallRinging, Started: time.Now().UTC(), LookupFailed: true}
	e.hub.Publish(desk.Event{Type: desk.EventCallRinging, Operators: []string{"anna"}, Payload: desk.Pop{Call: unknown, Lookup: "unavailable"}})
	waitFor(t, ctx, "the second call", `document.getElementById('card').dataset.state === 'ringing'`)
	if got := text(t, ctx, "caller-name"); got != "+7 916 000-00-02" {
		t.Fatalf("unknown caller name %q", got)
	}
	if !eval[bool](t, ctx, `!document.getElementById('lookup-note').hidden && document.getElementById('new-caller').hidden`) {
		t.Fatalf("lookup-unavailable card shows the wrong notes")
	}
	screenshot(t, ctx, "4-lookup-unavailable")

	// An unknown caller with a working lookup is a new caller; in Russian too.
	e.hub.Publish(desk.Event{Type: desk.EventCallRinging, Operators: []string{"anna"}, Payload: desk.Pop{
		Call: &desk.Call{ID: "call-3", From: "+79160000003", Line: "Sales line", Operator: "anna", State: desk.CallRinging, Started: time.Now().UTC()}}})
	waitFor(t, ctx, "the new caller", `!document.getElementById('new-caller').hidden && document.getElementById('caller-number').textContent === '+7 916 000-00-03'`)
	if got := text(t, ctx, "new-caller"); got != "New caller" {
		t.Fatalf("new caller label %q", got)
	}
	step(t, ctx, "switch to Russian", chromedp.SetValue(chromedp.ID("lang"), "ru"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('lang').dispatchEvent(new Event('change'))`))
	if got := text(t, ctx, "new-caller"); got != "Новый клиент" {
		t.Fatalf("new caller label in Russian %q", got)
	}
	screenshot(t, ctx, "5-new-caller-ru")
}

// TestSupervisorPage: the supervisor sees operators' presence and live calls from
// the snapshot and the frames.
func TestSupervisorPage(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t)
	e.user("anna", desk.RoleOperator)
	e.user("sveta", desk.RoleSupervisor)
	step(t, ctx, "open and log in", chromedp.Navigate(e.srv.URL+"/supervisor.html"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-form input[name=login]"), "sveta"),
		chromedp.SendKeys(chromedp.CSS("#login-form input[name=password]"), password),
		chromedp.Click(chromedp.CSS("#login-form button")))
	waitFor(t, ctx, "the operator row", `document.querySelector('#operators tr[data-login="anna"]') !== null`)
	e.hub.Publish(desk.Event{Type: desk.EventCallRinging, Operators: []string{"anna"}, Payload: desk.Pop{
		Call: &desk.Call{ID: "sup-call", From: "+79160000001", FromDisplay: "<img src=x>", Line: "Sales line", Operator: "anna",
			State: desk.CallRinging, Started: time.Now().UTC()}}})
	waitFor(t, ctx, "the call row", `document.querySelector('#calls tr[data-id="sup-call"]') !== null`)
	got := eval[string](t, ctx, `document.querySelector('#calls tr[data-id="sup-call"]').textContent`)
	if !strings.Contains(got, "+7 916 000-00-01") || !strings.Contains(got, "<img src=x>") || !strings.Contains(got, "Name of anna") {
		t.Fatalf("call row %q", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('img').length`); n != 0 {
		t.Fatalf("caller text became markup")
	}
	screenshot(t, ctx, "6-supervisor")
}
