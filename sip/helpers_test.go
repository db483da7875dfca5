package sip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
)

const testDomain = "desk.test"

// memHandler is an in-memory Handler: users with passwords, bindings, and a hunting
// order of operators.
type memHandler struct {
	mu          sync.Mutex
	users       map[string]string
	bindings    map[string][]Binding
	putErr      error
	ha1Err      error
	operators   []string
	ringTimeout time.Duration
	routes      []Invite
	events      []CallEvent
	notify      chan struct{}
}

func newMemHandler() *memHandler {
	return &memHandler{
		users:    map[string]string{},
		bindings: map[string][]Binding{},
		notify:   make(chan struct{}, 1000),
	}
}

func (h *memHandler) DigestHA1(_ context.Context, user string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ha1Err != nil {
		return "", h.ha1Err
	}
	pw, ok := h.users[user]
	if !ok {
		return "", ErrUnknownUser
	}
	return HA1(user, testDomain, pw), nil
}

func (h *memHandler) Bindings(_ context.Context, user string) ([]Binding, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return unexpired(h.bindings[user], time.Now()), nil
}

func (h *memHandler) PutBindings(_ context.Context, user string, b []Binding) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.putErr != nil {
		return h.putErr
	}
	h.bindings[user] = append([]Binding(nil), b...)
	return nil
}

func (h *memHandler) Route(_ context.Context, inv Invite) Decision {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.routes) > 10000 {
		h.routes = h.routes[:0]
	}
	h.routes = append(h.routes, inv)
	for _, op := range h.operators {
		if slices.Contains(inv.Tried, op) {
			continue
		}
		if bs := unexpired(h.bindings[op], time.Now()); len(bs) > 0 {
			return Decision{Target: op, Contacts: bs, RingTimeout: h.ringTimeout}
		}
	}
	return Decision{Status: 480, Reason: "Nobody Available"}
}

func (h *memHandler) CallEvent(ev CallEvent) {
	h.mu.Lock()
	if len(h.events) > 10000 { // the fuzzer emits without end
		h.events = h.events[:0]
	}
	h.events = append(h.events, ev)
	h.mu.Unlock()
	select {
	case h.notify <- struct{}{}:
	default:
	}
}

func (h *memHandler) addOperator(login, password string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.users[login] = password
	h.operators = append(h.operators, login)
}

func (h *memHandler) addUser(login, password string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.users[login] = password
}

func (h *memHandler) routeCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.routes)
}

func (h *memHandler) userBindings(user string) []Binding {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Binding(nil), h.bindings[user]...)
}

// waitEvents waits until n events arrived and returns them.
func (h *memHandler) waitEvents(t *testing.T, n int) []CallEvent {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.mu.Lock()
		if len(h.events) >= n {
			evs := append([]CallEvent(nil), h.events...)
			h.mu.Unlock()
			return evs
		}
		h.mu.Unlock()
		select {
		case <-h.notify:
		case <-deadline:
			h.mu.Lock()
			defer h.mu.Unlock()
			t.Fatalf("waited for %d events, got %v", n, kinds(h.events))
			return nil
		}
	}
}

func kinds(evs []CallEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind.String()+":"+e.Target)
	}
	return out
}

