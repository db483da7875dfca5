package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// handlerTimeout bounds each Handler call on the SIP path.
const handlerTimeout = 2 * time.Second

// dummyHA1 is checked against when the user does not exist, so an unknown login costs
// the same work and gets the same 403 as a wrong password.
var dummyHA1 = md5hex("no-such-user", "no-realm", "no-password")

func (s *Server) handleRegister(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	src := req.Source()
	to := req.To()
	if to == nil || req.CallID() == nil || req.CSeq() == nil {
		s.metrics.registrations.WithLabelValues("bad_request").Inc()
		s.respond(req, tx, 400, "Bad Request")
		return
	}
	if !s.isOurs(req.Recipient) && !strings.EqualFold(req.Recipient.Host, s.cfg.domain) {
		s.metrics.registrations.WithLabelValues("forbidden").Inc()
		s.log.Warn("sip register for foreign domain", "domain", req.Recipient.Host, "source", src)
		s.respond(req, tx, 403, "Forbidden")
		return
	}
	user := to.Address.User
	if s.authThrottled(src, user) {
		// Past the failure limit: no digest work, no store lookup.
		s.metrics.registrations.WithLabelValues("forbidden").Inc()
		s.metrics.authFailures.WithLabelValues("throttled").Inc()
		s.log.Warn("sip auth failure", "ip", hostOf(src), "source", src, "user", sanitizeHeaderValue(user), "reason", "throttled")
		s.respond(req, tx, 403, "Forbidden")
		return
	}
	authz := req.GetHeader("Authorization")
	if authz == nil {
		s.metrics.registrations.WithLabelValues("challenge").Inc()
		s.challenge(req, tx, false)
		return
	}
	if _, ok := digest.CutPrefix(authz.Value()); !ok {
		// Another scheme (RFC 4475 regaut01): offer ours.
		s.metrics.registrations.WithLabelValues("challenge").Inc()
		s.challenge(req, tx, false)
		return
	}
	cred, err := digest.ParseCredentials(authz.Value())
	if err != nil {
		s.metrics.registrations.WithLabelValues("bad_request").Inc()
		s.authFailure(src, user, "bad_request")
		s.respond(req, tx, 400, "Bad Request")
		return
	}
	if cred.Realm != s.nonces.realm {
		s.metrics.registrations.WithLabelValues("challenge").Inc()
		s.challenge(req, tx, false)
		return
	}
	stale, err := s.nonces.check(cred.Nonce)
	if err != nil {
		// Not a nonce of ours (forged, or issued before a restart with a per-process
		// key): challenge afresh. Not counted as a failure, or every phone of an
		// office would count one against its NAT address after each restart.
		s.metrics.registrations.WithLabelValues("challenge").Inc()
		s.log.Info("sip register bad nonce", "user", sanitizeHeaderValue(cred.Username), "source", src)
		s.challenge(req, tx, false)
		return
	}
	ha1, known, unavailable := s.lookupHA1(user)
	if unavailable {
		// Store down and this user never seen by this node: ask the phone to come
		// back rather than telling it its password is wrong.
		s.metrics.registrations.WithLabelValues("error").Inc()
		s.respond(req, tx, 503, "Service Unavailable", sipmsg.NewHeader("Retry-After", strconv.Itoa(s.cfg.retryAfter)))
		return
	}
	if !known {
		ha1 = dummyHA1
	}
	verr := verifyDigest(cred, ha1, string(req.Method))
	if !known || verr != nil || cred.Username != user || user == "" {
		reason := "bad_password"
		switch {
		case !known:
			reason = "unknown_user"
		case cred.Username != user:
			reason = "user_mismatch"
		}
		s.metrics.registrations.WithLabelValues("forbidden").Inc()
		s.authFailure(src, user, reason)
		s.respond(req, tx, 403, "Forbidden")
		return
	}
	if stale {
		s.metrics.registrations.WithLabelValues("stale").Inc()
		s.challenge(req, tx, true)
		return
	}
	if !s.abuse.replay.accept(user, cred.Nonce, uint64(max(cred.Nc, 0))) {
		s.metrics.registrations.WithLabelValues("challenge").Inc()
		s.authFailure(src, user, "replay")
		s.challenge(req, tx, false)
		return
	}
	s.register(req, tx, user)
}

