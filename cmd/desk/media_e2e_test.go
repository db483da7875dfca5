package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/browsertest"
	"github.com/calldesk/desk/sip/b2bua"
	"github.com/calldesk/desk/sip/b2bua/b2buatest"
)

// waitFrame returns the first frame of type typ for which match holds, up to d.
func (p *wsPage) waitFrame(t *testing.T, typ string, d time.Duration, match func(json.RawMessage) bool) frame {
	t.Helper()
	deadline := time.After(d)
	for {
		for _, f := range p.all() {
			if f.Type == typ && match(f.Raw) {
				return f
			}
		}
		select {
		case <-p.more:
		case <-deadline:
			t.Fatalf("no matching %s frame within %v; got %s", typ, d, p.types())
		}
	}
}

// TestMediaModeEndToEnd runs the desk with a recorded media-mode line and a test trunk,
// with real diago phones that register with digest and send tones: the caller 440 Hz,
// the operator 1000 Hz, the supervisor 2000 Hz, the customer of a callback 440 Hz.
//
//   - The caller's card pops on the operator's page before the caller is answered, and
//     the call is marked media.
//   - The supervisor presses whisper on the board: his phone rings, and the operator
//     hears him while the caller does not; barge switches the same leg, and the caller
//     hears him too. The operator's page shows who is on his call; operators may not
//     monitor. The audit log keeps every change.
//   - The caller hangs up: every leg ends, and the supervisor plays the stereo
//     recording (caller left, operator right); the operator may not.
//   - A missed call leaves a callback promise. "Call back" while the customer is
//     busy: the operator hears the busy tone, the call ends as unreached with no
//     wrap-up owed, and the promise stays open. "Call back" again rings the
//     operator's phone with the customer's card, dials the customer through the
//     trunk (the operator hears ringback meanwhile) and keeps the promise when he
//     answers.
func TestMediaModeEndToEnd(t *testing.T) {
	customer := b2buatest.NewPeer(t, "customer", b2buatest.ToneCaller)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "desk.yaml")
	yaml := fmt.Sprintf(`lines:
  - {number: media, name: Media sales, script: default, media: true, record: true, retention: 24h}
media:
  trunk: {uri: "sip:%s"}
  recordings: {dir: %s}
`, customer.Addr, filepath.Join(dir, "recordings"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d, admin, _ := startDeskAsAdmin(t, map[string]string{"DESK_CONFIG": cfg})
	admin.mustDo("POST", "/api/users", map[string]string{"login": "ivan", "name": "Ivan Petrov",
		"role": "operator", "password": "Iv4n-web-pass", "sip_password": "ivan-sip-secret"}, nil)
	admin.mustDo("POST", "/api/users", map[string]string{"login": "sveta", "name": "Svetlana Orlova",
		"role": "supervisor", "password": "Sv3ta-web-pass", "sip_password": "sveta-sip-secret"}, nil)
	admin.mustDo("POST", "/api/contacts", map[string]any{"name": "Anna Smirnova", "company": "Romashka LLC",
		"phones": []string{"+79160000001"}, "manager": "ivan"}, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	op := newWebClient(t, d.Base)
	op.login("ivan", "Iv4n-web-pass")
	opPage := op.openWS()
	opPage.wait(t, "snapshot", 5*time.Second)
	sup := newWebClient(t, d.Base)
	sup.login("sveta", "Sv3ta-web-pass")
	supPage := sup.openWS()
	supPage.wait(t, "snapshot", 5*time.Second)

	board := openPage(t, d.Base+"/supervisor.html", "sveta", "Sv3ta-web-pass")
	browsertest.WaitFor(t, board, "the board", `document.getElementById('calls') !== null`)

	ivanPhone := b2buatest.NewPeer(t, "ivan", b2buatest.ToneOperator)
	ivanPhone.RingFor.Store(int64(500 * time.Millisecond)) // the card must pop while it rings
	if err := ivanPhone.Register(ctx, d.SIPAddr, "ivan", "ivan-sip-secret"); err != nil {
		t.Fatalf("operator's phone REGISTER: %v", err)
	}
	svetaPhone := b2buatest.NewPeer(t, "sveta", b2buatest.ToneSupervisor)
	if err := svetaPhone.Register(ctx, d.SIPAddr, "sveta", "sveta-sip-secret"); err != nil {
		t.Fatalf("supervisor's phone REGISTER: %v", err)
	}
	caller := b2buatest.NewPeer(t, "+79160000001", b2buatest.ToneCaller)

	// The call: the card pops before the caller is answered.
	cd, callerAudio, err := caller.Call(ctx, "sip:media@"+d.SIPAddr)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	answeredAt := time.Now()
	ivanCall := ivanPhone.WaitAnswered(t)
	sipID := ivanCall.Req.CallID().Value()
	ringing := opPage.waitFrame(t, "call.ringing", 5*time.Second, func(json.RawMessage) bool { return true })
	if !ringing.At.Before(answeredAt) {
		t.Errorf("the pop came %v after the caller was answered", ringing.At.Sub(answeredAt))
	}
	callID := str(jsonGet(ringing.Raw, "call", "id"))
	if got := str(jsonGet(ringing.Raw, "call", "sip_call_id")); got != sipID {
		t.Fatalf("pop for sip call %q, the operator's phone rang %q", got, sipID)
	}
	if jsonGet(ringing.Raw, "call", "media") != true || str(jsonGet(ringing.Raw, "contact", "name")) != "Anna Smirnova" {
		t.Fatalf("pop: %s", ringing.Raw)
	}
	b2buatest.ExpectHears(t, "caller", callerAudio, map[float64]bool{b2buatest.ToneOperator: true, b2buatest.ToneCaller: false})
	b2buatest.ExpectHears(t, "operator", ivanCall.Audio, map[float64]bool{b2buatest.ToneCaller: true, b2buatest.ToneOperator: false})

	// Operators do not monitor.
	if code := op.do("POST", "/api/calls/"+callID+"/monitor", map[string]string{"mode": "listen"}, nil); code != 403 {
		t.Fatalf("an operator asked to monitor: HTTP %d", code)
	}
	// The supervisor presses Whisper on the live board.
	row := `#calls tr[data-id="` + callID + `"]`
	browsertest.WaitFor(t, board, "the call's monitor buttons", `document.querySelector('`+row+` button.mon-whisper') !== null`)
	browsertest.Step(t, board, "whisper", chromedp.Click(chromedp.CSS(row+` button.mon-whisper`)))
	svetaCall := svetaPhone.WaitAnswered(t)
	joined := func(raw json.RawMessage) bool { return str(jsonGet(raw, "monitor", "state")) == desk.MonitorJoined }
	banner := opPage.waitFrame(t, "call.monitor", 10*time.Second, joined)
	if str(jsonGet(banner.Raw, "monitor", "supervisor_name")) != "Svetlana Orlova" || str(jsonGet(banner.Raw, "monitor", "mode")) != "whisper" {
		t.Fatalf("the operator's page was told %s", banner.Raw)
	}
	supPage.waitFrame(t, "call.monitor", 5*time.Second, joined)
	b2buatest.ExpectHears(t, "supervisor", svetaCall.Audio, map[float64]bool{b2buatest.ToneCaller: true, b2buatest.ToneOperator: true})
	b2buatest.ExpectHears(t, "operator (whisper)", ivanCall.Audio, map[float64]bool{b2buatest.ToneCaller: true, b2buatest.ToneSupervisor: true})
	b2buatest.ExpectHears(t, "caller (whisper)", callerAudio, map[float64]bool{b2buatest.ToneOperator: true, b2buatest.ToneSupervisor: false})

	sup.mustDo("POST", "/api/calls/"+callID+"/monitor", map[string]string{"mode": "barge"}, nil)
	b2buatest.ExpectHears(t, "caller (barge)", callerAudio, map[float64]bool{b2buatest.ToneOperator: true, b2buatest.ToneSupervisor: true})
	select {
	case <-svetaPhone.Answered:
		t.Fatal("the supervisor's phone was rung again to switch mode")
	default:
	}

	// The caller hangs up: every leg ends.
	if err := cd.Hangup(ctx); err != nil {
		t.Fatalf("caller BYE: %v", err)
	}
	opPage.waitFrame(t, "call.ended", 5*time.Second, func(json.RawMessage) bool { return true })
	for name, c := range map[string]context.Context{"operator": ivanCall.D.Context(), "supervisor": svetaCall.D.Context()} {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("the %s's leg is still up after the caller hung up", name)
		}
	}
	opPage.waitFrame(t, "call.monitor", 5*time.Second, func(raw json.RawMessage) bool {
		return str(jsonGet(raw, "monitor", "state")) == desk.MonitorLeft
	})

	// The recording plays on the board: Recent calls, ▶.
	rrow := `document.querySelector('#recent tr[data-id="` + callID + `"]')`
	browsertest.WaitFor(t, board, "the ended call in Recent calls", rrow+` !== null && `+rrow+`.querySelector('button.play') !== null`)
	browsertest.Step(t, board, "play", chromedp.Click(chromedp.CSS(`#recent tr[data-id="`+callID+`"] button.play`)))
	browsertest.WaitFor(t, board, "the player loaded the WAV", rrow+`.querySelector('audio') !== null && `+rrow+`.querySelector('audio').duration > 2`)
	if csp := browsertest.Eval[[]string](t, board, `window.__csp`); len(csp) != 0 {
		t.Errorf("CSP violations on the board: %v", csp)
	}
	shot(t, board, "media-board")

	// The recording: for the supervisor, not for the operator.
	if code, _, _ := op.send("GET", "/api/calls/"+callID+"/recording", nil); code != 403 {
		t.Fatalf("operator fetched the recording: HTTP %d", code)
	}
	var wav []byte
	if err := b2buatest.Eventually(5*time.Second, func() bool {
		code, body, _ := sup.send("GET", "/api/calls/"+callID+"/recording", nil)
		wav = body
		return code == 200
	}); err != nil {
		t.Fatalf("recording not served: %s", wav)
	}
	b2buatest.CheckStereoWAV(t, wav, b2buatest.ToneCaller, b2buatest.ToneOperator)

	var audit []desk.AuditEntry
	admin.mustDo("GET", "/api/audit", nil, &audit)
	var actions []string
	for _, e := range audit {
		if e.Target == callID {
			actions = append(actions, e.Action)
		}
	}
	for _, want := range []string{"monitor.request", "monitor.joined", "monitor.switched", "monitor.left"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("audit of the call has %v, want %s", actions, want)
		}
	}

	// Ivan owes the wrap-up; his supervisor closes it so he can take the next calls.
	sup.mustDo("POST", "/api/calls/"+callID+"/wrapup/force", map[string]string{"reason": "test"}, nil)

	// A missed call: Ivan's phone is busy. It leaves a callback promise for him.
	ivanPhone.Reject.Store(486)
	if _, _, err := caller.Call(ctx, "sip:media@"+d.SIPAddr); err == nil {
		t.Fatal("the call was answered while the only operator was busy")
	}
	ivanPhone.Reject.Store(0)
	var promise desk.Promise
	if err := b2buatest.Eventually(10*time.Second, func() bool {
		var ps []desk.Promise
		op.do("GET", "/api/promises?state=open", nil, &ps)
		for _, p := range ps {
			if p.Kind == "callback" && p.Phone == "+79160000001" {
				promise = p
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal("no callback promise after the missed call")
	}

	// Call back while the customer is busy: Ivan hears the busy tone, his page is told
	// why the call ended, he owes no wrap-up, and the promise stays open.
	var started struct {
		SIPCallID string `json:"sip_call_id"`
	}
	customer.Reject.Store(486)
	op.mustDo("POST", "/api/promises/"+promise.ID+"/callback", nil, &started)
	busyLeg := ivanPhone.WaitAnswered(t)
	if busyLeg.Audio == nil {
		t.Fatal("Ivan's answer of the first callback was not confirmed")
	}
	b2buatest.ExpectHears(t, "operator (busy customer)", busyLeg.Audio, map[float64]bool{b2bua.ToneHz: true})
	unreached := opPage.waitFrame(t, "call.ended", 10*time.Second, func(raw json.RawMessage) bool {
		return str(jsonGet(raw, "call", "sip_call_id")) == started.SIPCallID
	})
	if str(jsonGet(unreached.Raw, "call", "unreached")) != "486" || str(jsonGet(unreached.Raw, "call", "reason")) != "customer busy" {
		t.Fatalf("the busy callback ended with %s", unreached.Raw)
	}
	customer.Reject.Store(0)

	// Call back again, once the double-click guard lets him: that he may at all shows
	// he owes no wrap-up for the busy one. This time the customer's phone rings on,
	// and Ivan gives up while he hears the ringback: his BYE reaches the desk before
	// the bridge has cancelled the customer's leg, and the call still closes as
	// unreached.
	customer.RingFor.Store(int64(time.Minute))
	callBack := func(what string) {
		t.Helper()
		if err := b2buatest.Eventually(10*time.Second, func() bool {
			return op.do("POST", "/api/promises/"+promise.ID+"/callback", nil, &started)/100 == 2
		}); err != nil {
			t.Fatalf("the %s callback was refused", what)
		}
	}
	callBack("second")
	givenUp := ivanPhone.WaitAnswered(t)
	b2buatest.ExpectHears(t, "operator (customer ringing)", givenUp.Audio, map[float64]bool{b2bua.ToneHz: true})
	if err := givenUp.D.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	unreached = opPage.waitFrame(t, "call.ended", 10*time.Second, func(raw json.RawMessage) bool {
		return str(jsonGet(raw, "call", "sip_call_id")) == started.SIPCallID
	})
	if str(jsonGet(unreached.Raw, "call", "unreached")) != "487" || str(jsonGet(unreached.Raw, "call", "reason")) != "operator hung up before the customer answered" {
		t.Fatalf("the callback Ivan gave up on ended with %s", unreached.Raw)
	}
	customer.RingFor.Store(0)

	// The third time the customer answers. Ivan's phone rings with the card, then the
	// customer's through the trunk.
	callBack("third")
	back := ivanPhone.WaitAnswered(t)
	if back.Req.CallID().Value() != started.SIPCallID || back.Req.From().Address.User != "+79160000001" {
		t.Fatalf("operator's phone rang for %q from %q, callback %q", back.Req.CallID().Value(), back.Req.From().Address.User, started.SIPCallID)
	}
	pop := opPage.waitFrame(t, "call.ringing", 5*time.Second, func(raw json.RawMessage) bool {
		return str(jsonGet(raw, "call", "sip_call_id")) == started.SIPCallID
	})
	if str(jsonGet(pop.Raw, "call", "direction")) != "callback" || str(jsonGet(pop.Raw, "contact", "name")) != "Anna Smirnova" {
		t.Fatalf("callback pop: %s", pop.Raw)
	}
	cust := customer.WaitAnswered(t)
	if u := cust.Req.Recipient.User; u != "+79160000001" {
		t.Fatalf("the trunk was asked for %q", u)
	}
	b2buatest.ExpectHears(t, "operator (callback)", back.Audio, map[float64]bool{b2buatest.ToneCaller: true})
	b2buatest.ExpectHears(t, "customer", cust.Audio, map[float64]bool{b2buatest.ToneOperator: true})
	if err := b2buatest.Eventually(10*time.Second, func() bool {
		var ps []desk.Promise
		op.do("GET", "/api/promises?state=kept", nil, &ps)
		for _, p := range ps {
			if p.ID == promise.ID {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal("the promise was not kept when the customer answered")
	}
	if err := cust.D.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-back.D.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the operator's leg is still up after the customer hung up")
	}
}
