package sip

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// TestFrontAddress checks what WithFront changes in a node's view of addresses:
// its Record-Route names the front with the node in dn, the front's address is
// its own, and the front's IP escapes the per-source limits it carries for all.
func TestFrontAddress(t *testing.T) {
	h := newMemHandler()
	s := startServer(t, h, WithFront("127.0.0.2:5070"), WithLimits(Limits{RequestRate: 1, RequestBurst: 1, FailuresPerIP: 1, FailuresPerUser: 5, FailureWindow: time.Minute}))
	node := net.JoinHostPort(s.host, strconv.Itoa(s.port))

	rr := s.recordRoute("UDP").Address
	if rr.Host != "127.0.0.2" || rr.Port != 5070 || !rr.UriParams.Has("lr") {
		t.Fatalf("Record-Route %s does not name the front", rr.String())
	}
	if dn, _ := rr.UriParams.Get("dn"); dn != node {
		t.Fatalf("Record-Route dn = %q, want this node %q", dn, node)
	}

	ours := []struct {
		uri  string
		want bool
	}{
		{"sip:127.0.0.2:5070;lr", true},
		{"sip:sales@127.0.0.2:5070", true},
		{"sip:127.0.0.2:5071;lr", false}, // another port of the front's host
		{"sip:" + node + ";lr", true},    // the node itself still
		{"sip:sales@192.0.2.7:5070", false},
	}
	for _, c := range ours {
		var u sipmsg.Uri
		if err := sipmsg.ParseUri(c.uri, &u); err != nil {
			t.Fatal(err)
		}
		if got := s.isOurs(u); got != c.want {
			t.Errorf("isOurs(%s) = %v, want %v", c.uri, got, c.want)
		}
	}

	front, other := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	for i := 0; i < 5; i++ {
		if r := s.dropReason(front, []byte("kamailio")); r != "" {
			t.Fatalf("request %d from the front dropped: %s", i, r)
		}
	}
	s.dropReason(other, []byte("phone"))
	if r := s.dropReason(other, []byte("phone")); r != "rate" {
		t.Fatalf("a phone over the rate: drop reason %q, want rate", r)
	}
	for i := 0; i < 3; i++ {
		s.authFailure("127.0.0.2:5070", "op"+strconv.Itoa(i), "bad_password")
	}
	if s.authThrottled("127.0.0.2:5070", "op9") {
		t.Fatal("failures of other logins through the front throttled a good one")
	}
	s.authFailure("127.0.0.3:5060", "op7", "bad_password")
	if !s.authThrottled("127.0.0.3:5060", "op8") {
		t.Fatal("a source with failures, not the front, was not throttled")
	}
}

// TestDialogOutlivesItsNode: node a handles a call and its Record-Route names the
// front; here the front's address is node b, as when the dispatcher sends the
// in-dialog requests of a dead node to a survivor. Node b, which never saw the
// call, must route the caller's ACK and BYE to the operator's phone and report the
// end. The two nodes share their bindings, as nodes on one Redis do.
func TestDialogOutlivesItsNode(t *testing.T) {
	h := newMemHandler()
	b := startServer(t, h)
	a := startServer(t, h, WithFront(b.Addr()))
	h.addOperator("anna", "pw-anna")
	p := newPhone(t, "anna", "", "udp", "answer")
	if res := p.register(t, a.Addr(), 600, "pw-anna"); res.StatusCode != 200 {
		t.Fatalf("register: %d", res.StatusCode)
	}
	var out bytes.Buffer
	tl, err := PlaceCall(context.Background(), CallOptions{Server: a.Addr(), From: "+79160000001", To: "sales",
		Hold: 200 * time.Millisecond, Domain: testDomain}, &out)
	if err != nil {
		t.Fatalf("call: %v\n%s", err, out.String())
	}
	if !tl.Has("BYE 200 OK") {
		t.Fatalf("the BYE was not answered through node b:\n%s", out.String())
	}
	inv := recvOrFail(t, p.invites, "INVITE at the phone")
	if rr := inv.RecordRoute(); rr == nil || rr.Address.Port != b.port {
		t.Fatalf("Record-Route %v does not name the front (node b)", rr)
	}
	recvOrFail(t, p.acks, "ACK at the phone through node b")
	recvOrFail(t, p.byes, "BYE at the phone through node b")
	evs := h.waitEvents(t, 3)
	// Node b has no memory of the dialog, so its ended event names no operator: the
	// desk finds the call in the store by Call-ID (Switchboard.event).
	wantKinds(t, evs, "ringing:anna", "answered:anna", "ended:")
	if evs[2].By != "caller" {
		t.Fatalf("ended by %q, want caller", evs[2].By)
	}
}

// TestOptionsFollowDrain: a dispatcher probes nodes with OPTIONS; a draining node
// must answer 503 so that the dispatcher stops sending it calls.
func TestOptionsFollowDrain(t *testing.T) {
	s := startServer(t, newMemHandler())
	c, _ := rawClient(t)
	for _, tc := range []struct {
		drain bool
		want  int
	}{{false, 200}, {true, 503}} {
		if tc.drain {
			s.Drain()
		}
		req := sipmsg.NewRequest(sipmsg.OPTIONS, sipmsg.Uri{Scheme: "sip", Host: testDomain})
		req.SetDestination(s.Addr())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := c.Do(ctx, req)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != tc.want {
			t.Fatalf("OPTIONS (draining %v): %d, want %d", tc.drain, res.StatusCode, tc.want)
		}
	}
}