// startServer runs a Server on a free 127.0.0.1 port until the test ends.
func startServer(t *testing.T, h Handler, opts ...Option) *Server {
	t.Helper()
	opts = append([]Option{WithDomain(testDomain)}, opts...)
	s, err := New(h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s.allowDest = loopbackOnly
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0") }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s
}

// loopbackOnly keeps every packet the tests provoke on 127.0.0.0/8.
func loopbackOnly(dest string) bool {
	ap, err := netip.ParseAddrPort(dest)
	return err == nil && ap.Addr().IsLoopback()
}

// phone is a sipgo user agent acting as an operator's softphone.
type phone struct {
	t        *testing.T
	login    string
	password string
	network  string
	mode     string // "answer", "ring" or "busy"
	ua       *sipgo.UserAgent
	client   *sipgo.Client
	contact  sipmsg.ContactHeader
	addr     string
	dialogs  *sipgo.DialogServerCache

	invites  chan *sipmsg.Request
	cancels  chan struct{}
	acks     chan *sipmsg.Request
	byes     chan *sipmsg.Request
	answered chan *sipgo.DialogServerSession
}

func newPhone(t *testing.T, login, password, network, mode string) *phone {
	t.Helper()
	p := &phone{t: t, login: login, password: password, network: network, mode: mode,
		invites: make(chan *sipmsg.Request, 10), cancels: make(chan struct{}, 10),
		acks: make(chan *sipmsg.Request, 10), byes: make(chan *sipmsg.Request, 10),
		answered: make(chan *sipgo.DialogServerSession, 10)}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("phone-"+login), sipgo.WithUserAgentDNSResolver(noDNS))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	var port int
	copts := []sipgo.ClientOption{sipgo.WithClientHostname("127.0.0.1")}
	if network == "udp" {
		conn, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = conn.LocalAddr().(*net.UDPAddr).Port
		go srv.ServeUDP(conn)
		waitUDPServing(ua.TransportLayer(), conn.LocalAddr().String())
		copts = append(copts, sipgo.WithClientConnectionAddr(conn.LocalAddr().String()))
		t.Cleanup(func() { conn.Close() })
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		go srv.ServeTCP(ln)
		t.Cleanup(func() { ln.Close() })
	}
	p.addr = net.JoinHostPort("127.0.0.1", itoa(port))
	p.client, err = sipgo.NewClient(ua, copts...)
	if err != nil {
		t.Fatal(err)
	}
	p.ua = ua
	p.contact = sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: login, Host: "127.0.0.1", Port: port}}
	if network == "tcp" {
		p.contact.Address.UriParams = sipmsg.NewParams()
		p.contact.Address.UriParams.Add("transport", "tcp")
	}
	p.dialogs = sipgo.NewDialogServerCache(p.client, p.contact)
	srv.OnInvite(p.onInvite)
	srv.OnAck(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		_ = p.dialogs.ReadAck(req, tx)
		p.acks <- req
	})
	srv.OnBye(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if err := p.dialogs.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 481, "No Dialog", nil))
		}
		p.byes <- req
	})
	t.Cleanup(func() { ua.Close() })
	return p
}

func itoa(n int) string { return strconv.Itoa(n) }

const phoneSDP = "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 41000 RTP/AVP 0\r\n"

func (p *phone) onInvite(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	p.invites <- req
	sess, err := p.dialogs.ReadInvite(req, tx)
	if err != nil {
		return
	}
	defer sess.Close()
	switch p.mode {
	case "busy":
		_ = sess.Respond(486, "Busy Here", nil)
	case "ring":
		tx.OnCancel(func(*sipmsg.Request) { p.cancels <- struct{}{} })
		_ = sess.Respond(180, "Ringing", nil)
		select {
		case <-tx.Done():
		case <-time.After(10 * time.Second):
		}
	default:
		_ = sess.Respond(180, "Ringing", nil)
		time.Sleep(50 * time.Millisecond)
		_ = sess.RespondSDP([]byte(phoneSDP))
		p.answered <- sess
		select {
		case <-sess.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
}

// register runs REGISTER with digest (401 challenge, then credentials).
func (p *phone) register(t *testing.T, server string, expires int, password string) *sipmsg.Response {
	t.Helper()
	req := sipmsg.NewRequest(sipmsg.REGISTER, sipmsg.Uri{Scheme: "sip", Host: testDomain})
	aor := sipmsg.Uri{Scheme: "sip", User: p.login, Host: testDomain}
	from := &sipmsg.FromHeader{Address: aor, Params: sipmsg.NewParams()}
	from.Params.Add("tag", sipmsg.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sipmsg.ToHeader{Address: aor, Params: sipmsg.NewParams()})
	req.AppendHeader(sipmsg.HeaderClone(&p.contact))
	req.AppendHeader(sipmsg.NewHeader("Expires", itoa(expires)))
	req.AppendHeader(sipmsg.NewHeader("User-Agent", "test-phone"))
	req.SetTransport(strings.ToUpper(p.network))
	req.SetDestination(server)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.client.Do(ctx, req)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if res.StatusCode != 401 || password == "" {
		return res
	}
	res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.login, Password: password})
	if err != nil {
		t.Fatalf("register with auth: %v", err)
	}
	return res
}

// rawClient is a bare sipgo client on its own 127.0.0.1 UDP port.
func rawClient(t *testing.T) (*sipgo.Client, string) {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentDNSResolver(noDNS))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := sipgo.NewServer(ua)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeUDP(conn)
	waitUDPServing(ua.TransportLayer(), conn.LocalAddr().String())
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientConnectionAddr(conn.LocalAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); ua.Close() })
	return c, conn.LocalAddr().String()
}

func recvOrFail[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

var errStore = errors.New("store down")

// noDNS fails every lookup locally, so a test can never query a name server.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no DNS in tests")
}}

func mustPrefixes(t *testing.T, ps ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, p := range ps {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}
