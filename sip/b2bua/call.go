package b2bua

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
)

// Headers shared with the proxy (package sip declares the same names; the two
// packages do not import each other, the wire is their contract).
const (
	headerLeg    = "X-Desk-Leg"
	headerRecord = "X-Desk-Record"
)

// dialog is what the bridge needs of either side of a call.
type dialog interface {
	Context() context.Context
	Hangup(ctx context.Context) error
	Close() error
}

// bridged is one call the bridge carries, from the first leg to the last hang-up.
type bridged struct {
	e      *Engine
	id     string // the operator leg's Call-ID
	ctx    context.Context
	cancel context.CancelFunc

	// bridged is closed once both sides are up and mixed: supervisors can join then.
	up chan struct{}

	mu    sync.Mutex
	mix   *mixer
	sups  map[string]*supLeg
	ended bool
	// supWG counts the supervisor legs' goroutines; Add only under mu while !ended,
	// so the call's end waits for every one it let in.
	supWG sync.WaitGroup
}

type supLeg struct {
	name      string
	mode      Mode
	leg       *leg
	requested time.Time
	ctx       context.Context
	cancel    context.CancelFunc
}

func (e *Engine) newBridged(parent context.Context) *bridged {
	ctx, cancel := context.WithCancel(parent)
	return &bridged{e: e, id: newCallID(), ctx: ctx, cancel: cancel, sups: map[string]*supLeg{}, up: make(chan struct{})}
}

// end makes every goroutine of the call hang up and return.
func (c *bridged) end() { c.cancel() }

func newCallID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "@bridge"
}

// proxyURI is a Request-URI for user at the proxy.
func (e *Engine) proxyURI(user string) (sipmsg.Uri, error) {
	p := e.proxyAddr()
	host, port, err := net.SplitHostPort(p)
	if p == "" || err != nil {
		return sipmsg.Uri{}, ErrNotReady
	}
	n, _ := strconv.Atoi(port)
	return sipmsg.Uri{Scheme: "sip", User: user, Host: host, Port: n, UriParams: sipmsg.NewParams(), Headers: sipmsg.NewParams()}, nil
}

// fromHeader builds a From for a leg the bridge places. The name is the caller's, as
// the proxy forwarded it: stripped of what could break the quoted string.
func (e *Engine) fromHeader(name, user string) *sipmsg.FromHeader {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, name)
	return &sipmsg.FromHeader{DisplayName: name, Address: sipmsg.Uri{Scheme: "sip", User: user, Host: e.cfg.domain}, Params: sipmsg.NewParams()}
}

// offersG711 tells whether an SDP offer has an audio stream with PCMU (0) or PCMA
// (8), the only codecs the mixer speaks. A request without SDP (offer in the ACK) is
// let through: diago then makes the offer.
func offersG711(sdp []byte) bool {
	if len(sdp) == 0 {
		return true
	}
	for _, line := range strings.Split(string(sdp), "\n") {
		f := strings.Fields(strings.TrimSpace(line))
		if len(f) < 4 || f[0] != "m=audio" {
			continue
		}
		for _, pt := range f[3:] {
			if pt == "0" || pt == "8" {
				return true
			}
		}
	}
	return false
}

// responseStatus is the final status a failed INVITE got, or 0.
func responseStatus(err error) (int, string) {
	var v sipgo.ErrDialogResponse
	if errors.As(err, &v) && v.Res != nil {
		return v.Res.StatusCode, v.Res.Reason
	}
	var p *sipgo.ErrDialogResponse
	if errors.As(err, &p) && p != nil && p.Res != nil {
		return p.Res.StatusCode, p.Res.Reason
	}
	return 0, ""
}

