package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
)

// TestRingTimeoutHuntsThenMisses runs the routing rules through real SIP: the
// caller's personal manager is rung first; his phone rings past the ring timeout, so
// the desk cancels it and hunts to the other free operator, who answers. Then, with
// no phone registered anywhere, a call gets 480 and shows as missed.
func TestRingTimeoutHuntsThenMisses(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "desk.yaml")
	os.WriteFile(cfgFile, []byte("ring_timeout: 1s\n"), 0o644)
	d, admin, _ := startDeskAsAdmin(t, map[string]string{
		"DESK_CONFIG": cfgFile,
	})
	for _, login := range []string{"ivan", "petr"} {
		admin.mustDo("POST", "/api/users", map[string]string{"login": login, "name": strings.ToUpper(login[:1]) + login[1:],
			"role": "operator", "password": login + "-web-pass", "sip_password": login + "-sip"}, nil)
	}
	admin.mustDo("POST", "/api/contacts", map[string]any{"name": "Anna Smirnova", "company": "Romashka LLC",
		"phones": []string{"+7 916 000-00-02"}, "manager": "ivan"}, nil)
	sup := admin.openWS() // the admin sees every event, as a supervisor does
	sup.wait(t, "snapshot", 5*time.Second)

	pages := map[string]*wsPage{}
	for _, login := range []string{"ivan", "petr"} {
		c := newWebClient(t, d.Base)
		c.login(login, login+"-web-pass")
		pages[login] = c.openWS()
		pages[login].wait(t, "snapshot", 5*time.Second)
	}

	s := newSipp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	phones := map[string]string{}
	for _, login := range []string{"ivan", "petr"} {
		phones[login] = strconv.Itoa(freePort(t))
		s.register(ctx, d, login, login+"-sip", phones[login], "u1", "600")
	}
	ivanPhone := s.command(ctx, "-sf", mustAbs(t, "testdata/sipp/uas_noanswer.xml"), "-p", phones["ivan"], "-m", "1")
	petrPhone := s.command(ctx, "-sf", mustAbs(t, "testdata/sipp/uas.xml"), "-p", phones["petr"], "-m", "1", "-d", "200")
	ivanOut, petrOut := &syncBuffer{}, &syncBuffer{}
	ivanPhone.Stdout, ivanPhone.Stderr = ivanOut, ivanOut
	petrPhone.Stdout, petrPhone.Stderr = petrOut, petrOut
	for _, p := range []*exec.Cmd{ivanPhone, petrPhone} {
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)

	out := &syncBuffer{}
	start := time.Now()
	err := run(ctx, []string{"call", "--server", d.SIPAddr, "--from", "+79160000002", "--to", "sales", "--hold", "300ms"},
		func(string) string { return "" }, out)
	if err != nil {
		t.Fatalf("desk call: %v\n%s\n%s", err, out.String(), d.Out.String())
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("the call was answered after %v, before the 1 s ring timeout could hunt", took)
	}
	if err := ivanPhone.Wait(); err != nil {
		t.Errorf("the manager's phone was not cancelled cleanly: %v\n%s", err, ivanOut.String())
	}
	if err := petrPhone.Wait(); err != nil {
		t.Errorf("the second phone did not take the call: %v\n%s", err, petrOut.String())
	}

	// The manager's page popped first and was closed when the desk hunted on.
	ivanPop := pages["ivan"].wait(t, desk.EventCallRinging, 5*time.Second)
	if name := str(jsonGet(ivanPop.Raw, "contact", "name")); name != "Anna Smirnova" {
		t.Errorf("the manager's pop has contact %q", name)
	}
	pages["ivan"].wait(t, desk.EventCallMissed, 5*time.Second)
	petrPop := pages["petr"].wait(t, desk.EventCallRinging, 5*time.Second)
	if !petrPop.At.After(ivanPop.At.Add(900 * time.Millisecond)) {
		t.Errorf("petr popped %v after ivan, want after the 1 s ring timeout", petrPop.At.Sub(ivanPop.At))
	}
	pages["petr"].wait(t, desk.EventCallAnswered, 5*time.Second)
	ended := pages["petr"].wait(t, desk.EventCallEnded, 5*time.Second)
	var end desk.CallUpdate
	json.Unmarshal(ended.Raw, &end)
	if end.Call == nil || len(end.Call.Attempts) != 2 || end.Call.Attempts[0].Operator != "ivan" ||
		end.Call.Attempts[1].Operator != "petr" || end.Call.Operator != "petr" {
		t.Errorf("call attempts = %s", ended.Raw)
	}

	// Nobody left to ring: both phones unregister, and the next caller gets 480.
	for _, login := range []string{"ivan", "petr"} {
		s.register(ctx, d, login, login+"-sip", phones[login], "u1", "0")
	}
	out = &syncBuffer{}
	err = run(ctx, []string{"call", "--server", d.SIPAddr, "--from", "+79160000003", "--to", "sales", "--hold", "100ms"},
		func(string) string { return "" }, out)
	if err == nil || !strings.Contains(out.String(), "480") {
		t.Fatalf("a call with nobody registered: err %v, output:\n%s", err, out.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var missed *desk.Call
		for _, f := range sup.all() {
			var u desk.CallUpdate
			if f.Type == desk.EventCallMissed && json.Unmarshal(f.Raw, &u) == nil && u.Call != nil && u.Call.From == "+79160000003" {
				missed = u.Call
			}
		}
		if missed != nil {
			if missed.State != desk.CallMissed {
				t.Errorf("missed call state %q", missed.State)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the supervisor saw no call.missed for the unanswered caller; frames: %s", sup.types())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
