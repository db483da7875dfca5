package sip

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
)

// fakeTx is a server transaction that only records responses, so requests can be
// driven through the handlers without any network.
type fakeTx struct {
	mu        sync.Mutex
	responses []*sipmsg.Response
	done      chan struct{}
}

func newFakeTx() *fakeTx { return &fakeTx{done: make(chan struct{})} }

func (f *fakeTx) Terminate()                            {}
func (f *fakeTx) OnTerminate(sipmsg.FnTxTerminate) bool { return true }
func (f *fakeTx) Done() <-chan struct{}                 { return f.done }
func (f *fakeTx) Err() error                            { return nil }
func (f *fakeTx) Acks() <-chan *sipmsg.Request          { return nil }
func (f *fakeTx) OnCancel(sipmsg.FnTxCancel) bool       { return true }
func (f *fakeTx) Respond(res *sipmsg.Response) error {
	// Serialising proves the response is writable; a CR or LF smuggled into a
	// header value would show up as an extra line.
	_ = res.String()
	f.mu.Lock()
	f.responses = append(f.responses, res)
	f.mu.Unlock()
	return nil
}

func (f *fakeTx) final() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.responses) - 1; i >= 0; i-- {
		if f.responses[i].StatusCode >= 200 {
			return f.responses[i].StatusCode
		}
	}
	return 0
}

// offlineServer is a Server that is not listening and may send nothing anywhere.
func offlineServer(t testing.TB, h Handler) *Server {
	s, err := New(h, WithDomain(testDomain))
	if err != nil {
		t.Fatal(err)
	}
	s.host, s.port, s.listenIP = "127.0.0.1", 5060, []byte{127, 0, 0, 1}
	s.allowDest = func(string) bool { return false }
	return s
}

func handleRaw(s *Server, data []byte) (*fakeTx, *sipmsg.Request, error) {
	msg, err := sipmsg.ParseMessage(data)
	if err != nil {
		return nil, nil, err
	}
	req, ok := msg.(*sipmsg.Request)
	if !ok {
		return nil, nil, nil
	}
	req.SetSource("127.0.0.1:5098")
	tx := newFakeTx()
	s.serve(req, tx)
	return tx, req, nil
}

func TestRawMessages(t *testing.T) {
	cases := []struct {
		file string
		want int // final status; 0: no response (parse error or ACK)
	}{
		{"register.sip", 401},
		{"register_auth.sip", 401}, // a nonce we never issued: challenged afresh
		{"bye_route.sip", 403},     // next hop vetoed: nothing leaves the test
		{"options.sip", 200},
		{"relay_attempt.sip", 403},
		{"injection.sip", 480},
		{"invite_large.sip", 480},
		{"malformed.sip", 0},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			h := newMemHandler()
			s := offlineServer(t, h)
			tx, _, err := handleRaw(s, data)
			if tc.want == 0 {
				if err == nil && tx != nil && tx.final() != 0 {
					t.Fatalf("malformed message answered %d", tx.final())
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := tx.final(); got != tc.want {
				t.Fatalf("final %d, want %d", got, tc.want)
			}
			if tc.file == "injection.sip" {
				h.mu.Lock()
				inv := h.routes[0]
				h.mu.Unlock()
				if inv.Caller != "100" || strings.ContainsAny(inv.CallerName, "\r\n") {
					t.Fatalf("untrusted PAI believed or name unsanitised: %+v", inv)
				}
			}
		})
	}
}

func TestTrustedTrunkPAI(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "injection.sip"))
	if err != nil {
		t.Fatal(err)
	}
	h := newMemHandler()
	s := offlineServer(t, h)
	s.cfg.trusted = mustPrefixes(t, "127.0.0.0/8")
	if _, _, err := handleRaw(s, data); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.routes[0].Caller != "+79160000001" {
		t.Fatalf("trusted PAI ignored: %+v", h.routes[0])
	}
}

func TestLargeInviteOverUDP(t *testing.T) {
	s, _, _ := deskWithOperators(t, "udp", 0, [2]string{"anna", "answer"})
	data, err := os.ReadFile(filepath.Join("testdata", "invite_large.sip"))
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	c, _ := rawClient(t)
	dc := sipgo.NewDialogClientCache(c, sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: "big", Host: "127.0.0.1"}})
	host, port, _ := sipmsg.ParseAddr(s.Addr())
	req := sipmsg.NewRequest(sipmsg.INVITE, sipmsg.Uri{Scheme: "sip", User: "sales", Host: host, Port: port})
	req.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	sess, err := dc.WriteInvite(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("large INVITE (%d bytes of SDP): %v", len(body), err)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
}

func FuzzHandleRequest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.sip"))
	for _, fn := range files {
		if data, err := os.ReadFile(fn); err == nil {
			f.Add(data)
		}
	}
	s := offlineServer(f, newMemHandler())
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, _, err := handleRaw(s, data)
		if err != nil || tx == nil {
			return
		}
		for _, res := range tx.responses {
			for _, h := range res.Headers() {
				if strings.ContainsAny(h.Value(), "\r\n") {
					t.Fatalf("header %s carries CR/LF: %q", h.Name(), h.Value())
				}
			}
		}
	})
}

// FuzzCallerIdentity feeds From and P-Asserted-Identity values through the caller id
// and display name extraction (parseIdentity and buildInvite, from a trusted trunk so
// PAI is read): it must not panic, and what reaches the Handler is bounded, valid
// UTF-8 and free of control characters, whatever the headers held.
func FuzzCallerIdentity(f *testing.F) {
	s := offlineServer(f, newMemHandler())
	s.cfg.trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	f.Fuzz(func(t *testing.T, from, pai string) {
		name, user := parseIdentity(pai)
		if strings.ContainsAny(user, "<>\" \t,") {
			t.Fatalf("user %q from %q", user, pai)
		}
		if strings.Contains(name, "<") && !strings.Contains(pai, "\"") {
			t.Fatalf("name %q from %q: an unquoted name cannot hold '<'", name, pai)
		}
		raw := "INVITE sip:sales@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bKfuzz\r\n" +
			"From: " + from + "\r\nTo: <sip:sales@127.0.0.1>\r\nCall-ID: fuzz\r\nCSeq: 1 INVITE\r\n" +
			"P-Asserted-Identity: " + pai + "\r\nContent-Length: 0\r\n\r\n"
		msg, err := sipmsg.ParseMessage([]byte(raw))
		if err != nil {
			return
		}
		req, ok := msg.(*sipmsg.Request)
		if !ok {
			return
		}
		req.SetSource("127.0.0.1:5098")
		inv := s.buildInvite(req)
		for what, v := range map[string]string{"caller": inv.Caller, "name": inv.CallerName, "dialled": inv.Dialled} {
			if strings.IndexFunc(v, isCtl) >= 0 {
				t.Fatalf("%s %q carries control characters", what, v)
			}
			if !utf8.ValidString(v) {
				t.Fatalf("%s %q is not valid UTF-8", what, v)
			}
		}
		if len(inv.Caller) > 64 || len(inv.CallerName) > 128 {
			t.Fatalf("unbounded caller %d / name %d bytes", len(inv.Caller), len(inv.CallerName))
		}
	})
}