// serveInbound carries a media-mode call the proxy handed over: it rings the
// operators through the proxy and answers the caller only when one of them answers.
func (e *Engine) serveInbound(d *diago.DialogServerSession) {
	req := d.InviteRequest
	if e.closed.Load() {
		_ = d.Respond(503, "Service Unavailable", nil)
		return
	}
	c := e.newBridged(d.Context())
	defer c.cancel()
	if !e.add(c) {
		e.m.calls.WithLabelValues("inbound", "refused").Inc()
		_ = d.Respond(503, "Service Unavailable", nil)
		return
	}
	e.wg.Add(1)
	defer e.wg.Done()
	defer e.remove(c)

	var keep time.Duration
	if h := req.GetHeader(headerRecord); h != nil {
		if sec, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && sec > 0 {
			keep = time.Duration(sec) * time.Second
		}
	}
	ruri, err := e.proxyURI(req.Recipient.User)
	if err != nil {
		_ = d.Respond(503, "Service Unavailable", nil)
		return
	}
	if !offersG711(req.Body()) {
		// Refused before any operator is rung: nobody could hear this caller.
		e.m.calls.WithLabelValues("inbound", "codec").Inc()
		_ = d.Respond(488, "Not Acceptable Here", nil)
		return
	}
	// The caller hears ringing while the operators are hunted.
	_ = d.Ringing()

	op, err := e.dg.NewDialog(ruri, diago.NewDialogOptions{Transport: "udp"})
	if err != nil {
		_ = d.Respond(500, "Server Internal Error", nil)
		return
	}
	from := req.From()
	var name, user string
	if from != nil {
		name, user = from.DisplayName, from.Address.User
	}
	cid := sipmsg.CallIDHeader(c.id)
	hdrs := []sipmsg.Header{e.fromHeader(name, user), &cid, sipmsg.NewHeader(headerLeg, "operator")}
	opMed, err := op.Invite(c.ctx, diago.InviteClientOptions{Headers: hdrs})
	if err != nil {
		op.Close()
		if d.Context().Err() != nil {
			e.m.calls.WithLabelValues("inbound", "cancelled").Inc()
			return // the caller gave up; the transaction answered 487 already
		}
		code, reason := responseStatus(err)
		if code < 300 {
			code, reason = 480, "Temporarily Unavailable"
		}
		e.m.calls.WithLabelValues("inbound", "unanswered").Inc()
		_ = d.Respond(code, reason, nil)
		return
	}
	if err := op.Ack(c.ctx); err != nil {
		e.log.Warn("b2bua: operator ACK failed", "call_id", c.id, "err", err)
	}
	callerMed, err := d.Answer(diago.AnswerOptions{})
	if err != nil {
		e.m.calls.WithLabelValues("inbound", "cancelled").Inc()
		c.hangup(op)
		return
	}
	e.m.calls.WithLabelValues("inbound", "answered").Inc()
	c.run(e.startRecording(c.id, keep), side{d, callerMed, roleCaller, "caller"}, side{op, opMed, roleOperator, "operator"})
}

// startRecording opens the call's WAV, or returns nil when it is not recorded. A
// recording that cannot start never stops the call.
func (e *Engine) startRecording(callID string, keep time.Duration) *wavWriter {
	if keep <= 0 || e.cfg.recorder == nil {
		return nil
	}
	ws, cl, err := e.cfg.recorder(callID, keep)
	if err != nil {
		e.m.recordErrors.Inc()
		e.log.Warn("b2bua: recording not started", "call_id", callID, "err", err)
		return nil
	}
	rec, err := newWAV(ws, cl)
	if err != nil {
		cl.Close()
		e.m.recordErrors.Inc()
		e.log.Warn("b2bua: recording not started", "call_id", callID, "err", err)
		return nil
	}
	return rec
}

type side struct {
	d    dialog
	med  *diago.DialogMedia
	role role
	name string
}

