package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// inviteCall is one incoming INVITE being proxied, across all the targets it hunts.
type inviteCall struct {
	req       *sipmsg.Request
	tx        sipmsg.ServerTransaction
	updest    string
	callID    string
	callerTag string
	canceled  chan struct{}
	quiet     bool // handed to the media bridge, or a supervisor leg: no CallEvents
}

// emit reports ev unless the call is quiet (Decision.Quiet or Media).
func (c *inviteCall) emit(s *Server, ev CallEvent) {
	if !c.quiet {
		s.emit(ev)
	}
}

type ringOutcome int

const (
	ringAnswered ringOutcome = iota + 1
	ringFailed
	ringCanceled
)

func (s *Server) handleInvite(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if tag, _ := toTag(req); tag != "" {
		// re-INVITE inside a dialog: loose-route it like any in-dialog request.
		if r := req.Route(); r != nil && s.isOurs(r.Address) {
			s.forwardInDialog(req, tx)
			return
		}
		if !s.isOurs(req.Recipient) {
			s.respond(req, tx, 403, "Relay Denied")
			return
		}
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	s.inflight.Add(1)
	defer s.inflight.Add(-1)

	src := req.Source()
	if s.draining.Load() {
		s.metrics.invites.WithLabelValues("draining").Inc()
		s.respond(req, tx, 503, "Service Unavailable", sipmsg.NewHeader("Retry-After", strconv.Itoa(s.cfg.retryAfter)))
		return
	}
	if !s.isOurs(req.Recipient) {
		s.metrics.invites.WithLabelValues("relay_denied").Inc()
		s.log.Warn("sip relay denied", "method", req.Method, "ruri", sanitizeHeaderValue(req.Recipient.Host), "source", src)
		s.respond(req, tx, 403, "Relay Denied")
		return
	}
	base, ok := prepareForward(req)
	if !ok {
		s.metrics.invites.WithLabelValues("rejected").Inc()
		s.respond(req, tx, 483, "Too Many Hops")
		return
	}
	s.popOwnRoutes(base)
	base.RemoveHeader("Proxy-Authorization")
	fromBridge := s.fromBridge(src)
	for _, h := range bridgeHeaders {
		// Only the bridge may speak to the bridge, and phones need none of it.
		base.RemoveHeader(h)
	}

	call := &inviteCall{req: req, tx: tx, updest: upstream(req), canceled: make(chan struct{})}
	if h := req.CallID(); h != nil {
		call.callID = h.Value()
	}
	if f := req.From(); f != nil {
		call.callerTag, _ = f.Params.Get("tag")
	}
	var once sync.Once
	if !tx.OnCancel(func(*sipmsg.Request) { once.Do(func() { close(call.canceled) }) }) {
		// Cancelled or gone before we started: the transaction layer answered already.
		s.metrics.invites.WithLabelValues("cancelled").Inc()
		s.emit(CallEvent{Kind: EventMissed, CallID: call.callID, Status: 487})
		return
	}

	// 100 at once, before the route decision reads Redis: a front (dispatcher) that
	// hears nothing within its timer tries another node while this one rings.
	s.respond(req, tx, 100, "Trying")
	inv := s.buildInvite(req)
	if fromBridge {
		inv.Leg, inv.Operator, inv.Promise, inv.CallRef = parseLeg(req)
	}
	lastTarget := ""
	for attempt := 0; ; attempt++ {
		select {
		case <-call.canceled:
			s.metrics.invites.WithLabelValues("cancelled").Inc()
			call.emit(s, CallEvent{Kind: EventMissed, CallID: call.callID, Target: lastTarget, Status: 487})
			return
		default:
		}
		dec := s.route(inv)
		if dec.Media && dec.Status == 0 {
			if fromBridge || s.cfg.bridge == "" {
				// A bridge leg must not loop back to the bridge; without one, say so.
				dec = Decision{Status: 503, Reason: "Media Bridge Unavailable"}
			} else {
				dec = s.toBridge(base, inv, dec)
				call.quiet = true
			}
		}
		if dec.Quiet {
			call.quiet = true
		}
		if dec.Status == 0 && dec.Target != "" && len(dec.Contacts) == 0 {
			dec.Contacts = s.cache.get(dec.Target, time.Now())
		}
		if dec.Status == 0 && (dec.Target == "" || attempt >= s.cfg.maxHunts) {
			dec.Status = 480
		}
		if dec.Status != 0 {
			reason := sanitizeHeaderValue(dec.Reason)
			if reason == "" {
				reason = statusText(dec.Status)
			}
			if dec.Status < 300 || dec.Status > 699 {
				dec.Status, reason = 500, statusText(500)
			}
			s.metrics.invites.WithLabelValues("missed").Inc()
			s.respond(req, tx, dec.Status, reason)
			call.emit(s, CallEvent{Kind: EventMissed, CallID: call.callID, Target: lastTarget, Status: dec.Status})
			return
		}
		lastTarget = dec.Target
		outcome, status := s.ring(call, base, dec)
		switch outcome {
		case ringAnswered:
			s.metrics.invites.WithLabelValues("answered").Inc()
			return
		case ringCanceled:
			s.metrics.invites.WithLabelValues("cancelled").Inc()
			call.emit(s, CallEvent{Kind: EventTargetFailed, CallID: call.callID, Target: dec.Target, Status: 487})
			call.emit(s, CallEvent{Kind: EventMissed, CallID: call.callID, Target: dec.Target, Status: 487})
			return
		default:
			if call.quiet {
				// The bridge hunted already, and a supervisor's phone has no stand-in:
				// the caller (or the bridge) gets the failure as it is.
				s.metrics.invites.WithLabelValues("missed").Inc()
				s.respond(req, tx, status, statusText(status))
				return
			}
			s.emit(CallEvent{Kind: EventTargetFailed, CallID: call.callID, Target: dec.Target, Status: status})
			inv.Tried = append(append([]string(nil), inv.Tried...), dec.Target)
		}
	}
}

func toTag(req *sipmsg.Request) (string, bool) {
	if t := req.To(); t != nil {
		return t.Params.Get("tag")
	}
	return "", false
}

func (s *Server) route(inv Invite) Decision {
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	return s.h.Route(ctx, inv)
}

// buildInvite describes the call for the Handler. P-Asserted-Identity is believed only
// from trusted trunks; anybody else could put any number there.
func (s *Server) buildInvite(req *sipmsg.Request) Invite {
	inv := Invite{
		Dialled:   sanitizeHeaderValue(req.Recipient.User),
		Source:    req.Source(),
		Transport: strings.ToLower(req.Transport()),
	}
	if h := req.CallID(); h != nil {
		inv.CallID = h.Value()
	}
	if f := req.From(); f != nil {
		inv.Caller = f.Address.User
		inv.CallerName = f.DisplayName
	}
	if s.trustedSource(inv.Source) {
		if pai := req.GetHeader("P-Asserted-Identity"); pai != nil {
			if name, user := parseIdentity(pai.Value()); user != "" {
				inv.Caller = user
				if name != "" {
					inv.CallerName = name
				}
			}
		}
	}
	inv.Caller = truncate(sanitizeHeaderValue(inv.Caller), 64)
	inv.CallerName = truncate(sanitizeHeaderValue(inv.CallerName), 128)
	return inv
}

// truncate cuts v to at most n bytes of valid UTF-8 (invalid bytes are dropped too).
func truncate(v string, n int) string {
	if len(v) > n {
		v = v[:n]
	}
	return strings.ToValidUTF8(v, "")
}

func (s *Server) trustedSource(src string) bool {
	ap, err := netip.ParseAddrPort(src)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range s.cfg.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseIdentity takes the first identity of a P-Asserted-Identity value
// (`"Name" <sip:user@host>` or `<tel:+7...>`) apart into display name and user.
func parseIdentity(v string) (name, user string) {
	v = strings.TrimSpace(firstIdentity(v))
	if i := strings.IndexByte(v, '<'); i >= 0 {
		name = strings.Trim(strings.TrimSpace(v[:i]), `"`)
		v = v[i+1:]
		if j := strings.IndexByte(v, '>'); j >= 0 {
			v = v[:j]
		}
	} else if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	lower := strings.ToLower(v)
	for _, p := range []string{"sips:", "sip:", "tel:"} {
		if strings.HasPrefix(lower, p) {
			v = v[len(p):]
			break
		}
	}
	if i := strings.IndexByte(v, '@'); i >= 0 {
		v = v[:i]
	}
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	user = strings.TrimSpace(v)
	if strings.ContainsAny(user, "<>\" \t,") {
		return name, "" // not an identity: the caller stays the From user
	}
	return name, user
}

// firstIdentity cuts a comma-separated identity list after its first entry, minding
// quoted display names and <...> URIs.
func firstIdentity(v string) string {
	quoted, inURI := false, false
	for i, r := range v {
		switch {
		case r == '"' && !inURI:
			quoted = !quoted
		case r == '<' && !quoted:
			inURI = true
		case r == '>' && !quoted:
			inURI = false
		case r == ',' && !quoted && !inURI:
			return v[:i]
		}
	}
	return v
}

// fork is the INVITE to one binding of the target.
type fork struct {
	s      *Server
	call   *inviteCall
	req    *sipmsg.Request
	tx     sipmsg.ClientTransaction
	cancel chan struct{}
	once   sync.Once
}

type forkMsg struct {
	f   *fork
	res *sipmsg.Response // nil: the transaction ended without a final response
}

func (f *fork) stop() { f.once.Do(func() { close(f.cancel) }) }

// ring forks the INVITE to every contact of the decision and waits for the first 2xx,
// all failures, the ring timeout (our Timer C) or the caller's CANCEL.
func (s *Server) ring(call *inviteCall, base *sipmsg.Request, dec Decision) (ringOutcome, int) {
	timeout := dec.RingTimeout
	if timeout <= 0 {
		timeout = s.cfg.ringTimeout
	}
	msgs := make(chan forkMsg)
	done := make(chan struct{})
	defer close(done)

	var forks []*fork
	for _, b := range dec.Contacts {
		f, err := s.startFork(call, base, b)
		if err != nil {
			s.log.Warn("sip fork failed", "target", dec.Target, "contact", sanitizeHeaderValue(b.Contact), "source", b.Source, "error", err)
			continue
		}
		forks = append(forks, f)
		go f.run(msgs, done)
	}
	if len(forks) == 0 {
		return ringFailed, 480
	}
	stopAll := func(except *fork) {
		for _, f := range forks {
			if f != except {
				f.stop()
			}
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	pending, best, rang := len(forks), 0, false
	for {
		select {
		case m := <-msgs:
			if m.res == nil {
				pending--
				best = betterStatus(best, 408)
				if pending == 0 {
					return ringFailed, best
				}
				continue
			}
			code := m.res.StatusCode
			switch {
			case code == 100:
			case code < 200:
				s.relay(call, m.res)
				if (code == 180 || code == 183) && !rang {
					rang = true
					call.emit(s, CallEvent{Kind: EventRinging, CallID: call.callID, Target: dec.Target, Status: code})
				}
			case code < 300:
				// Remember the dialog and report the answer before the caller can
				// see the 2xx, so a quick BYE always finds both.
				s.dialogs.add(call.callID, dialogInfo{callerTag: call.callerTag, target: dec.Target, created: time.Now(), quiet: call.quiet})
				call.emit(s, CallEvent{Kind: EventAnswered, CallID: call.callID, Target: dec.Target, Status: code})
				s.relay(call, m.res)
				stopAll(m.f)
				return ringAnswered, code
			default:
				pending--
				best = betterStatus(best, code)
				if pending == 0 {
					return ringFailed, best
				}
			}
		case <-timer.C:
			stopAll(nil)
			return ringFailed, 408
		case <-call.canceled:
			stopAll(nil)
			return ringCanceled, 487
		}
	}
}

// betterStatus picks the final status to report among the forks' (RFC 3261 16.7
// in short: a 6xx wins, else the lowest class).
func betterStatus(cur, code int) int {
	switch {
	case cur == 0:
		return code
	case cur >= 600:
		return cur
	case code >= 600:
		return code
	case code/100 < cur/100:
		return code
	}
	return cur
}

func (s *Server) relay(call *inviteCall, res *sipmsg.Response) {
	if err := s.relayResponse(call.req, call.tx, call.updest, res); err != nil {
		s.log.Warn("sip relay failed", "status", res.StatusCode, "call_id", call.callID, "error", err)
	}
}

// startFork sends the INVITE to one binding: R-URI is the registered Contact, but the
// packet goes to the address the REGISTER came from, so phones behind NAT are reached.
func (s *Server) startFork(call *inviteCall, base *sipmsg.Request, b Binding) (*fork, error) {
	// The Contact comes from the store: it becomes our Request-URI, so it must not
	// carry anything that could end the start line (CR, LF) or add headers.
	if sanitizeHeaderValue(b.Contact) != b.Contact {
		return nil, errors.New("stored contact has control characters")
	}
	var ruri sipmsg.Uri
	if err := sipmsg.ParseUri(strings.Trim(strings.TrimSpace(b.Contact), "<>"), &ruri); err != nil {
		return nil, err
	}
	if ruri.Headers != nil && ruri.Headers.Length() > 0 {
		return nil, errors.New("stored contact has URI headers")
	}
	out := transportOf(b.Transport)
	dest := s.forkDestination(out, b, ruri)
	if !s.destAllowed(dest) {
		return nil, fmt.Errorf("destination %s not allowed", dest)
	}
	fwd := base.Clone()
	fwd.Recipient = ruri
	in := transportOf(call.req.Transport())
	if in != out {
		// Bridging transports: one entry per side (RFC 5658), the callee's on top.
		fwd.PrependHeader(s.recordRoute(in))
	}
	fwd.PrependHeader(s.recordRoute(out))
	s.stampOutgoing(fwd, out, dest)

	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	tx, err := s.ua.TransactionLayer().Request(ctx, fwd)
	if err != nil {
		return nil, err
	}
	// The phone retransmits its 2xx until the caller's ACK arrives; each copy must
	// reach the caller too.
	tx.OnRetransmission(func(r *sipmsg.Response) {
		if r.IsSuccess() {
			s.relay(call, r)
		}
	})
	return &fork{s: s, call: call, req: fwd, tx: tx, cancel: make(chan struct{})}, nil
}

// forkDestination picks where the INVITE goes. Over UDP that is always the REGISTER's
// source address (it is what a NAT lets back in). Over TCP the source is only usable
// while the phone's connection is open: a phone that registered and then closed its
// connection, or registered from another socket, is reached at its Contact address,
// as RFC 3261 section 18 would have it without outbound flows.
func (s *Server) forkDestination(transport string, b Binding, contact sipmsg.Uri) string {
	if transport == "UDP" || contact.Host == "" {
		return b.Source
	}
	if c, err := s.ua.TransportLayer().GetConnection(strings.ToLower(transport), b.Source); err == nil && c != nil {
		return b.Source
	}
	if _, err := netip.ParseAddr(strings.Trim(contact.Host, "[]")); err != nil {
		return b.Source // never resolve a name a phone put in its Contact
	}
	port := contact.Port
	if port == 0 {
		port = 5060
	}
	return net.JoinHostPort(strings.Trim(contact.Host, "[]"), strconv.Itoa(port))
}

// run reads the fork's responses until its final one, delivering them to ring while
// it listens. A CANCEL is sent once ring asks for it and a provisional has arrived
// (RFC 3261 9.1). A 2xx nobody wants any more is ACKed and hung up.
func (f *fork) run(msgs chan<- forkMsg, done <-chan struct{}) {
	deliver := func(m forkMsg) bool {
		select {
		case msgs <- m:
			return true
		case <-done:
			return false
		}
	}
	provisional, wantCancel := false, false
	cancelCh := f.cancel
	for {
		select {
		case res := <-f.tx.Responses():
			if res.IsProvisional() && !provisional {
				provisional = true
				if wantCancel {
					f.sendCancel()
				}
			}
			if !deliver(forkMsg{f: f, res: res}) && res.IsSuccess() {
				f.hangupStray(res)
			}
			if !res.IsProvisional() {
				return
			}
		case <-cancelCh:
			cancelCh = nil
			wantCancel = true
			if provisional {
				f.sendCancel()
			}
		case <-f.tx.Done():
			deliver(forkMsg{f: f})
			return
		}
	}
}

// sendCancel cancels the forked INVITE: same R-URI, top Via (branch), Call-ID, From,
// To and CSeq number as the INVITE, as RFC 3261 9.1 requires.
func (f *fork) sendCancel() {
	inv := f.req
	c := sipmsg.NewRequest(sipmsg.CANCEL, *inv.Recipient.Clone())
	c.AppendHeader(sipmsg.HeaderClone(inv.Via()))
	c.AppendHeader(sipmsg.HeaderClone(inv.From()))
	c.AppendHeader(sipmsg.HeaderClone(inv.To()))
	c.AppendHeader(sipmsg.HeaderClone(inv.CallID()))
	c.AppendHeader(&sipmsg.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sipmsg.CANCEL})
	mf := sipmsg.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.SetBody(nil)
	c.SetTransport(inv.Transport())
	c.SetDestination(inv.Destination())
	c.Laddr = inv.Laddr
	f.s.sendAndForget(c)
}

// hangupStray ends a dialog a fork set up after the call went elsewhere: ACK the 2xx,
// then BYE, both straight to the phone.
func (f *fork) hangupStray(res *sipmsg.Response) {
	inv := f.req
	target := inv.Recipient
	if c := res.Contact(); c != nil {
		target = c.Address
	}
	mk := func(m sipmsg.RequestMethod, seq uint32) *sipmsg.Request {
		r := sipmsg.NewRequest(m, *target.Clone())
		r.AppendHeader(sipmsg.HeaderClone(inv.From()))
		r.AppendHeader(sipmsg.HeaderClone(res.To()))
		r.AppendHeader(sipmsg.HeaderClone(inv.CallID()))
		r.AppendHeader(&sipmsg.CSeqHeader{SeqNo: seq, MethodName: m})
		mf := sipmsg.MaxForwardsHeader(70)
		r.AppendHeader(&mf)
		r.SetBody(nil)
		f.s.stampOutgoing(r, inv.Transport(), inv.Destination())
		return r
	}
	if res.To() == nil || inv.CSeq() == nil {
		return
	}
	seq := inv.CSeq().SeqNo
	if err := f.s.ua.TransportLayer().WriteMsg(mk(sipmsg.ACK, seq)); err != nil {
		f.s.log.Warn("sip stray ACK failed", "error", err)
	}
	f.s.sendAndForget(mk(sipmsg.BYE, seq+1))
}

// sendAndForget runs a client transaction whose outcome does not matter beyond
// keeping the transaction alive for its retransmissions.
func (s *Server) sendAndForget(req *sipmsg.Request) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	tx, err := s.ua.TransactionLayer().Request(ctx, req)
	if err != nil {
		s.log.Warn("sip send failed", "method", req.Method, "dest", req.Destination(), "error", err)
		return
	}
	go func() {
		defer tx.Terminate()
		timeout := time.NewTimer(sipmsg.Timer_F)
		defer timeout.Stop()
		for {
			select {
			case res := <-tx.Responses():
				if !res.IsProvisional() {
					return
				}
			case <-tx.Done():
				return
			case <-timeout.C:
				return
			}
		}
	}()
}

func statusText(code int) string {
	switch code {
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	case 600:
		return "Busy Everywhere"
	case 603:
		return "Decline"
	}
	return "Error"
}
