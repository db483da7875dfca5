package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
)

// TestSalesRecordAcrossTwoCalls is the sales record end to end, through real SIP and
// the public API: an unknown caller rings, the operator captures answers while they
// talk (a replayed op changes nothing, a bad e-mail is refused), the wrap-up is
// refused with what is missing and then accepted, a call arriving while the operator
// still owes the wrap-up is missed and becomes a callback promise, and the next call
// from the same number, written another way, pops the card with the history, the
// open promise and the note.
func TestSalesRecordAcrossTwoCalls(t *testing.T) {
	d, admin, _ := startDeskAsAdmin(t, nil)
	admin.mustDo("POST", "/api/users", map[string]string{"login": "ivan", "name": "Ivan Petrov",
		"role": "operator", "password": "Iv4n-web-pass", "sip_password": "ivan-sip"}, nil)
	op := newWebClient(t, d.Base)
	op.login("ivan", "Iv4n-web-pass")
	page := op.openWS()
	page.wait(t, "snapshot", 5*time.Second)

	s := newSipp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	phonePort := strconv.Itoa(freePort(t))
	s.register(ctx, d, "ivan", "ivan-sip", phonePort, "u1", "600")

	// placeCall rings the operator's sipp phone from number and talks for hold.
	placeCall := func(number string, hold time.Duration) <-chan error {
		uas := s.command(ctx, "-sf", mustAbs(t, "testdata/sipp/uas.xml"), "-p", phonePort, "-m", "1", "-d", "300")
		if err := uas.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		done := make(chan error, 1)
		go func() {
			out := &syncBuffer{}
			err := run(ctx, []string{"call", "--server", d.SIPAddr, "--from", number, "--to", "sales",
				"--hold", hold.String()}, func(string) string { return "" }, out)
			if werr := uas.Wait(); err == nil && werr != nil {
				err = fmt.Errorf("phone: %w", werr)
			}
			if err != nil {
				err = fmt.Errorf("%w\n%s", err, out.String())
			}
			done <- err
		}()
		return done
	}

	// Call 1: an unknown caller.
	call1 := placeCall("+79160000009", 2*time.Second)
	ring1 := page.wait(t, desk.EventCallRinging, 5*time.Second)
	var pop1 desk.Pop
	json.Unmarshal(ring1.Raw, &pop1)
	if pop1.Contact != nil || pop1.Call == nil {
		t.Fatalf("first call pops a known contact: %s", ring1.Raw)
	}
	callID := pop1.Call.ID
	page.wait(t, desk.EventCallAnswered, 5*time.Second)

	answer := func(opID, step string, fields map[string]string) (int, json.RawMessage) {
		var body json.RawMessage
		code := op.do("PUT", "/api/calls/"+callID+"/answers", map[string]any{"op": opID, "step": step, "fields": fields}, &body)
		return code, body
	}
	code, rec := answer("op-1", "contact", map[string]string{"name": "Boris Orlov", "company": "Vector LLC"})
	if code != 200 || str(jsonGet(rec, "answers", "contact.name")) != "Boris Orlov" {
		t.Fatalf("answers: HTTP %d %s", code, rec)
	}
	ops := jsonGet(rec, "ops")
	if code, again := answer("op-1", "contact", map[string]string{"name": "Boris Orlov", "company": "Vector LLC"}); code != 200 || fmt.Sprint(jsonGet(again, "ops")) != fmt.Sprint(ops) {
		t.Errorf("a replayed op changed the record: HTTP %d ops %v -> %v", code, ops, jsonGet(again, "ops"))
	}
	if code, bad := answer("op-2", "company_details", map[string]string{"email": "not-an-email"}); code != 400 || str(jsonGet(bad, "field")) != "email" {
		t.Errorf("a bad e-mail: HTTP %d %s, want 400 naming the field", code, bad)
	}
	if code, body := answer("op-3", "promise", map[string]string{"what": "send the offer", "due": "+2h"}); code != 200 {
		t.Fatalf("promise answer: HTTP %d %s", code, body)
	}
	if err := <-call1; err != nil {
		t.Fatalf("call 1: %v", err)
	}
	page.wait(t, desk.EventCallEnded, 5*time.Second)

	// While he owes the wrap-up, the operator takes no call: the caller gets 480 and
	// the missed call becomes a callback promise.
	out := &syncBuffer{}
	if err := run(ctx, []string{"call", "--server", d.SIPAddr, "--from", "+79160000010", "--to", "sales", "--hold", "100ms"},
		func(string) string { return "" }, out); err == nil || !strings.Contains(out.String(), "480") {
		t.Errorf("a call during the wrap-up: err %v\n%s", err, out.String())
	}

	wrap := map[string]string{"outcome": "interest", "stage": "needs_identified", "note": "Wants three warehouses by spring"}
	var refused struct {
		Error   string   `json:"error"`
		Missing []string `json:"missing"`
	}
	if code := op.do("POST", "/api/calls/"+callID+"/wrapup", wrap, &refused); code != 422 || strings.Join(refused.Missing, ",") != "source" {
		t.Fatalf("wrap-up without a source: HTTP %d %+v, want 422 missing [source]", code, refused)
	}
	code, rec = answer("op-4", "source", map[string]string{"source": "exhibition"})
	if code != 200 || jsonGet(rec, "source_mismatch") != true {
		t.Errorf("source differing from the line's preset is not flagged: HTTP %d %s", code, rec)
	}
	var done desk.WrapupResult
	if code := op.do("POST", "/api/calls/"+callID+"/wrapup", wrap, &done); code != 200 {
		t.Fatalf("complete wrap-up: HTTP %d", code)
	}
	if done.Contact == nil || done.Contact.ID == "" || done.Promise == nil || done.Interest == nil || done.Interest.Stage != "needs_identified" {
		t.Fatalf("wrap-up result %+v", done)
	}
	if due := time.Until(done.Promise.Due); due < 110*time.Minute || due > 121*time.Minute {
		t.Errorf("promise '+2h' is due in %v", due)
	}
	var promises []*desk.Promise
	admin.mustDo("GET", "/api/promises?state=open", nil, &promises)
	var callback *desk.Promise
	for _, p := range promises {
		if p.Kind == "callback" && p.Phone == "+79160000010" {
			callback = p
		}
	}
	if callback == nil {
		t.Errorf("the call missed during the wrap-up did not become a callback promise: %+v", promises)
	}

	// Call 2: the same caller, his number written another way.
	call2 := placeCall("89160000009", 300*time.Millisecond)
	var pop2 desk.Pop
	deadline := time.Now().Add(5 * time.Second)
	for pop2.Call == nil || pop2.Call.ID == callID {
		for _, f := range page.all() {
			if f.Type == desk.EventCallRinging {
				json.Unmarshal(f.Raw, &pop2)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no second pop; frames %s", page.types())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pop2.Contact == nil || pop2.Contact.Name != "Boris Orlov" || pop2.Contact.ID != done.Contact.ID {
		t.Fatalf("second pop contact %+v", pop2.Contact)
	}
	card := pop2.Card
	if card == nil || len(card.Calls) != 1 || card.Calls[0].Outcome != "interest" || card.Calls[0].Operator != "ivan" {
		t.Fatalf("second pop card calls: %+v", card)
	}
	if card.Interest == nil || card.Interest.Stage != "needs_identified" {
		t.Errorf("card interest %+v", card.Interest)
	}
	if len(card.Promises) != 1 || card.Promises[0].What != "send the offer" {
		t.Errorf("card promises %+v", card.Promises)
	}
	if len(card.Notes) != 1 || card.Notes[0].Text != "Wants three warehouses by spring" {
		t.Errorf("card notes %+v", card.Notes)
	}
	if err := <-call2; err != nil {
		t.Fatalf("call 2: %v", err)
	}
}