// run mixes the two sides until either hangs up (or the bridge closes), then tears
// everything down: the other side, every supervisor, the mixer and the recording.
func (c *bridged) run(rec *wavWriter, a, b side) {
	var legs []*leg
	for _, s := range []side{a, b} {
		l, err := newLeg(s.role, s.name, s.med)
		if err != nil {
			c.e.log.Warn("b2bua: leg not mixed", "call_id", c.id, "err", err)
			if rec != nil {
				rec.Close()
			}
			c.hangup(a.d, b.d)
			return
		}
		legs = append(legs, l)
	}
	c.mu.Lock()
	c.mix = newMixer(c.e.m, rec, legs...)
	c.mu.Unlock()
	close(c.up)

	select {
	case <-a.d.Context().Done():
	case <-b.d.Context().Done():
	case <-c.ctx.Done():
	}
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	c.cancel() // supervisors leave with the call
	c.hangup(a.d, b.d)
	if err := c.mix.close(); err != nil {
		c.e.log.Warn("b2bua: recording not closed cleanly", "call_id", c.id, "err", err)
	}
	for _, l := range legs {
		c.e.m.account(l)
	}
	c.e.m.mixSeconds.Add(time.Duration(c.mix.cost.Load()).Seconds())
	c.supWG.Wait()
}

// hangup ends each dialog that is still up and closes it, which closes its media.
func (c *bridged) hangup(ds ...dialog) {
	for _, d := range ds {
		if d.Context().Err() == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := d.Hangup(ctx); err != nil && d.Context().Err() == nil {
				c.e.log.Debug("b2bua: hangup failed", "call_id", c.id, "err", err)
			}
			cancel()
		}
		d.Close()
	}
}

// Monitor rings the supervisor's phone and mixes him into the call in mode, or only
// switches his mode when he is in already.
func (e *Engine) Monitor(ctx context.Context, callID, supervisor string, mode Mode) error {
	if !mode.valid() {
		return fmt.Errorf("monitor %q: %w", mode, ErrBadMode)
	}
	c := e.call(callID)
	if c == nil {
		return fmt.Errorf("monitor %s: %w", callID, ErrNoCall)
	}
	// A supervisor may click as the operator answers, before the caller's leg is up.
	select {
	case <-c.up:
	case <-c.ctx.Done():
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
	}
	c.mu.Lock()
	if c.ended || c.mix == nil {
		c.mu.Unlock()
		return fmt.Errorf("monitor %s: %w", callID, ErrNoCall)
	}
	if s := c.sups[supervisor]; s != nil {
		s.mode = mode
		joined := s.leg != nil
		if joined {
			s.leg.mode.Store(mode)
		}
		c.mu.Unlock()
		if joined {
			e.monitorEvent(MonitorEvent{CallID: c.id, Supervisor: supervisor, Mode: mode, State: "switched"})
		}
		return nil
	}
	sctx, cancel := context.WithCancel(c.ctx)
	s := &supLeg{name: supervisor, mode: mode, requested: time.Now(), ctx: sctx, cancel: cancel}
	c.sups[supervisor] = s
	c.supWG.Add(1)
	c.mu.Unlock()
	e.monitorEvent(MonitorEvent{CallID: c.id, Supervisor: supervisor, Mode: mode, State: "ringing"})
	e.wg.Add(1)
	go c.runMonitor(s)
	return nil
}

// StopMonitor hangs up the supervisor's leg (or stops ringing his phone).
func (e *Engine) StopMonitor(ctx context.Context, callID, supervisor string) error {
	c := e.call(callID)
	if c == nil {
		return fmt.Errorf("stop monitor %s: %w", callID, ErrNoCall)
	}
	c.mu.Lock()
	s := c.sups[supervisor]
	c.mu.Unlock()
	if s == nil {
		return fmt.Errorf("stop monitor %s by %s: %w", callID, supervisor, ErrNoCall)
	}
	s.cancel()
	return nil
}