// lookupHA1 asks the Handler, falling back to the last HA1 it gave for this user when
// the store is unreachable, so phones keep registering through a Redis outage.
func (s *Server) lookupHA1(user string) (ha1 string, known, unavailable bool) {
	if user == "" {
		return "", false, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	ha1, err := s.h.DigestHA1(ctx, user)
	switch {
	case err == nil && ha1 != "":
		ha1 = strings.ToLower(ha1)
		s.cache.putHA1(user, ha1)
		return ha1, true, false
	case errors.Is(err, ErrUnknownUser) || (err == nil && ha1 == ""):
		s.cache.forgetHA1(user)
		return "", false, false
	default:
		s.log.Warn("sip credentials lookup failed; using cached", "user", user, "error", err)
		ha1, ok := s.cache.getHA1(user)
		return ha1, ok, !ok
	}
}

func (s *Server) challenge(req *sipmsg.Request, tx sipmsg.ServerTransaction, stale bool) {
	s.respond(req, tx, 401, "Unauthorized", sipmsg.NewHeader("WWW-Authenticate", s.nonces.challenge(stale)))
}

// register applies the Contact headers of an authenticated REGISTER (RFC 3261 10.3).
func (s *Server) register(req *sipmsg.Request, tx sipmsg.ServerTransaction, user string) {
	now := time.Now()
	src := req.Source()
	callID := req.CallID().Value()
	cseq := req.CSeq().SeqNo

	defExpires := s.cfg.maxExpires
	if h := req.GetHeader("Expires"); h != nil {
		v, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || v < 0 {
			s.metrics.registrations.WithLabelValues("bad_request").Inc()
			s.respond(req, tx, 400, "Bad Expires")
			return
		}
		defExpires = v
	}

	current := s.currentBindings(user)
	var contacts []*sipmsg.ContactHeader
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sipmsg.ContactHeader)
		if !ok {
			s.respond(req, tx, 400, "Bad Contact")
			return
		}
		contacts = append(contacts, c)
	}

	next := current
	changed := false
	for _, c := range contacts {
		if c.Address.Wildcard {
			if len(contacts) != 1 || defExpires != 0 {
				s.metrics.registrations.WithLabelValues("bad_request").Inc()
				s.respond(req, tx, 400, "Wildcard Contact Needs Expires 0")
				return
			}
			next, changed = nil, true
			break
		}
		exp := defExpires
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				s.respond(req, tx, 400, "Bad Expires")
				return
			}
			exp = n
		}
		if exp != 0 && exp < s.cfg.minExpires {
			s.metrics.registrations.WithLabelValues("too_brief").Inc()
			s.respond(req, tx, 423, "Interval Too Brief",
				sipmsg.NewHeader("Min-Expires", strconv.Itoa(s.cfg.minExpires)))
			return
		}
		exp = min(exp, s.cfg.maxExpires)
		uri := sanitizeHeaderValue(c.Address.String())
		kept := next[:0:0]
		for _, b := range next {
			// The same Contact, or an older binding from the same registration
			// session (Call-ID) whose address moved, is replaced.
			if b.Contact == uri || (b.CallID == callID && b.CSeq < cseq) {
				continue
			}
			kept = append(kept, b)
		}
		next, changed = kept, true
		if exp == 0 {
			continue
		}
		next = append(next, Binding{
			User:      user,
			Contact:   uri,
			Source:    src,
			Transport: strings.ToLower(req.Transport()),
			Expires:   now.Add(time.Duration(exp) * time.Second),
			CallID:    callID,
			CSeq:      cseq,
			UserAgent: sanitizeHeaderValue(headerValue(req, "User-Agent")),
		})
	}
	next = unexpired(next, now)

	result := "ok"
	if changed {
		s.cache.put(user, next)
		ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
		err := s.h.PutBindings(ctx, user, next)
		cancel()
		if err != nil {
			// The phone is registered as far as it knows; the desk routes from the
			// in-memory copy until the store is back.
			result = "store_error"
			s.log.Error("sip store bindings failed; kept in memory", "user", user, "source", src, "error", err)
		}
	}
	s.metrics.registrations.WithLabelValues(result).Inc()
	s.log.Info("sip registered", "user", user, "source", src, "contacts", len(next))

	hdrs := []sipmsg.Header{sipmsg.NewHeader("Date", now.UTC().Format(time.RFC1123))}
	for _, b := range next {
		secs := int(b.Expires.Sub(now).Round(time.Second) / time.Second)
		hdrs = append(hdrs, sipmsg.NewHeader("Contact",
			fmt.Sprintf("<%s>;expires=%d", sanitizeHeaderValue(b.Contact), secs)))
	}
	s.respond(req, tx, 200, "OK", hdrs...)
}

// currentBindings reads the user's bindings from the Handler, or from memory when the
// store fails.
func (s *Server) currentBindings(user string) []Binding {
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	bs, err := s.h.Bindings(ctx, user)
	if err != nil {
		s.log.Warn("sip bindings lookup failed; using memory", "user", user, "error", err)
		return s.cache.get(user, time.Now())
	}
	return unexpired(bs, time.Now())
}

func headerValue(req *sipmsg.Request, name string) string {
	if h := req.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}
