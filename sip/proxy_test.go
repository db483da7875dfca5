package sip

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
)

// deskWithOperators starts a server and registers one phone per operator, in order.
func deskWithOperators(t *testing.T, network string, ringTimeout time.Duration, ops ...[2]string) (*Server, *memHandler, []*phone) {
	t.Helper()
	h := newMemHandler()
	h.ringTimeout = ringTimeout
	s := startServer(t, h)
	var phones []*phone
	for _, op := range ops {
		login, mode := op[0], op[1]
		h.addOperator(login, "pw-"+login)
		p := newPhone(t, login, "", network, mode)
		if res := p.register(t, s.Addr(), 600, "pw-"+login); res.StatusCode != 200 {
			t.Fatalf("register %s: %d", login, res.StatusCode)
		}
		phones = append(phones, p)
	}
	return s, h, phones
}

func wantKinds(t *testing.T, evs []CallEvent, want ...string) {
	t.Helper()
	if got := kinds(evs); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestCallEndToEnd(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run("caller hangs up over "+network, func(t *testing.T) {
			s, h, phones := deskWithOperators(t, network, 0, [2]string{"anna", "answer"})
			var out bytes.Buffer
			tl, err := PlaceCall(context.Background(), CallOptions{
				Server: s.Addr(), From: "+79160000001", To: "sales", Hold: 200 * time.Millisecond,
				Transport: network, Domain: testDomain,
			}, &out)
			if err != nil {
				t.Fatalf("call: %v\n%s", err, out.String())
			}
			for _, step := range []string{"INVITE sent", "100 Trying", "180 Ringing", "200 OK", "ACK sent", "BYE sent", "BYE 200 OK"} {
				if !tl.Has(step) {
					t.Fatalf("timeline lacks %q:\n%s", step, out.String())
				}
			}
			if !strings.Contains(out.String(), " ms  200 OK") {
				t.Fatalf("timeline not printed with milliseconds:\n%s", out.String())
			}
			inv := recvOrFail(t, phones[0].invites, "INVITE at the phone")
			checkForwardedInvite(t, s, inv, network)
			recvOrFail(t, phones[0].acks, "ACK at the phone")
			bye := recvOrFail(t, phones[0].byes, "BYE at the phone")
			if bye.Route() != nil {
				t.Fatalf("our Route was not removed from the BYE: %v", bye.Route())
			}
			evs := h.waitEvents(t, 3)
			wantKinds(t, evs, "ringing:anna", "answered:anna", "ended:anna")
			if evs[2].By != "caller" {
				t.Fatalf("ended by %q, want caller", evs[2].By)
			}
			h.mu.Lock()
			routed := h.routes[0]
			h.mu.Unlock()
			if routed.Caller != "+79160000001" || routed.Dialled != "sales" || routed.CallerName != "desk call" {
				t.Fatalf("Invite given to Route: %+v", routed)
			}
			waitFor(t, func() bool { return s.Active() == 0 }, "no active calls")
		})
	}
}

