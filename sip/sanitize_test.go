package sip

import (
	"context"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

const injection = "\r\nX-Injected: 1\r\n\r\nINVITE sip:victim@example.com SIP/2.0"

// assertClean fails when a serialised message carries an injected header line or a
// control character inside any header value.
func assertClean(t *testing.T, what string, msg sipmsg.Message) {
	t.Helper()
	text := msg.String()
	head, _, _ := strings.Cut(text, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "x-injected") || strings.HasPrefix(line, "INVITE sip:victim") {
			t.Fatalf("%s: injected line %q in\n%s", what, line, text)
		}
		if strings.IndexFunc(line, isCtl) >= 0 {
			t.Fatalf("%s: control character in %q", what, line)
		}
	}
	if strings.Contains(text, "sip:victim") && strings.Count(text, "SIP/2.0\r\n") > 1 {
		t.Fatalf("%s: a second message was smuggled in:\n%s", what, text)
	}
}

// routeHandler answers Route with a fixed Decision.
type routeHandler struct {
	*memHandler
	dec Decision
}

func (r *routeHandler) Route(context.Context, Invite) Decision { return r.dec }

// TestSanitizedHeaders audits every header the proxy writes from configuration or
// store data: each value goes through the sanitiser, so CR/LF from the database or
// the environment can neither add headers nor split a message.
func TestSanitizedHeaders(t *testing.T) {
	cases := []struct {
		header string
		run    func(t *testing.T) sipmsg.Message
	}{
		{"Via and Record-Route (WithHost)", func(t *testing.T) sipmsg.Message {
			s, err := New(newMemHandler(), WithDomain(testDomain), WithHost("desk.example"+injection))
			if err != nil {
				t.Fatal(err)
			}
			s.host, s.port = s.cfg.host, 5060
			req := sipmsg.NewRequest(sipmsg.INVITE, sipmsg.Uri{Scheme: "sip", User: "anna", Host: "127.0.0.1", Port: 5062})
			req.PrependHeader(s.recordRoute("TCP"))
			req.PrependHeader(s.recordRoute("UDP"))
			s.stampOutgoing(req, "UDP", "127.0.0.1:5062")
			if !strings.Contains(req.Via().Host, "desk.example") {
				t.Fatalf("host lost: %q", req.Via().Host)
			}
			return req
		}},
		{"Contact of a REGISTER 200 (store bindings)", func(t *testing.T) sipmsg.Message {
			h := newMemHandler()
			h.addUser("anna", "secret")
			h.bindings["anna"] = []Binding{{User: "anna", Contact: "<sip:anna@127.0.0.1:5070>" + injection,
				Source: "127.0.0.1:5070", Transport: "udp", Expires: time.Now().Add(time.Hour), CallID: "x"}}
			s := offlineServer(t, h)
			src := "127.0.0.1:5071"
			return lastResponse(t, s, src, "anna", "secret")
		}},
		{"reason phrase (Decision.Reason)", func(t *testing.T) sipmsg.Message {
			h := &routeHandler{memHandler: newMemHandler(), dec: Decision{Status: 486, Reason: "Busy" + injection}}
			s := offlineServer(t, h)
			tx, _, err := handleRaw(s, []byte(inviteText))
			if err != nil {
				t.Fatal(err)
			}
			res := tx.responses[len(tx.responses)-1]
			if res.StatusCode != 486 {
				t.Fatalf("status %d", res.StatusCode)
			}
			return res
		}},
		{"Retry-After of a draining 503", func(t *testing.T) sipmsg.Message {
			s := offlineServer(t, newMemHandler())
			s.Drain()
			tx, _, err := handleRaw(s, []byte(inviteText))
			if err != nil {
				t.Fatal(err)
			}
			res := tx.responses[len(tx.responses)-1]
			if ra := res.GetHeader("Retry-After"); res.StatusCode != 503 || ra == nil || strings.Trim(ra.Value(), "0123456789") != "" {
				t.Fatalf("503 Retry-After: %d %v", res.StatusCode, ra)
			}
			return res
		}},
		{"WWW-Authenticate realm (WithDomain)", func(t *testing.T) sipmsg.Message {
			s, err := New(newMemHandler(), WithDomain(`desk.test"`+injection))
			if err != nil {
				t.Fatal(err)
			}
			s.host, s.port, s.listenIP = "127.0.0.1", 5060, []byte{127, 0, 0, 1}
			s.cfg.domain = "127.0.0.1"
			tx := newFakeTx()
			req := mustRequest(t, strings.ReplaceAll(registerText, testDomain, "127.0.0.1"))
			s.serve(req, tx)
			res := tx.responses[len(tx.responses)-1]
			if res.StatusCode != 401 {
				t.Fatalf("status %d", res.StatusCode)
			}
			return res
		}},
		{"Server (WithUserAgent)", func(t *testing.T) sipmsg.Message {
			s, err := New(newMemHandler(), WithDomain(testDomain), WithUserAgent("calldesk"+injection))
			if err != nil {
				t.Fatal(err)
			}
			s.host, s.port, s.listenIP = "127.0.0.1", 5060, []byte{127, 0, 0, 1}
			tx, _, err := handleRaw(s, []byte(optionsText))
			if err != nil {
				t.Fatal(err)
			}
			return tx.responses[len(tx.responses)-1]
		}},
		{"Unsupported of a 420 (Proxy-Require)", func(t *testing.T) sipmsg.Message {
			s := offlineServer(t, newMemHandler())
			tx, _, err := handleRaw(s, []byte(strings.Replace(optionsText, "Content-Length", "Proxy-Require: foo\r\nContent-Length", 1)))
			if err != nil {
				t.Fatal(err)
			}
			res := tx.responses[len(tx.responses)-1]
			if res.StatusCode != 420 || res.GetHeader("Unsupported") == nil {
				t.Fatalf("want 420 with Unsupported, got %d", res.StatusCode)
			}
			return res
		}},
		{"To/From echoed from a request with control characters", func(t *testing.T) sipmsg.Message {
			s := offlineServer(t, newMemHandler())
			tx, _, err := handleRaw(s, []byte(strings.Replace(optionsText, "From: <sip:", "From: \"a\\\x00b\" <sip:", 1)))
			if err != nil {
				t.Fatal(err)
			}
			res := tx.responses[len(tx.responses)-1]
			if res.StatusCode != 400 {
				t.Fatalf("status %d", res.StatusCode)
			}
			if _, err := sipmsg.ParseMessage([]byte(res.String())); err != nil {
				t.Fatalf("sanitised 400 does not parse: %v", err)
			}
			return res
		}},
	}
	for _, tc := range cases {
		t.Run(tc.header, func(t *testing.T) { assertClean(t, tc.header, tc.run(t)) })
	}

	t.Run("Request-URI of a fork (store Contact)", func(t *testing.T) {
		s := offlineServer(t, newMemHandler())
		s.allowDest = func(string) bool { return true }
		base := mustRequest(t, inviteText)
		for _, contact := range []string{
			"<sip:anna@127.0.0.1:5070>" + injection,
			"<sip:anna@127.0.0.1:5070?Route=%3Csip:evil.example.com%3E>",
		} {
			_, err := s.startFork(&inviteCall{req: base}, base, Binding{User: "anna", Contact: contact, Source: "127.0.0.1:5070", Transport: "udp"})
			if err == nil {
				t.Fatalf("fork to stored contact %q was sent", contact)
			}
		}
	})
}

