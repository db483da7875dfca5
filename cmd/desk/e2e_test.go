package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
)

// TestSippCallPopsBeforeAnswer is the call path end to end with real peers: sipp
// registers as the operator's phone with digest and answers as it, another sipp calls
// the sales line from a known contact's number, and the operator's websocket must get
// call.ringing with the contact and the script before the caller gets 200 OK, then
// call.answered and call.ended. The call must be stored with its timeline.
func TestSippCallPopsBeforeAnswer(t *testing.T) {
	for _, tc := range []struct {
		transport string // sipp -t
		trace     string // how sipp's message trace names the transport
	}{
		{"u1", "UDP"},
		{"t1", "TCP"},
	} {
		t.Run(tc.trace, func(t *testing.T) {
			d, admin, rs := startDeskAsAdmin(t, nil)
			admin.mustDo("POST", "/api/users", map[string]string{"login": "ivan", "name": "Ivan Petrov",
				"role": "operator", "password": "Iv4n-web-pass", "sip_password": "ivan-sip-secret"}, nil)
			var contact desk.Contact
			admin.mustDo("POST", "/api/contacts", map[string]any{"name": "Anna Smirnova", "company": "Romashka LLC",
				"phones": []string{"8 (916) 000-00-01"}, "manager": "ivan"}, &contact)
			if contact.ID == "" {
				t.Fatalf("contact created without an id: %+v", contact)
			}

			op := newWebClient(t, d.Base)
			op.login("ivan", "Iv4n-web-pass")
			page := op.openWS()
			page.wait(t, "snapshot", 5*time.Second)

			s := newSipp(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			phonePort := strconv.Itoa(freePort(t))
			s.register(ctx, d, "ivan", "ivan-sip-secret", phonePort, tc.transport, "600")
			page.wait(t, "presence", 5*time.Second) // the page learns the phone is registered

			// The phone rings for 800 ms before it answers; the caller holds 500 ms.
			uas := s.command(ctx, "-sf", filepath.Join("testdata", "sipp", "uas.xml"), "-t", tc.transport,
				"-p", phonePort, "-m", "1", "-d", "800")
			uas.Dir = "."
			uasOut := &syncBuffer{}
			uas.Stdout, uas.Stderr = uasOut, uasOut
			if err := uas.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond) // let the phone bind its port
			callers := s.file("callers.csv", "SEQUENTIAL\n+79160000001;Anna S;\n")
			trace := filepath.Join(s.dir, "uac_msgs.log")
			uac := s.command(ctx, "-sf", filepath.Join(mustAbs(t, "testdata/sipp/uac.xml")), "-inf", callers,
				d.SIPAddr, "-t", tc.transport, "-s", "sales", "-p", strconv.Itoa(freePort(t)), "-m", "1", "-d", "500",
				"-trace_msg", "-message_file", trace)
			if out, err := uac.CombinedOutput(); err != nil {
				t.Fatalf("the sipp call through the desk failed: %v\n%s\nphone:\n%s\ndesk:\n%s", err, out, uasOut.String(), d.Out.String())
			}
			if err := uas.Wait(); err != nil {
				t.Fatalf("the phone's sipp failed: %v\n%s", err, uasOut.String())
			}

			ringing := page.wait(t, desk.EventCallRinging, 5*time.Second)
			page.wait(t, desk.EventCallAnswered, 5*time.Second)
			ended := page.wait(t, desk.EventCallEnded, 5*time.Second)

			var pop struct {
				Seq     *int64        `json:"seq"`
				Call    desk.Call     `json:"call"`
				Contact *desk.Contact `json:"contact"`
				Script  *desk.Script  `json:"script"`
			}
			if err := json.Unmarshal(ringing.Raw, &pop); err != nil {
				t.Fatal(err)
			}
			for field, got := range map[string]string{"from": pop.Call.From, "operator": pop.Call.Operator,
				"line": pop.Call.Line, "state": string(pop.Call.State)} {
				want := map[string]string{"from": "+79160000001", "operator": "ivan", "line": "sales", "state": "ringing"}[field]
				if got != want {
					t.Errorf("call.ringing call.%s = %q, want %q", field, got, want)
				}
			}
			if pop.Call.ID == "" || pop.Call.SIPCallID == "" || pop.Call.To == "" {
				t.Errorf("call.ringing lacks id, sip_call_id or to: %s", ringing.Raw)
			}
			if pop.Contact == nil || pop.Contact.Name != "Anna Smirnova" || pop.Contact.ID != contact.ID {
				t.Errorf("pop contact = %+v, want Anna Smirnova %s", pop.Contact, contact.ID)
			}
			if pop.Script == nil || pop.Script.ID == "" || len(pop.Script.Steps) == 0 {
				t.Errorf("pop has no script steps: %s", ringing.Raw)
			}

			// One clock: sipp's trace and the page's receive times are both this host's.
			invite := traceTime(t, trace, tc.trace, "sent", "INVITE ")
			ok200 := traceTime(t, trace, tc.trace, "received", "SIP/2.0 200 OK")
			lead := ok200.Sub(ringing.At)
			if lead <= 0 {
				t.Errorf("call.ringing reached the page %v AFTER the caller got 200 OK", -lead)
			}
			// sipp stamps a message when it logs it, after the write; over TCP that can be
			// later than the desk's pop, so the first figure is a bound, not a latency
			// measurement (issue 6 measures pop latency under load).
			t.Logf("pop (%s): sipp logged the INVITE %v before call.ringing reached the page; the page had the card %v before the caller's 200 OK (phone rang 800 ms)",
				tc.trace, ringing.At.Sub(invite).Round(10*time.Microsecond), lead.Round(time.Millisecond))

			// Every frame has a seq, increasing by one on the operator's channel.
			var last int64 = -1
			for _, f := range page.all() {
				var h struct {
					Seq *int64 `json:"seq"`
				}
				json.Unmarshal(f.Raw, &h)
				if h.Seq == nil {
					t.Errorf("frame without seq: %s", f.Raw)
					continue
				}
				if f.Type != "snapshot" && last >= 0 && *h.Seq != last+1 {
					t.Errorf("frame %s has seq %d after %d", f.Type, *h.Seq, last)
				}
				last = *h.Seq
			}

			// The call is stored with its timeline.
			var end struct {
				Call desk.Call `json:"call"`
			}
			json.Unmarshal(ended.Raw, &end)
			rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
			defer rdb.Close()
			store := redisstore.New(rdb, redisstore.WithPrefix(keyPrefix))
			var stored *desk.Call
			for i := 0; i < 50; i++ {
				c, err := store.Call(ctx, pop.Call.ID)
				if err == nil && c.State == desk.CallEnded {
					stored = c
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if stored == nil {
				t.Fatalf("call %s not stored as ended", pop.Call.ID)
			}
			if stored.Answered == nil || stored.Ended == nil || !stored.Ended.After(*stored.Answered) {
				t.Errorf("stored timeline incomplete: answered %v ended %v", stored.Answered, stored.Ended)
			}
			if stored.ContactID != contact.ID || end.Call.State != desk.CallEnded {
				t.Errorf("stored call %+v, ended frame state %q", stored, end.Call.State)
			}
		})
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