func (c *bridged) runMonitor(s *supLeg) {
	e := c.e
	defer e.wg.Done()
	defer c.supWG.Done()
	defer s.cancel()
	mode := func() Mode {
		c.mu.Lock()
		defer c.mu.Unlock()
		return s.mode
	}
	leave := func(state, reason string) {
		c.mu.Lock()
		delete(c.sups, s.name)
		c.mu.Unlock()
		e.monitorEvent(MonitorEvent{CallID: c.id, Supervisor: s.name, Mode: mode(), State: state, Reason: reason})
	}
	ruri, err := e.proxyURI(s.name)
	if err != nil {
		leave("failed", err.Error())
		return
	}
	d, err := e.dg.NewDialog(ruri, diago.NewDialogOptions{Transport: "udp"})
	if err != nil {
		leave("failed", err.Error())
		return
	}
	hdrs := []sipmsg.Header{e.fromHeader("Desk monitor", "monitor"), sipmsg.NewHeader(headerLeg, "monitor")}
	med, err := d.Invite(s.ctx, diago.InviteClientOptions{Headers: hdrs})
	if err != nil {
		d.Close()
		reason := "cancelled"
		if code, r := responseStatus(err); code != 0 {
			reason = strconv.Itoa(code) + " " + r
		}
		leave("failed", reason)
		return
	}
	if err := d.Ack(s.ctx); err != nil {
		e.log.Warn("b2bua: supervisor ACK failed", "call_id", c.id, "err", err)
	}
	l, err := newLeg(roleSupervisor, s.name, med)
	if err != nil {
		c.hangup(d)
		leave("failed", err.Error())
		return
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		c.hangup(d)
		leave("left", "call ended")
		return
	}
	s.leg = l
	l.mode.Store(s.mode)
	c.mix.add(l)
	c.mu.Unlock()
	setup := time.Since(s.requested)
	e.m.setup.Observe(setup.Seconds())
	e.monitorEvent(MonitorEvent{CallID: c.id, Supervisor: s.name, Mode: mode(), State: "joined", Setup: setup})

	reason := "supervisor hung up"
	select {
	case <-d.Context().Done():
	case <-s.ctx.Done():
		reason = "stopped"
		if c.ctx.Err() != nil {
			reason = "call ended"
		}
	}
	c.mix.remove(l)
	c.hangup(d)
	<-l.done
	e.m.account(l)
	leave("left", reason)
}

// Callback is one call the desk dials: the operator's phone first, then the customer.
type Callback struct {
	Operator string // login, rung through the proxy (LegCallback)
	Number   string // E.164, dialled through the trunk
	Line     string // the line whose script pops: the Request-URI user toward the proxy
	Promise  string
	CallRef  string
	// Record keeps a recording for this long once the customer answers (0: none),
	// as the line would for an inbound call.
	Record time.Duration
}

// Callback starts a callback and returns the operator leg's Call-ID at once.
func (e *Engine) Callback(ctx context.Context, cb Callback) (string, error) {
	if e.cfg.trunk == nil || e.cfg.trunk.URI == "" {
		return "", fmt.Errorf("callback to %s: %w", cb.Number, ErrNoTrunk)
	}
	if e.closed.Load() || e.proxyAddr() == "" {
		return "", fmt.Errorf("callback to %s: %w", cb.Number, ErrNotReady)
	}
	c := e.newBridged(context.Background())
	if !e.add(c) {
		return "", fmt.Errorf("callback to %s: %w", cb.Number, errors.New("bridge at capacity"))
	}
	e.wg.Add(1)
	go c.runCallback(cb)
	return c.id, nil
}

func legValue(cb Callback) string {
	clean := func(v string) string {
		return strings.Map(func(r rune) rune {
			if r <= ' ' || r == ';' || r == '=' || r == 0x7f {
				return -1
			}
			return r
		}, v)
	}
	v := "callback;operator=" + clean(cb.Operator)
	if cb.Promise != "" {
		v += ";promise=" + clean(cb.Promise)
	}
	if cb.CallRef != "" {
		v += ";call=" + clean(cb.CallRef)
	}
	return v
}

