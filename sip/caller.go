package sip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
)

// ErrCallFailed is returned by PlaceCall when the call got a final non-2xx answer.
var ErrCallFailed = errors.New("call failed")

// CallOptions configure PlaceCall, the `desk call` test caller.
type CallOptions struct {
	Server    string        // host:port of the desk
	From      string        // calling number (From user)
	To        string        // dialled user (Request-URI user)
	Hold      time.Duration // how long to stay connected before BYE (default 5s)
	Transport string        // "udp" (default) or "tcp"
	Domain    string        // Request-URI host; default the Server address
	Logger    *slog.Logger
}

// Step is one event of a test call, at its offset from the start.
type Step struct {
	At   time.Duration
	What string
}

// Timeline is what happened during a test call, in order.
type Timeline []Step

// Has tells whether a step with this text happened.
func (t Timeline) Has(what string) bool {
	for _, s := range t {
		if s.What == what {
			return true
		}
	}
	return false
}

type timeline struct {
	mu    sync.Mutex
	start time.Time
	out   io.Writer
	steps Timeline
}

func (t *timeline) add(what string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at := time.Since(t.start)
	t.steps = append(t.steps, Step{At: at, What: what})
	if t.out != nil {
		fmt.Fprintf(t.out, "%6d ms  %s\n", at.Milliseconds(), what)
	}
}

func (t *timeline) get() Timeline {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append(Timeline(nil), t.steps...)
}

const testSDP = "v=0\r\no=desk 1 1 IN IP4 %[1]s\r\ns=desk call\r\nc=IN IP4 %[1]s\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"