const inviteText = "INVITE sip:sales@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bKsan1\r\nMax-Forwards: 70\r\n" +
	"From: <sip:+79161234567@127.0.0.1>;tag=a1\r\nTo: <sip:sales@127.0.0.1>\r\nCall-ID: san-invite\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"

const optionsText = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bKsan2\r\nMax-Forwards: 70\r\n" +
	"From: <sip:probe@127.0.0.1>;tag=a2\r\nTo: <sip:127.0.0.1>\r\nCall-ID: san-options\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"

const registerText = "REGISTER sip:" + testDomain + " SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bKsan3\r\nMax-Forwards: 70\r\n" +
	"From: <sip:anna@" + testDomain + ">;tag=a3\r\nTo: <sip:anna@" + testDomain + ">\r\nCall-ID: san-register\r\nCSeq: 1 REGISTER\r\n" +
	"Contact: <sip:anna@127.0.0.1:5098>\r\nContent-Length: 0\r\n\r\n"

func mustRequest(t *testing.T, text string) *sipmsg.Request {
	t.Helper()
	m, err := sipmsg.ParseMessage([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sipmsg.Request)
	req.SetSource("127.0.0.1:5098")
	req.SetTransport("UDP")
	return req
}

// lastResponse registers once more and returns the final response itself.
func lastResponse(t *testing.T, s *Server, src, user, password string) *sipmsg.Response {
	t.Helper()
	var out *sipmsg.Response
	capture := &captureTx{fakeTx: newFakeTx(), last: &out}
	req := mustRequest(t, strings.Replace(registerText, "127.0.0.1:5098", src, -1))
	req.SetSource(src)
	s.serve(req, capture)
	chal := *capture.last
	req2 := mustRequest(t, strings.Replace(strings.Replace(registerText, "127.0.0.1:5098", src, -1), "Content-Length", "Authorization: "+authz(t, chal, user, password, 1)+"\r\nContent-Length", 1))
	req2.SetSource(src)
	s.serve(req2, capture)
	if out == nil || out.StatusCode != 200 {
		t.Fatalf("register: %v", out)
	}
	return out
}

type captureTx struct {
	*fakeTx
	last **sipmsg.Response
}

func (c *captureTx) Respond(res *sipmsg.Response) error {
	*c.last = res
	return c.fakeTx.Respond(res)
}
