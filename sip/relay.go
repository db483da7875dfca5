package sip

import (
	"context"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// connectTimeout bounds opening a connection to the next hop.
const connectTimeout = 10 * time.Second

// runClientTx sends fwd as a client transaction and relays every response but 100
// upstream until the final one, whose status it returns (a local 408 or 503 when the
// next hop never answered).
func (s *Server) runClientTx(req *sipmsg.Request, tx sipmsg.ServerTransaction, fwd *sipmsg.Request) int {
	updest := upstream(req)
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	clientTx, err := s.ua.TransactionLayer().Request(ctx, fwd)
	cancel()
	if err != nil {
		s.log.Warn("sip forward failed", "method", req.Method, "dest", fwd.Destination(), "error", err)
		s.respond(req, tx, 503, "Service Unavailable")
		return 503
	}
	defer clientTx.Terminate()
	for {
		select {
		case res := <-clientTx.Responses():
			if res.StatusCode == 100 {
				continue
			}
			if err := s.relayResponse(req, tx, updest, res); err != nil {
				s.log.Warn("sip relay response failed", "status", res.StatusCode, "error", err)
			}
			if !res.IsProvisional() {
				return res.StatusCode
			}
		case <-clientTx.Done():
			s.respond(req, tx, 408, "Request Timeout")
			return 408
		}
	}
}
