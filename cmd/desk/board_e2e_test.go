package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
)

// TestSupervisorSeesThreeLiveCalls is the supervisor's desk through the real call
// path: three operators on sipp phones take three calls at once; as each types, the
// supervisor's websocket gets script.progress with the step and fields; a whisper
// reaches one operator and his acknowledgement comes back; and the calls report
// counts exactly the calls that were made.
func TestSupervisorSeesThreeLiveCalls(t *testing.T) {
	d, admin, _ := startDeskAsAdmin(t, nil)
	admin.mustDo("POST", "/api/users", map[string]string{"login": "sveta", "name": "Sveta",
		"role": "supervisor", "password": "Sv3ta-pass"}, nil)
	sup := newWebClient(t, d.Base)
	sup.login("sveta", "Sv3ta-pass")
	board := sup.openWS()
	board.wait(t, "snapshot", 5*time.Second)

	s := newSipp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	logins := []string{"op1", "op2", "op3"}
	ops := map[string]*webClient{}
	pages := map[string]*wsPage{}
	phones := map[string]string{}
	for _, l := range logins {
		admin.mustDo("POST", "/api/users", map[string]string{"login": l, "name": "Operator " + l,
			"role": "operator", "password": l + "-web-pass", "sip_password": l + "-sip"}, nil)
		ops[l] = newWebClient(t, d.Base)
		ops[l].login(l, l+"-web-pass")
		pages[l] = ops[l].openWS()
		pages[l].wait(t, "snapshot", 5*time.Second)
		phones[l] = strconv.Itoa(freePort(t))
		s.register(ctx, d, l, l+"-sip", phones[l], "u1", "600")
	}

	// Three phones answer at once; three callers hold for 4 s.
	done := make(chan error, 6)
	for _, l := range logins {
		uas := s.command(ctx, "-sf", mustAbs(t, "testdata/sipp/uas.xml"), "-p", phones[l], "-m", "1", "-d", "200")
		if err := uas.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- uas.Wait() }()
	}
	time.Sleep(300 * time.Millisecond)
	for i := range logins {
		go func() {
			out := &syncBuffer{}
			err := run(ctx, []string{"call", "--server", d.SIPAddr, "--from", fmt.Sprintf("+7916000003%d", i), "--to", "sales",
				"--hold", "4s"}, func(string) string { return "" }, out)
			if err != nil {
				err = fmt.Errorf("%w\n%s", err, out.String())
			}
			done <- err
		}()
	}

	// Each operator captures a name while talking; the supervisor sees it live.
	for _, l := range logins {
		ans := pages[l].wait(t, desk.EventCallAnswered, 10*time.Second)
		var u desk.CallUpdate
		json.Unmarshal(ans.Raw, &u)
		ops[l].mustDo("PUT", "/api/calls/"+u.Call.ID+"/answers", map[string]any{"op": "name-" + l, "step": "contact",
			"fields": map[string]string{"name": "Caller of " + l}}, nil)
	}
	deadline := time.Now().Add(5 * time.Second)
	for seen := map[string]bool{}; len(seen) < 3; {
		for _, f := range board.all() {
			if f.Type != desk.EventScriptProgress {
				continue
			}
			var p desk.Progress
			if json.Unmarshal(f.Raw, &p) == nil && p.Record != nil && p.Record.Step == "contact" &&
				p.Record.Answers["contact.name"] == "Caller of "+p.Operator {
				seen[p.Operator] = true
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the supervisor saw the live answers of %v only; frames %s", seen, board.types())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A whisper to op2 during his call, acknowledged.
	var w desk.Whisper
	sup.mustDo("POST", "/api/operators/op2/whisper", map[string]string{"text": "Offer the spring discount"}, &w)
	got := pages["op2"].wait(t, desk.EventWhisper, 5*time.Second)
	if str(jsonGet(got.Raw, "whisper", "text")) != "Offer the spring discount" || str(jsonGet(got.Raw, "whisper", "call_id")) == "" {
		t.Errorf("whisper frame %s: want the text and the call it was sent during", got.Raw)
	}
	ops["op2"].mustDo("POST", "/api/whispers/"+w.ID+"/ack", nil, nil)
	ack := board.wait(t, desk.EventWhisperAck, 5*time.Second)
	if str(jsonGet(ack.Raw, "whisper", "acked_at")) == "" {
		t.Errorf("whisper.ack without acked_at: %s", ack.Raw)
	}
	for range 6 {
		if err := <-done; err != nil {
			t.Fatalf("a call or phone failed: %v", err)
		}
	}

	// The calls report counts the three answered calls of today.
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var rep desk.Report
	sup.mustDo("GET", "/api/reports/calls?from="+from+"&to="+to, nil, &rep)
	var calls, answered float64
	for _, tb := range rep.Tables {
		if tb.Name != "per_day" {
			continue
		}
		for _, row := range tb.Rows {
			calls += row[1].(float64)
			answered += row[2].(float64)
		}
	}
	if calls != 3 || answered != 3 {
		t.Errorf("calls report: %v calls, %v answered, want 3 and 3: %+v", calls, answered, rep.Tables)
	}
}