// PlaceCall places a real SIP call through the desk: INVITE with SDP, wait for the
// answer, ACK, hold, BYE, following the Record-Route set. It prints each step with
// milliseconds since start to out and returns the timeline. Cancelling ctx before the
// answer sends CANCEL; a BYE from the far end ends the hold early.
func PlaceCall(ctx context.Context, opts CallOptions, out io.Writer) (Timeline, error) {
	tl := &timeline{start: time.Now(), out: out}
	if opts.Hold <= 0 {
		opts.Hold = 5 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	network := "udp"
	if strings.EqualFold(opts.Transport, "tcp") {
		network = "tcp"
	}
	if opts.From == "" || opts.To == "" || opts.Server == "" {
		return nil, errors.New("place call: server, from and to are required")
	}
	// The local address facing the desk; a UDP "dial" sends nothing.
	probe, err := net.Dial("udp", opts.Server)
	if err != nil {
		return nil, fmt.Errorf("place call: resolve %s: %w", opts.Server, err)
	}
	localIP := probe.LocalAddr().(*net.UDPAddr).IP.String()
	probe.Close()

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("desk-call"),
		sipgo.WithUserAgentTransactionLayerOptions(sipmsg.WithTransactionLayerLogger(log)),
		sipgo.WithUserAgentTransportLayerOptions(sipmsg.WithTransportLayerLogger(log)))
	if err != nil {
		return nil, fmt.Errorf("place call: %w", err)
	}
	defer ua.Close()
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		return nil, fmt.Errorf("place call: %w", err)
	}

	var localPort int
	clientOpts := []sipgo.ClientOption{sipgo.WithClientLogger(log), sipgo.WithClientHostname(localIP)}
	if network == "udp" {
		conn, err := net.ListenPacket("udp", net.JoinHostPort(localIP, "0"))
		if err != nil {
			return nil, fmt.Errorf("place call: listen: %w", err)
		}
		defer conn.Close()
		localPort = conn.LocalAddr().(*net.UDPAddr).Port
		go func() { _ = srv.ServeUDP(conn) }()
		waitUDPServing(ua.TransportLayer(), conn.LocalAddr().String())
		clientOpts = append(clientOpts, sipgo.WithClientConnectionAddr(conn.LocalAddr().String()))
	} else {
		ln, err := net.Listen("tcp", net.JoinHostPort(localIP, "0"))
		if err != nil {
			return nil, fmt.Errorf("place call: listen: %w", err)
		}
		defer ln.Close()
		localPort = ln.Addr().(*net.TCPAddr).Port
		go func() { _ = srv.ServeTCP(ln) }()
	}
	client, err := sipgo.NewClient(ua, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("place call: %w", err)
	}

	contact := sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: opts.From, Host: localIP, Port: localPort}}
	if network == "tcp" {
		contact.Address.UriParams = sipmsg.NewParams()
		contact.Address.UriParams.Add("transport", "tcp")
	}
	dialogs := sipgo.NewDialogClientCache(client, contact)
	byeRemote := make(chan struct{}, 1)
	srv.OnBye(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if err := dialogs.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		select {
		case byeRemote <- struct{}{}:
		default:
		}
	})

	domain := opts.Domain
	if domain == "" {
		domain = opts.Server
	}
	dhost, dport := domain, 0
	if h, p, err := net.SplitHostPort(domain); err == nil {
		dhost = h
		dport, _ = strconv.Atoi(p)
	}
	ruri := sipmsg.Uri{Scheme: "sip", User: opts.To, Host: dhost, Port: dport}
	if network == "tcp" {
		ruri.UriParams = sipmsg.NewParams()
		ruri.UriParams.Add("transport", "tcp")
	}
	req := sipmsg.NewRequest(sipmsg.INVITE, ruri)
	from := &sipmsg.FromHeader{DisplayName: "desk call", Address: sipmsg.Uri{Scheme: "sip", User: opts.From, Host: dhost}, Params: sipmsg.NewParams()}
	from.Params.Add("tag", sipmsg.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sipmsg.ToHeader{Address: sipmsg.Uri{Scheme: "sip", User: opts.To, Host: dhost}, Params: sipmsg.NewParams()})
	req.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte(fmt.Sprintf(testSDP, localIP)))
	req.SetTransport(strings.ToUpper(network))
	req.SetDestination(opts.Server)
	if domain != opts.Server {
		// Preload the desk as a loose route: sipgo builds CANCEL from the INVITE's
		// Route set, so it reaches the desk without resolving the domain.
		shost, sport, err := sipmsg.ParseAddr(opts.Server)
		if err != nil {
			return nil, fmt.Errorf("place call: server address: %w", err)
		}
		route := sipmsg.Uri{Scheme: "sip", Host: shost, Port: sport, UriParams: sipmsg.NewParams()}
		if network == "tcp" {
			route.UriParams.Add("transport", "tcp")
		}
		route.UriParams.Add("lr", "")
		req.AppendHeader(&sipmsg.RouteHeader{Address: route})
	}

	sess, err := dialogs.WriteInvite(ctx, req)
	if err != nil {
		return tl.get(), fmt.Errorf("place call: invite: %w", err)
	}
	defer sess.Close()
	tl.add("INVITE sent")

	answerCtx, cancelAnswer := context.WithCancel(ctx)
	defer cancelAnswer()
	err = sess.WaitAnswer(answerCtx, sipgo.AnswerOptions{OnResponse: func(res *sipmsg.Response) error {
		tl.add(fmt.Sprintf("%d %s", res.StatusCode, res.Reason))
		return nil
	}})
	if err != nil {
		var dr *sipgo.ErrDialogResponse
		if errors.As(err, &dr) {
			return tl.get(), fmt.Errorf("place call: %w: %d %s", ErrCallFailed, dr.Res.StatusCode, dr.Res.Reason)
		}
		if ctx.Err() != nil {
			tl.add("CANCEL sent")
		}
		return tl.get(), fmt.Errorf("place call: %w", err)
	}
	if err := sess.Ack(ctx); err != nil {
		return tl.get(), fmt.Errorf("place call: ack: %w", err)
	}
	tl.add("ACK sent")

	hold := time.NewTimer(opts.Hold)
	defer hold.Stop()
	select {
	case <-byeRemote:
		tl.add("BYE received")
		return tl.get(), nil
	case <-hold.C:
	case <-ctx.Done():
	}
	byeCtx, cancelBye := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelBye()
	tl.add("BYE sent")
	if err := sess.Bye(byeCtx); err != nil {
		return tl.get(), fmt.Errorf("place call: bye: %w", err)
	}
	tl.add("BYE 200 OK")
	return tl.get(), nil
}
