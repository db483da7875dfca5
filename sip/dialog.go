package sip

import (
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// handleAck forwards the ACK of a 2xx statelessly along its Route set. An ACK for a
// non-2xx is absorbed by the transaction layer and never reaches here.
func (s *Server) handleAck(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if r := req.Route(); r != nil && s.isOurs(r.Address) {
		s.forwardInDialog(req, tx)
		return
	}
	if !s.isOurs(req.Recipient) {
		// Route-less ACK to a foreign target: no relay, and ACK gets no answer.
		s.log.Debug("sip ACK dropped", "ruri", req.Recipient.Host, "source", req.Source())
	}
}

// handleBye relays a BYE along its Route set and reports who ended the call.
func (s *Server) handleBye(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	r := req.Route()
	if r == nil || !s.isOurs(r.Address) {
		if !s.isOurs(req.Recipient) {
			s.log.Warn("sip relay denied", "method", req.Method, "ruri", req.Recipient.Host, "source", req.Source())
			s.respond(req, tx, 403, "Relay Denied")
			return
		}
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	by := s.byeBy(req)
	status := s.forwardInDialog(req, tx)
	if status == 483 || status == 403 {
		// Refused here, not relayed: the call, if any, goes on.
		return
	}
	callID := ""
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	di, _ := s.dialogs.remove(callID)
	if di.quiet {
		return
	}
	s.emit(CallEvent{Kind: EventEnded, CallID: callID, Target: di.target, Status: status, By: by})
}

// byeBy applies the rule documented on Server: From tag against the dialog's caller
// tag when we remember the dialog, else the packet source against registered phones.
func (s *Server) byeBy(req *sipmsg.Request) string {
	var callID, tag string
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	if f := req.From(); f != nil {
		tag, _ = f.Params.Get("tag")
	}
	if di, ok := s.dialogs.get(callID); ok {
		if tag == di.callerTag {
			return "caller"
		}
		return "operator"
	}
	if _, ok := s.cache.bySource(req.Source(), time.Now()); ok {
		return "operator"
	}
	return "caller"
}

func (s *Server) emit(ev CallEvent) {
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	s.h.CallEvent(ev)
}
