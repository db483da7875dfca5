package main

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/calldesk/desk/desk/browsertest"
)

// TestPagePopsRealCall is the whole product in one run, as an operator sees it: the
// desk with its defaults, the operator's page in headless Chromium, his phone (sipp)
// registered with digest, and a real SIP call from `desk call`. While the phone rings
// the page shows the known caller's card and the line's script; then talking with a
// timer; then ended.
func TestPagePopsRealCall(t *testing.T) {
	ctx := browsertest.Start(t)
	d := startDesk(t, map[string]string{"DESK_SCRIPTS": "no-such-dir"})

	browsertest.Step(t, ctx, "open the desk", chromedp.Navigate(d.Base+"/"), chromedp.WaitVisible(chromedp.ID("login-form")))
	browsertest.Step(t, ctx, "log in",
		chromedp.SendKeys(chromedp.ID("login-login"), "maria"),
		chromedp.SendKeys(chromedp.ID("login-password"), "maria-demo"),
		chromedp.Click(chromedp.ID("login-submit")))
	browsertest.WaitFor(t, ctx, "the live feed", `document.getElementById('conn-state').dataset.state === 'connected'`)

	s := newSipp(t)
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	phonePort := strconv.Itoa(freePort(t))
	s.register(sctx, d, "maria", "maria-sip", phonePort, "u1", "600")
	browsertest.WaitFor(t, ctx, "the phone shown registered", `document.getElementById('phone-state').dataset.state === 'on'`)

	// The phone rings for 2 s: long enough to look at the card before the answer.
	uas := s.command(sctx, "-sf", mustAbs(t, filepath.Join("testdata", "sipp", "uas.xml")), "-p", phonePort, "-m", "1", "-d", "2000")
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	callErr := make(chan error, 1)
	go func() {
		callErr <- run(sctx, []string{"call", "--server", d.SIPAddr, "--from", "+79161234567", "--to", "sales", "--hold", "1500ms"},
			func(string) string { return "" }, &syncBuffer{})
	}()

	browsertest.WaitFor(t, ctx, "the ringing card", `document.getElementById('card').dataset.state === 'ringing'`)
	browsertest.Screenshot(t, ctx, "real-call-ringing")
	if got := browsertest.Text(t, ctx, "caller-name"); got != demoContact.Name {
		t.Errorf("ringing card shows %q, want %q", got, demoContact.Name)
	}
	if got := browsertest.Text(t, ctx, "caller-company"); got != demoContact.Company {
		t.Errorf("ringing card company %q, want %q", got, demoContact.Company)
	}
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('#script-steps > li').length`); n < 5 {
		t.Errorf("the script shows %d steps while ringing, want the whole sales script", n)
	}

	if browsertest.Eval[bool](t, ctx, `document.getElementById('script-steps').textContent.includes('{{')`) {
		t.Errorf("the script shows raw {{placeholders}}")
	}
	if script := browsertest.Text(t, ctx, "script-steps"); !strings.Contains(script, "Мария Иванова") || !strings.Contains(script, demoContact.Name) {
		t.Errorf("the script does not name the operator and the caller: %.200s", script)
	}

	browsertest.WaitFor(t, ctx, "talking", `document.getElementById('card').dataset.state === 'talking'`)
	time.Sleep(1100 * time.Millisecond)
	if timer := browsertest.Text(t, ctx, "card-timer"); timer == "" || timer == "00:00" {
		t.Errorf("talk timer shows %q after a second of talk", timer)
	}
	browsertest.Screenshot(t, ctx, "real-call-talking")
	browsertest.WaitFor(t, ctx, "ended", `document.getElementById('card').dataset.state === 'ended'`)
	if err := <-callErr; err != nil {
		t.Errorf("desk call: %v", err)
	}
	uas.Wait()
}
