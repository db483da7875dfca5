package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
)

// The media phase's SIP peers: sipgo user agents on loopback, far lighter than
// diago (no per-call media goroutines), each on one UDP port like a softphone:
// a caller agent that places every call, and phones that register operators (or
// the supervisor) with digest and answer the INVITEs the desk sends them.

// sipPeer is one sipgo user agent serving one UDP port, and a client sending
// from that port (so the desk's replies and INVITEs come back to it).
type sipPeer struct {
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	conn   net.PacketConn
	port   int
}

func newSIPPeer(name string) (*sipPeer, error) {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname("127.0.0.1"),
		sipgo.WithUserAgentDNSResolver(noDNS))
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		ua.Close()
		return nil, err
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		ua.Close()
		return nil, err
	}
	if uc, ok := conn.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20) // a burst of 500 INVITEs must not be dropped here
	}
	p := &sipPeer{ua: ua, srv: srv, conn: conn, port: conn.LocalAddr().(*net.UDPAddr).Port}
	go func() { _ = srv.ServeUDP(conn) }()
	// Until sipgo holds the listener, a request sent "from" it would bind it again.
	for i := 0; i < 200; i++ {
		if c, err := ua.TransportLayer().GetConnection("udp", conn.LocalAddr().String()); err == nil && c != nil {
			_, _ = c.TryClose()
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"),
		sipgo.WithClientConnectionAddr(conn.LocalAddr().String()))
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *sipPeer) close() {
	p.srv.Close()
	p.ua.Close()
	p.conn.Close()
}

// noDNS fails every lookup: everything here is an IP address on loopback.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("deskbench: no DNS")
}}

// register binds login to this peer's port at the desk, answering its digest
// challenge.
func (p *sipPeer) register(ctx context.Context, deskAddr, login, pass string) error {
	req := sipmsg.NewRequest(sipmsg.REGISTER, sipmsg.Uri{Scheme: "sip", Host: domain})
	aor := sipmsg.Uri{Scheme: "sip", User: login, Host: domain}
	from := &sipmsg.FromHeader{Address: aor, Params: sipmsg.NewParams()}
	from.Params.Add("tag", sipmsg.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sipmsg.ToHeader{Address: aor, Params: sipmsg.NewParams()})
	req.AppendHeader(&sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: login, Host: "127.0.0.1", Port: p.port}})
	req.AppendHeader(sipmsg.NewHeader("Expires", "3600"))
	req.SetTransport("UDP")
	req.SetDestination(deskAddr)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := p.client.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("REGISTER %s: %w", login, err)
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		if res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: login, Password: pass}); err != nil {
			return fmt.Errorf("REGISTER %s with digest: %w", login, err)
		}
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("REGISTER %s: %d %s", login, res.StatusCode, res.Reason)
	}
	return nil
}

// sdpFor is the audio description of a party at port: PCMU and telephone-event.
func sdpFor(port int) []byte {
	return []byte("v=0\r\no=bench " + strconv.Itoa(port) + " 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(port) + " RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n" +
		"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")
}

// sdpAddr is where the other party wants its audio: c= and the audio m= port.
func sdpAddr(body []byte) (*net.UDPAddr, error) {
	var ip net.IP
	port := 0
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "c=IN IP4 ") && ip == nil:
			ip = net.ParseIP(strings.TrimSpace(line[len("c=IN IP4 "):]))
		case strings.HasPrefix(line, "m=audio ") && port == 0:
			f := strings.Fields(line)
			if len(f) >= 4 {
				port, _ = strconv.Atoi(f[1])
				if !strings.Contains(" "+strings.Join(f[3:], " ")+" ", " 0 ") {
					return nil, fmt.Errorf("the SDP offers no PCMU: %q", line)
				}
			}
		}
	}
	if ip == nil || port == 0 {
		return nil, fmt.Errorf("no audio address in the SDP %q", body)
	}
	return &net.UDPAddr{IP: ip, Port: port}, nil
}

// mediaPhone answers INVITEs for every login registered from its port: 180, then
// after ring 200 with an SDP answer for a fresh RTP stream that plays payload.
type mediaPhone struct {
	*sipPeer
	kind    string
	rtp     *rtpEngine
	dialogs *sipgo.DialogServerCache
	ring    time.Duration
	payload []byte
	// answered, when set, is told of each answered call (the supervisor's timing).
	answered func(login string, at time.Time, s *rtpStream, ended <-chan struct{})

	invites, answers, failures atomic.Int64
	wg                         sync.WaitGroup
}

func newMediaPhone(kind string, rtp *rtpEngine, ring time.Duration, payload []byte) (*mediaPhone, error) {
	p, err := newSIPPeer("bench-" + kind)
	if err != nil {
		return nil, err
	}
	ph := &mediaPhone{sipPeer: p, kind: kind, rtp: rtp, ring: ring, payload: payload}
	ph.dialogs = sipgo.NewDialogServerCache(p.client, sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", Host: "127.0.0.1", Port: p.port}})
	p.srv.OnInvite(ph.onInvite)
	p.srv.OnAck(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) { _ = ph.dialogs.ReadAck(req, tx) })
	p.srv.OnBye(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if err := ph.dialogs.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		}
	})
	return ph, nil
}