func checkForwardedInvite(t *testing.T, s *Server, inv *sipmsg.Request, network string) {
	t.Helper()
	rr := inv.RecordRoute()
	if rr == nil || !s.isOurs(rr.Address) || !rr.Address.UriParams.Has("lr") {
		t.Fatalf("no Record-Route of ours: %v", rr)
	}
	if tp, _ := rr.Address.UriParams.Get("transport"); (network == "tcp") != (tp == "tcp") {
		t.Fatalf("Record-Route transport %q over %s", tp, network)
	}
	if mf := inv.MaxForwards(); mf == nil || mf.Val() != 69 {
		t.Fatalf("Max-Forwards %v, want 69", mf)
	}
	vias := inv.GetHeaders("Via")
	if len(vias) != 2 || !strings.Contains(vias[0].Value(), s.host) {
		t.Fatalf("Via stack %v", vias)
	}
	if inv.Recipient.User != "anna" && inv.Recipient.User != "boris" {
		t.Fatalf("R-URI not the contact: %s", inv.Recipient.String())
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCallOperatorHangsUp(t *testing.T) {
	s, h, phones := deskWithOperators(t, "udp", 0, [2]string{"anna", "answer"})
	byeDone := make(chan struct{})
	go func() {
		defer close(byeDone)
		sess := <-phones[0].answered
		<-phones[0].acks
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sess.Bye(ctx); err != nil {
			t.Errorf("operator BYE: %v", err)
		}
	}()
	tl, err := PlaceCall(context.Background(), CallOptions{
		Server: s.Addr(), From: "+79160000002", To: "sales", Hold: 5 * time.Second, Domain: testDomain,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-byeDone
	if !tl.Has("BYE received") || tl.Has("BYE sent") {
		t.Fatalf("timeline %v: the operator's BYE did not reach the caller", tl)
	}
	evs := h.waitEvents(t, 3)
	wantKinds(t, evs, "ringing:anna", "answered:anna", "ended:anna")
	if evs[2].By != "operator" {
		t.Fatalf("ended by %q, want operator", evs[2].By)
	}
}

func TestCallCancelWhileRinging(t *testing.T) {
	s, h, phones := deskWithOperators(t, "udp", 10*time.Second, [2]string{"anna", "ring"})
	c, _ := rawClient(t)
	dc := sipgo.NewDialogClientCache(c, sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: "caller", Host: "127.0.0.1"}})
	// The R-URI names the server by address: sipgo's CANCEL is routed by R-URI.
	host, port, _ := sipmsg.ParseAddr(s.Addr())
	req := sipmsg.NewRequest(sipmsg.INVITE, sipmsg.Uri{Scheme: "sip", User: "sales", Host: host, Port: port})
	req.SetBody([]byte(phoneSDP))
	sess, err := dc.WriteInvite(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		recvOrFail(t, phones[0].invites, "INVITE at the phone")
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitAnswer: %v", err)
	}
	if sess.InviteResponse == nil || sess.InviteResponse.StatusCode != 487 {
		t.Fatalf("caller got %v, want 487", sess.InviteResponse)
	}
	recvOrFail(t, phones[0].cancels, "CANCEL at the phone")
	evs := h.waitEvents(t, 3)
	wantKinds(t, evs, "ringing:anna", "target-failed:anna", "missed:anna")
	if evs[1].Status != 487 || evs[2].Status != 487 {
		t.Fatalf("statuses %d/%d, want 487", evs[1].Status, evs[2].Status)
	}
}

func TestRingTimeoutHuntsNextOperator(t *testing.T) {
	s, h, phones := deskWithOperators(t, "udp", 300*time.Millisecond,
		[2]string{"anna", "ring"}, [2]string{"boris", "answer"})
	tl, err := PlaceCall(context.Background(), CallOptions{
		Server: s.Addr(), From: "+79160000003", To: "sales", Hold: 100 * time.Millisecond, Domain: testDomain,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !tl.Has("200 OK") {
		t.Fatalf("timeline %v", tl)
	}
	recvOrFail(t, phones[0].cancels, "CANCEL at the first phone")
	recvOrFail(t, phones[1].invites, "INVITE at the second phone")
	evs := h.waitEvents(t, 5)
	wantKinds(t, evs, "ringing:anna", "target-failed:anna", "ringing:boris", "answered:boris", "ended:boris")
	if evs[1].Status != 408 {
		t.Fatalf("ring timeout status %d, want 408", evs[1].Status)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.routes) != 2 || !slices.Equal(h.routes[1].Tried, []string{"anna"}) {
		t.Fatalf("hunting did not extend Tried: %+v", h.routes)
	}
}

func TestBusyHuntsThenNobody(t *testing.T) {
	s, h, _ := deskWithOperators(t, "udp", time.Second, [2]string{"anna", "busy"})
	_, err := PlaceCall(context.Background(), CallOptions{
		Server: s.Addr(), From: "+79160000004", To: "sales", Domain: testDomain,
	}, nil)
	if !errors.Is(err, ErrCallFailed) || !strings.Contains(err.Error(), "480") {
		t.Fatalf("err %v, want 480", err)
	}
	evs := h.waitEvents(t, 2)
	wantKinds(t, evs, "target-failed:anna", "missed:anna")
	if evs[0].Status != 486 || evs[1].Status != 480 {
		t.Fatalf("statuses %d/%d", evs[0].Status, evs[1].Status)
	}
}

func TestNobodyAvailable(t *testing.T) {
	h := newMemHandler()
	s := startServer(t, h)
	_, err := PlaceCall(context.Background(), CallOptions{Server: s.Addr(), From: "100", To: "sales", Domain: testDomain}, nil)
	if !errors.Is(err, ErrCallFailed) || !strings.Contains(err.Error(), "480") {
		t.Fatalf("err %v, want 480", err)
	}
	evs := h.waitEvents(t, 1)
	if evs[0].Kind != EventMissed || evs[0].Status != 480 {
		t.Fatalf("events %+v", evs)
	}
}

func TestNoOpenRelay(t *testing.T) {
	s, h, phones := deskWithOperators(t, "udp", 0, [2]string{"anna", "answer"})
	var sent []string
	s.allowDest = func(dest string) bool { sent = append(sent, dest); return false }
	c, _ := rawClient(t)
	for _, m := range []sipmsg.RequestMethod{sipmsg.INVITE, sipmsg.MESSAGE, sipmsg.BYE} {
		req := sipmsg.NewRequest(m, sipmsg.Uri{Scheme: "sip", User: "x", Host: "example.com"})
		req.SetDestination(s.Addr())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := c.Do(ctx, req)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 403 {
			t.Fatalf("%s to a foreign domain: %d, want 403", m, res.StatusCode)
		}
	}
	if n := h.routeCount(); n != 0 || len(sent) != 0 {
		t.Fatalf("relay attempted: %d routes, next hops %v", n, sent)
	}
	select {
	case inv := <-phones[0].invites:
		t.Fatalf("phone got %s", inv.StartLine())
	default:
	}
}

func TestMalformedUDPDoesNotKillServer(t *testing.T) {
	h := newMemHandler()
	s := startServer(t, h)
	conn, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	junk := [][]byte{
		[]byte("garbage\r\n\r\n"),
		[]byte("INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n"),
		[]byte("INVITE sip:sales@desk.test SIP/2.0\r\nContent-Length: 99999\r\n\r\nx"),
		[]byte("REGISTER sip:desk.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\nCSeq: 1 REGISTER\r\nTo: <>\r\nAuthorization: Digest nc=zz\r\n\r\n"),
		{0, 1, 2, 3, 0xff, 0xfe},
	}
	for _, j := range junk {
		if _, err := conn.Write(j); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	c, _ := rawClient(t)
	req := sipmsg.NewRequest(sipmsg.OPTIONS, sipmsg.Uri{Scheme: "sip", Host: testDomain})
	req.SetDestination(s.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("OPTIONS after junk: %d", res.StatusCode)
	}
}

func TestDrainRejectsNewCalls(t *testing.T) {
	s, h, _ := deskWithOperators(t, "udp", 0, [2]string{"anna", "answer"})
	s.Drain()
	_, err := PlaceCall(context.Background(), CallOptions{Server: s.Addr(), From: "1", To: "sales", Domain: testDomain}, nil)
	if !errors.Is(err, ErrCallFailed) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err %v, want 503", err)
	}
	if h.routeCount() != 0 {
		t.Fatal("a draining server routed a call")
	}
}

func TestUnknownMethod(t *testing.T) {
	s := startServer(t, newMemHandler())
	c, _ := rawClient(t)
	for _, tc := range []struct {
		method sipmsg.RequestMethod
		want   int
	}{{"FOO", 501}, {sipmsg.SUBSCRIBE, 405}} {
		req := sipmsg.NewRequest(tc.method, sipmsg.Uri{Scheme: "sip", User: "sales", Host: testDomain})
		req.SetDestination(s.Addr())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := c.Do(ctx, req)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != tc.want {
			t.Fatalf("%s: %d, want %d", tc.method, res.StatusCode, tc.want)
		}
	}
}

func TestSanitizeHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          "plain",
		"evil\r\nVia: x": "evilVia: x",
		"tab\there":      "tab here",
		"\x00nul\x7f":    "nul",
		"Иван \"Boss\"":  "Иван \"Boss\"",
	} {
		if got := sanitizeHeaderValue(in); got != want {
			t.Errorf("sanitizeHeaderValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseIdentity(t *testing.T) {
	for in, want := range map[string][2]string{
		`"Anna" <sip:+79160000001@trunk.example;user=phone>`: {"Anna", "+79160000001"},
		`<tel:+79160000002;npdi>`:                            {"", "+79160000002"},
		`sip:100@pbx, <tel:+7916>`:                           {"", "100"},
	} {
		name, user := parseIdentity(in)
		if name != want[0] || user != want[1] {
			t.Errorf("parseIdentity(%q) = %q,%q want %v", in, name, user, want)
		}
	}
}