func (c *bridged) runCallback(cb Callback) {
	e := c.e
	defer e.wg.Done()
	defer e.remove(c)
	defer c.cancel()
	outcome := "failed"
	defer func() { e.m.calls.WithLabelValues("callback", outcome).Inc() }()

	ruri, err := e.proxyURI(cb.Line)
	if err != nil {
		return
	}
	op, err := e.dg.NewDialog(ruri, diago.NewDialogOptions{Transport: "udp"})
	if err != nil {
		return
	}
	cid := sipmsg.CallIDHeader(c.id)
	hdrs := []sipmsg.Header{e.fromHeader("", cb.Number), &cid, sipmsg.NewHeader(headerLeg, legValue(cb))}
	opMed, err := op.Invite(c.ctx, diago.InviteClientOptions{Headers: hdrs})
	if err != nil {
		op.Close()
		code, _ := responseStatus(err)
		e.log.Info("b2bua: callback operator leg not answered", "call_id", c.id, "operator", cb.Operator, "status", code)
		outcome = "operator-unanswered"
		return
	}
	if err := op.Ack(c.ctx); err != nil {
		e.log.Warn("b2bua: operator ACK failed", "call_id", c.id, "err", err)
	}

	// The operator is on the line: dial the customer, and give up if he hangs up first.
	t := *e.cfg.trunk
	var turi sipmsg.Uri
	if err := sipmsg.ParseUri(t.URI, &turi); err != nil {
		e.log.Warn("b2bua: trunk URI", "uri", t.URI, "err", err)
		c.hangup(op)
		return
	}
	turi.User = cb.Number
	cust, err := e.dg.NewDialog(turi, diago.NewDialogOptions{})
	if err != nil {
		c.hangup(op)
		return
	}
	// The customer's leg ends when the operator hangs up, or when it has rung long
	// enough (reported as 408, the trunk having given no final answer).
	cctx, ccancel := context.WithTimeout(c.ctx, e.cfg.customerRing)
	defer ccancel()
	go func() {
		select {
		case <-op.Context().Done():
			ccancel()
		case <-cctx.Done():
		}
	}()
	fromUser := t.From
	if fromUser == "" {
		fromUser = cb.Line
	}
	// The operator hears the customer's phone ring from the first 180 or 183 (early
	// media from the trunk is not relayed: the ringback is the desk's own). sipgo
	// calls OnResponse on this goroutine, inside Invite, so ring needs no lock.
	var ring *player
	onResponse := func(res *sipmsg.Response) error {
		if ring == nil && (res.StatusCode == sipmsg.StatusRinging || res.StatusCode == sipmsg.StatusSessionInProgress) {
			ring = play(opMed, ringbackTone)
		}
		return nil
	}
	custMed, err := cust.Invite(cctx, diago.InviteClientOptions{Username: t.Username, Password: t.Password,
		Headers: []sipmsg.Header{e.fromHeader("", fromUser)}, OnResponse: onResponse})
	ring.stop()
	if err != nil {
		cust.Close()
		code, _ := responseStatus(err)
		if code == 0 && errors.Is(cctx.Err(), context.DeadlineExceeded) {
			code = sipmsg.StatusRequestTimeout // rang for the whole ring timeout
		}
		e.log.Info("b2bua: callback customer not answered", "call_id", c.id, "status", code)
		outcome = "customer-unanswered"
		// Only a final answer (or our ring timeout) is a status to report: 0 is
		// our own cancel (the operator hung up, the bridge closed).
		if e.cfg.onCallbackFailed != nil && code >= 300 {
			e.cfg.onCallbackFailed(c.id, code)
		}
		if code == sipmsg.StatusBusyHere || code == sipmsg.StatusGlobalBusyEverywhere {
			// A busy customer: the operator hears it before his phone is hung up.
			busy := play(opMed, busyTone)
			select {
			case <-time.After(busyFor):
			case <-op.Context().Done():
			case <-c.ctx.Done(): // the bridge is closing
			}
			busy.stop()
		}
		c.hangup(op)
		return
	}
	if err := cust.Ack(cctx); err != nil {
		e.log.Warn("b2bua: customer ACK failed", "call_id", c.id, "err", err)
	}
	outcome = "answered"
	if e.cfg.onCallback != nil {
		e.cfg.onCallback(c.id, cb.Promise)
	}
	// The customer takes the caller's place: left channel, heard as the caller.
	c.run(e.startRecording(c.id, cb.Record), side{cust, custMed, roleCaller, "customer"}, side{op, opMed, roleOperator, "operator"})
}