func (ph *mediaPhone) onInvite(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	ph.invites.Add(1)
	remote, err := sdpAddr(req.Body())
	if err != nil {
		ph.failures.Add(1)
		_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	sess, err := ph.dialogs.ReadInvite(req, tx)
	if err != nil {
		ph.failures.Add(1)
		return
	}
	s, err := ph.rtp.open(ph.kind, ph.payload)
	if err != nil {
		ph.failures.Add(1)
		_ = sess.Respond(503, "No RTP Port", nil)
		sess.Close()
		return
	}
	// The handler holds the INVITE transaction until the final response (sipgo
	// ends it when the handler returns); then one goroutine per call waits, asleep.
	_ = sess.Respond(180, "Ringing", nil)
	if ph.ring > 0 {
		select {
		case <-time.After(ph.ring):
		case <-tx.Done(): // cancelled while ringing
			ph.rtp.end(s)
			sess.Close()
			return
		}
	}
	// Listening (and sending) from the answer on: the bridge may send at once.
	ph.rtp.start(s, remote)
	if err := sess.RespondSDP(sdpFor(s.port)); err != nil {
		ph.failures.Add(1)
		ph.rtp.end(s)
		sess.Close()
		return
	}
	at := time.Now()
	ph.answers.Add(1)
	if ph.answered != nil {
		ph.answered(req.Recipient.User, at, s, sess.Context().Done())
	}
	ph.wg.Add(1)
	go func() {
		defer ph.wg.Done()
		defer sess.Close()
		defer ph.rtp.end(s)
		select {
		case <-sess.Context().Done():
		case <-time.After(30 * time.Minute): // bounded, whatever happens
		}
	}()
}

func (ph *mediaPhone) close() {
	ph.sipPeer.close()
	done := make(chan struct{})
	go func() { ph.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// callerAgent places the callers' calls from one port.
type callerAgent struct {
	*sipPeer
	rtp     *rtpEngine
	dialogs *sipgo.DialogClientCache
	desk    string // host:port
}

func newCallerAgent(rtp *rtpEngine, deskAddr string) (*callerAgent, error) {
	p, err := newSIPPeer("bench-caller")
	if err != nil {
		return nil, err
	}
	c := &callerAgent{sipPeer: p, rtp: rtp, desk: deskAddr}
	c.dialogs = sipgo.NewDialogClientCache(p.client, sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: "caller", Host: "127.0.0.1", Port: p.port}})
	p.srv.OnBye(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if err := c.dialogs.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		}
	})
	return c, nil
}

// mediaCall is one caller's call as the caller saw it.
type mediaCall struct {
	Answered bool
	Setup    time.Duration // INVITE to 200
	Err      error
	Stream   *rtpStream
	// HungUpByDesk: the call ended before the caller's BYE.
	HungUpByDesk bool
}

// call dials line as number, tells settled once answered or failed, holds until
// release (or the desk hangs up), then sends BYE.
func (c *callerAgent) call(ctx context.Context, line, number, name string, settled func(), release <-chan struct{}) (mc mediaCall) {
	once := sync.OnceFunc(settled)
	defer once()
	s, err := c.rtp.open("caller", toneCaller)
	if err != nil {
		mc.Err = err
		return mc
	}
	defer c.rtp.end(s)
	mc.Stream = s
	host, portStr, _ := net.SplitHostPort(c.desk)
	port, _ := strconv.Atoi(portStr)
	ruri := sipmsg.Uri{Scheme: "sip", User: line, Host: host, Port: port}
	req := sipmsg.NewRequest(sipmsg.INVITE, ruri)
	from := &sipmsg.FromHeader{DisplayName: name, Address: sipmsg.Uri{Scheme: "sip", User: number, Host: domain}, Params: sipmsg.NewParams()}
	from.Params.Add("tag", sipmsg.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sipmsg.ToHeader{Address: sipmsg.Uri{Scheme: "sip", User: line, Host: domain}, Params: sipmsg.NewParams()})
	req.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(sdpFor(s.port))
	req.SetTransport("UDP")
	req.SetDestination(c.desk)

	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sess, err := c.dialogs.WriteInvite(actx, req)
	if err != nil {
		mc.Err = fmt.Errorf("INVITE: %w", err)
		return mc
	}
	defer sess.Close()
	if err := sess.WaitAnswer(actx, sipgo.AnswerOptions{}); err != nil {
		var dr *sipgo.ErrDialogResponse
		if errors.As(err, &dr) {
			err = fmt.Errorf("%d %s", dr.Res.StatusCode, dr.Res.Reason)
		}
		mc.Err = fmt.Errorf("INVITE: %w", err)
		return mc
	}
	mc.Setup = time.Since(start)
	remote, err := sdpAddr(sess.InviteResponse.Body())
	if err != nil {
		mc.Err = err
		_ = sess.Ack(ctx)
		byeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_ = sess.Bye(byeCtx)
		cancel()
		return mc
	}
	if err := sess.Ack(ctx); err != nil {
		mc.Err = fmt.Errorf("ACK: %w", err)
		return mc
	}
	mc.Answered = true
	c.rtp.start(s, remote)
	once()
	select {
	case <-release:
	case <-sess.Context().Done():
		mc.HungUpByDesk = true
	case <-ctx.Done():
	}
	if !mc.HungUpByDesk {
		byeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := sess.Bye(byeCtx); err != nil && sess.Context().Err() == nil {
			mc.Err = fmt.Errorf("BYE: %w", err)
		}
		cancel()
	}
	return mc
}
