package sip

import (
	"net"
	"strconv"
	"strings"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// sanitizeHeaderValue strips CR, LF and other control characters from text that came
// from somewhere else (a store, a peer's header) before it is written into a header,
// so nobody can inject headers or split a message (cf. GHSA-chcx-pf5f-wxc7).
func sanitizeHeaderValue(v string) string {
	if strings.IndexFunc(v, isCtl) < 0 {
		return v
	}
	var b strings.Builder
	for _, r := range v {
		if isCtl(r) {
			if r == '\t' {
				b.WriteByte(' ')
			}
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isCtl(r rune) bool { return r < 0x20 || r == 0x7f }

// sanitizeToken is sanitizeHeaderValue for text placed inside a quoted string.
func sanitizeToken(v string) string {
	return strings.NewReplacer(`"`, "", `\`, "").Replace(sanitizeHeaderValue(v))
}

// sanitizeHost keeps only what may stand in a host (name, IPv4, bracketed IPv6) of a
// URI we write into Via and Record-Route: letters, digits, '.', '-', ':', '[' and ']'.
func sanitizeHost(v string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		case r == '.' || r == '-' || r == ':' || r == '[' || r == ']':
			return r
		}
		return -1
	}, v)
}

// transportOf maps "udp"/"tcp" to sipgo's upper-case transport names.
func transportOf(t string) string {
	if strings.EqualFold(t, "tcp") {
		return "TCP"
	}
	return "UDP"
}

// prepareForward readies a clone of an incoming request for forwarding: it stamps
// received/rport on the sender's Via (RFC 3261 18.2.1, RFC 3581) so responses find
// their way back even statelessly, and decrements Max-Forwards. ok is false when
// Max-Forwards is exhausted (the caller answers 483).
func prepareForward(req *sipmsg.Request) (*sipmsg.Request, bool) {
	fwd := req.Clone()
	if via := fwd.Via(); via != nil {
		if h, p, err := net.SplitHostPort(req.Source()); err == nil {
			if via.Host != h {
				via.Params.Add("received", h)
			}
			if v, ok := via.Params.Get("rport"); ok && v == "" {
				via.Params.Add("rport", p)
			}
		}
	}
	if mf := fwd.MaxForwards(); mf != nil {
		if mf.Val() == 0 {
			return nil, false
		}
		mf.Dec()
	} else {
		m := sipmsg.MaxForwardsHeader(69)
		fwd.AppendHeader(&m)
	}
	return fwd, true
}

// stampOutgoing adds our Via and points the request at dest over transport.
func (s *Server) stampOutgoing(fwd *sipmsg.Request, transport, dest string) {
	via := &sipmsg.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       transport,
		Host:            s.host,
		Port:            s.port,
		Params:          sipmsg.NewParams(),
	}
	via.Params.Add("branch", sipmsg.GenerateBranchN(16))
	fwd.PrependHeader(via)
	fwd.SetTransport(transport)
	fwd.SetDestination(dest)
	fwd.Laddr = sipmsg.Addr{}
	if transport == "UDP" {
		// Send from the listening socket so replies and NAT pinholes match our Via.
		s.mu.Lock()
		if s.udp != nil {
			if ua, ok := s.udp.LocalAddr().(*net.UDPAddr); ok {
				fwd.Laddr = sipmsg.Addr{IP: ua.IP, Port: ua.Port, Hostname: ua.IP.String()}
			}
		}
		s.mu.Unlock()
	}
}

// recordRoute returns our Record-Route value for one transport side.
func (s *Server) recordRoute(transport string) *sipmsg.RecordRouteHeader {
	u := sipmsg.Uri{Scheme: "sip", Host: s.host, Port: s.port, UriParams: sipmsg.NewParams()}
	if s.cfg.front != "" {
		// Behind a front the dialog comes back through it; dn tells it which node
		// handled the call, so it prefers this one while it lives (WithFront).
		u.Host, u.Port = s.cfg.frontHost, s.cfg.frontPort
		u.UriParams.Add("dn", net.JoinHostPort(s.host, strconv.Itoa(s.port)))
	}
	if transport == "TCP" {
		u.UriParams.Add("transport", "tcp")
	}
	u.UriParams.Add("lr", "")
	return &sipmsg.RecordRouteHeader{Address: u}
}

// popOwnRoutes removes the Route entries naming us from the top of the request.
func (s *Server) popOwnRoutes(req *sipmsg.Request) (popped bool) {
	for {
		r := req.Route()
		if r == nil || !s.isOurs(r.Address) {
			return popped
		}
		req.RemoveHeader("Route")
		popped = true
	}
}

// nextHop decides where a loose-routed request goes after our Route entries are
// gone: the next Route, else the Request-URI; a Request-URI that is a registered
// Contact goes to that binding's source (NAT), as the INVITE did.
//
// Behind a front (WithFront) every such request goes to the front, which relays it
// by the same rules: the phones and trunks are on its side, and a phone behind a
// NAT lets in only what comes from the address it registered with.
func (s *Server) nextHop(req *sipmsg.Request) (transport, dest string) {
	if s.cfg.front != "" {
		return "UDP", net.JoinHostPort(s.cfg.frontHost, strconv.Itoa(s.cfg.frontPort))
	}
	u := req.Recipient
	if r := req.Route(); r != nil {
		u = r.Address
	} else if b, ok := s.cache.byContact(hostPort(u), u.User, time.Now()); ok {
		return transportOf(b.Transport), b.Source
	}
	transport = "UDP"
	if t, ok := u.UriParams.Get("transport"); ok {
		transport = transportOf(t)
	}
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return transport, net.JoinHostPort(strings.Trim(u.Host, "[]"), strconv.Itoa(port))
}

func hostPort(u sipmsg.Uri) string {
	p := u.Port
	if p == 0 {
		p = 5060
	}
	return net.JoinHostPort(strings.Trim(strings.ToLower(u.Host), "[]"), strconv.Itoa(p))
}

// contactKey gives user and host:port of a stored Contact URI.
func contactKey(contact string) (user, hp string, ok bool) {
	var u sipmsg.Uri
	if err := sipmsg.ParseUri(strings.Trim(contact, "<>"), &u); err != nil {
		return "", "", false
	}
	return u.User, hostPort(u), true
}

// upstream is where responses to an incoming request go: the address sipgo resolved
// for the server transaction (source IP, Via or rport port).
func upstream(req *sipmsg.Request) string {
	return sipmsg.NewResponseFromRequest(req, 100, "Trying", nil).Destination()
}

// relayResponse sends a downstream response upstream through the server transaction,
// without our Via.
func (s *Server) relayResponse(req *sipmsg.Request, tx sipmsg.ServerTransaction, dest string, res *sipmsg.Response) error {
	up := res.Clone()
	up.RemoveHeader("Via")
	up.SetTransport(req.Transport())
	up.SetDestination(dest)
	return tx.Respond(up)
}

// forwardInDialog loose-routes a request carrying our Route (ACK, BYE, re-INVITE,
// UPDATE, INFO, ...): it needs nothing but the headers, so it works after a restart.
// It returns the final response relayed, or 0 when none came.
func (s *Server) forwardInDialog(req *sipmsg.Request, tx sipmsg.ServerTransaction) int {
	fwd, ok := prepareForward(req)
	if !ok {
		if !req.IsAck() {
			s.respond(req, tx, 483, "Too Many Hops")
		}
		return 483
	}
	s.popOwnRoutes(fwd)
	if fwd.Route() == nil && s.isOurs(fwd.Recipient) {
		// Nothing left to route to but ourselves: not a dialog we are part of.
		if !req.IsAck() {
			s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		}
		return 481
	}
	transport, dest := s.nextHop(fwd)
	if !s.destAllowed(dest) {
		if !req.IsAck() {
			s.respond(req, tx, 403, "Forbidden")
		}
		return 403
	}
	s.stampOutgoing(fwd, transport, dest)
	if req.IsAck() {
		if err := s.ua.TransportLayer().WriteMsg(fwd); err != nil {
			s.log.Warn("sip ACK relay failed", "dest", dest, "error", err)
		}
		return 0
	}
	return s.runClientTx(req, tx, fwd)
}
