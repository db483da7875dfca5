package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
)

// TestDemoDeskCall is what a newcomer does: start the desk with no configuration
// (embedded Redis, demo users), register the demo operator's phone, and place a call
// with `desk call`. The demo operator's page pops the demo contact's card, and
// `desk call` prints the SIP timeline.
func TestDemoDeskCall(t *testing.T) {
	d := startDesk(t, map[string]string{"DESK_SCRIPTS": "no-such-dir"}) // built-in scripts
	banner := d.Out.String()
	for _, want := range []string{"login maria", "login sveta", "login admin", "call --server"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}

	op := newWebClient(t, d.Base)
	op.login("maria", "maria-demo")
	page := op.openWS()
	page.wait(t, "snapshot", 5*time.Second)

	s := newSipp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	phonePort := strconv.Itoa(freePort(t))
	s.register(ctx, d, "maria", "maria-sip", phonePort, "u1", "600")
	uas := s.command(ctx, "-sf", mustAbs(t, filepath.Join("testdata", "sipp", "uas.xml")), "-p", phonePort, "-m", "1", "-d", "300")
	uasOut := &syncBuffer{}
	uas.Stdout, uas.Stderr = uasOut, uasOut
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)

	out := &syncBuffer{}
	err := run(ctx, []string{"call", "--server", d.SIPAddr, "--from", "+79161234567", "--to", "sales", "--hold", "300ms"},
		func(string) string { return "" }, out)
	if err != nil {
		t.Fatalf("desk call: %v\n%s\nphone:\n%s", err, out.String(), uasOut.String())
	}
	if err := uas.Wait(); err != nil {
		t.Fatalf("phone: %v\n%s", err, uasOut.String())
	}
	timeline := out.String()
	for _, step := range []string{"INVITE", "180", "200", "ACK", "BYE"} {
		if !strings.Contains(timeline, step) {
			t.Errorf("desk call output lacks %s:\n%s", step, timeline)
		}
	}
	t.Logf("desk call printed:\n%s", timeline)

	ringing := page.wait(t, desk.EventCallRinging, 5*time.Second)
	var pop desk.Pop
	json.Unmarshal(ringing.Raw, &pop)
	if pop.Contact == nil || pop.Contact.Name != demoContact.Name || pop.Call == nil || pop.Call.From != "+79161234567" {
		t.Errorf("demo pop = %s", ringing.Raw)
	}
	page.wait(t, desk.EventCallEnded, 5*time.Second)
}
