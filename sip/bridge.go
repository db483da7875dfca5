package sip

import (
	"net"
	"strconv"
	"strings"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// The proxy and the media bridge (sip/b2bua) speak SIP to each other; these headers
// carry what the desk decided. They are believed only between the two (WithBridge),
// and stripped from anything else the proxy forwards.
const (
	// HeaderLeg names a bridge leg: "operator", "monitor" or
	// "callback;operator=LOGIN;promise=ID;call=ID".
	HeaderLeg = "X-Desk-Leg"
	// HeaderRecord asks the bridge to record the call: the retention in seconds.
	HeaderRecord = "X-Desk-Record"
)

var bridgeHeaders = []string{HeaderLeg, HeaderRecord}

// bridgeRing bounds how long a call handed to the bridge may stay unanswered: the
// bridge rings and hunts the operators itself with the desk's ring timeout, so this is
// only a backstop, well above any sensible hunt.
const bridgeRing = 10 * time.Minute

// toBridge turns a media decision into a ring of the bridge: one fork to the bridge's
// address with the dialled user kept, so the bridge knows the line.
func (s *Server) toBridge(base *sipmsg.Request, inv Invite, dec Decision) Decision {
	if dec.Record {
		sec := int(dec.Retention / time.Second)
		if sec <= 0 {
			sec = 1
		}
		base.AppendHeader(sipmsg.NewHeader(HeaderRecord, strconv.Itoa(sec)))
	}
	host, port, _ := net.SplitHostPort(s.cfg.bridge)
	contact := (&sipmsg.Uri{Scheme: "sip", User: inv.Dialled, Host: host, Port: atoi(port)}).String()
	return Decision{
		Target:      "media-bridge", // a label only: quiet calls report nothing
		RingTimeout: bridgeRing,
		Contacts:    []Binding{{Contact: contact, Source: s.cfg.bridge, Transport: "udp"}},
		Quiet:       true,
	}
}

func atoi(v string) int {
	n, _ := strconv.Atoi(v)
	return n
}

// parseLeg reads the X-Desk-Leg header of a request from the bridge.
func parseLeg(req *sipmsg.Request) (leg, operator, promise, callRef string) {
	h := req.GetHeader(HeaderLeg)
	if h == nil {
		return "", "", "", ""
	}
	parts := strings.Split(sanitizeHeaderValue(h.Value()), ";")
	leg = strings.ToLower(strings.TrimSpace(parts[0]))
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(k) {
		case "operator":
			operator = truncate(v, 64)
		case "promise":
			promise = truncate(v, 64)
		case "call":
			callRef = truncate(v, 64)
		}
	}
	switch leg {
	case LegOperator, LegMonitor, LegCallback:
		return leg, operator, promise, callRef
	}
	return "", "", "", ""
}
