package sip

import (
	"strings"

	sipmsg "github.com/emiago/sipgo/sip"
)

// messageSize is the size of a parsed request as it came, give or take the
// separators the parser dropped: start line, headers, blank line and body.
func messageSize(req *sipmsg.Request) int {
	n := len(req.Method) + len(req.Recipient.String()) + len(req.SipVersion) + 4
	for _, h := range req.Headers() {
		n += len(h.Name()) + len(h.Value()) + 4
	}
	return n + 2 + len(req.Body())
}

// singleHeaders may appear once in a request (RFC 3261 7.3.1: they are not lists).
var singleHeaders = []string{"To", "From", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type", "Expires", "Date"}

// validateRequest applies the checks sipgo's parser leaves to the application, the
// ones RFC 4475 exercises: it returns the status and reason to answer, or 0 when the
// request is acceptable. 505 for another SIP version; 400 for a missing or repeated
// mandatory header, a CSeq naming another method, a Request-URI with headers, a Date
// not in GMT, a Contact URI with headers, or a body shorter
// or longer than Content-Length; 420 when Proxy-Require asks for an extension (we
// support none).
func validateRequest(req *sipmsg.Request) (int, string) {
	if !strings.EqualFold(req.SipVersion, "SIP/2.0") {
		return 505, "Version Not Supported"
	}
	for _, name := range []string{"To", "From", "Call-ID", "CSeq", "Via"} {
		if req.GetHeader(name) == nil {
			return 400, "Missing " + name
		}
	}
	if req.From() == nil || req.To() == nil || req.CSeq() == nil || req.Via() == nil || req.CallID() == nil {
		return 400, "Bad Header"
	}
	for _, name := range singleHeaders {
		if len(req.GetHeaders(name)) > 1 {
			return 400, "Repeated " + name
		}
	}
	cseq := req.CSeq()
	if !strings.EqualFold(string(cseq.MethodName), string(req.Method)) {
		return 400, "CSeq Method Mismatch"
	}
	if req.Recipient.Headers != nil && req.Recipient.Headers.Length() > 0 {
		return 400, "Headers In Request-URI"
	}
	if d := req.GetHeader("Date"); d != nil && !strings.HasSuffix(strings.TrimSpace(d.Value()), " GMT") {
		return 400, "Bad Date"
	}
	for _, h := range req.GetHeaders("Contact") {
		// A Contact URI carrying headers (RFC 4475 regbadct, regescrt) would have
		// us write them into requests to that phone; refuse it.
		if c, ok := h.(*sipmsg.ContactHeader); ok && c.Address.Headers != nil && c.Address.Headers.Length() > 0 {
			return 400, "Bad Contact"
		}
		if strings.Contains(h.Value(), "?") && !strings.Contains(h.Value(), "<") {
			return 400, "Bad Contact"
		}
	}
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(req.Body()) {
		return 400, "Content-Length Mismatch"
	}
	if h := req.GetHeader("Proxy-Require"); h != nil && !req.IsAck() && req.Method != sipmsg.CANCEL {
		return 420, "Bad Extension"
	}
	return 0, ""
}

// unsupportedOf lists the option tags of Require/Proxy-Require for a 420's Unsupported.
func unsupportedOf(req *sipmsg.Request, names ...string) string {
	var tags []string
	for _, n := range names {
		for _, h := range req.GetHeaders(n) {
			for _, t := range strings.Split(h.Value(), ",") {
				if t = strings.TrimSpace(t); t != "" {
					tags = append(tags, t)
				}
			}
		}
	}
	return sanitizeHeaderValue(strings.Join(tags, ", "))
}

// sanitizeResponse strips control characters from every header of a response built
// from a request that carried them (RFC 4475 allows NUL, BEL and DEL as quoted pairs
// in a display name): the peer gets an answer, and nothing it sent is echoed raw.
func sanitizeResponse(res *sipmsg.Response) {
	all := append([]sipmsg.Header(nil), res.Headers()...)
	dirty := false
	for _, h := range all {
		if strings.IndexFunc(h.Value(), isCtl) >= 0 || strings.IndexFunc(h.Name(), isCtl) >= 0 {
			dirty = true
			break
		}
	}
	if !dirty {
		return
	}
	for _, h := range all {
		for res.RemoveHeader(h.Name()) {
		}
	}
	for _, h := range all {
		if strings.IndexFunc(h.Value(), isCtl) >= 0 || strings.IndexFunc(h.Name(), isCtl) >= 0 {
			// Replaced by a space, not dropped: a quoted pair (\<NUL>) stays a
			// quoted pair instead of escaping the closing quote.
			h = sipmsg.NewHeader(sanitizeHeaderValue(h.Name()), ctlToSpace(h.Value()))
		}
		res.AppendHeader(h)
	}
}

func ctlToSpace(v string) string {
	return strings.Map(func(r rune) rune {
		if isCtl(r) {
			return ' '
		}
		return r
	}, v)
}
