package desk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Callbacks dialled from the desk (media mode). The operator presses "call back"
// on a promise or a missed call; the media bridge rings his phone and, when he
// answers, dials the customer through the outbound trunk. The operator leg comes
// back to the switchboard as a bridged, pinned call (Incoming.Operator), so it
// pops the contact's card and the line's script like an inbound call. When the
// customer answers, the bridge adapter calls CallbackAnswered, which keeps the
// promise.

// ErrNoNumber: there is no number to call back (an anonymous caller, or a promise
// without a phone whose contact has none).
var ErrNoNumber = errors.New("no number to call back")

// callbackGuard is how long a second "call back" by the same operator is refused
// while the first one is being dialled: a double click must not ring him twice.
const callbackGuard = 5 * time.Second

// ResultCalledBack is the result a promise kept by a connected callback gets.
const ResultCalledBack = "called back"

// WithSalesMediaBridge gives Sales the media bridge that dials callbacks; without
// it Callback answers ErrNoMedia.
func WithSalesMediaBridge(b MediaBridge) SalesOption {
	return func(s *Sales) { s.bridge.set(b) }
}

// SetMediaBridge sets the media bridge after construction, for wiring where the
// bridge itself needs Sales (CallbackAnswered). Safe while serving.
func (s *Sales) SetMediaBridge(b MediaBridge) { s.bridge.set(b) }

// dialGuard remembers who pressed "call back" lately.
type dialGuard struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// take reports whether login may dial now, and notes that he does.
func (g *dialGuard) take(login string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		g.last = map[string]time.Time{}
	}
	for l, t := range g.last {
		if now.Sub(t) >= callbackGuard {
			delete(g.last, l)
		}
	}
	if _, ok := g.last[login]; ok {
		return false
	}
	g.last[login] = now
	return true
}

// forget lets login dial again at once (his dial failed before ringing).
func (g *dialGuard) forget(login string) {
	g.mu.Lock()
	delete(g.last, login)
	g.mu.Unlock()
}

// callbackOperator checks that u can be rung for a callback now: he takes calls,
// his phone is registered and he is on no call (nor owes a wrap-up).
func (s *Sales) callbackOperator(ctx context.Context, u *User) error {
	op, err := s.store.Operator(ctx, u.Login)
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%s takes no calls, so no phone of his can be rung: %w", u.Login, ErrNoPhone)
	case err != nil:
		return fmt.Errorf("operator %s: %w", u.Login, err)
	case !op.Registered:
		return fmt.Errorf("%s: %w", u.Login, ErrNoPhone)
	case op.CallID != "":
		return fmt.Errorf("%s is %s with call %s: %w", u.Login, op.Status, op.CallID, ErrClaimed)
	}
	return nil
}

// dial asks the bridge for the callback, once per operator at a time.
func (s *Sales) dial(ctx context.Context, u *User, req CallbackRequest, target string) (string, error) {
	bridge := s.bridge.get()
	if bridge == nil {
		return "", fmt.Errorf("call back %s: the desk runs without the media bridge: %w", target, ErrNoMedia)
	}
	if err := s.callbackOperator(ctx, u); err != nil {
		return "", fmt.Errorf("call back %s: %w", target, err)
	}
	if !s.dialing.take(u.Login, s.now()) {
		return "", fmt.Errorf("call back %s: a callback of %s is being dialled: %w", target, u.Login, ErrClaimed)
	}
	sipCallID, err := bridge.Callback(ctx, req)
	if err != nil {
		s.dialing.forget(u.Login)
		s.log.Warn("sales: callback refused by the bridge", "operator", u.Login, "target", target, "err", err)
		return "", bridgeErr("call back "+target, err)
	}
	detail := fmt.Sprintf("%s on line %s, sip call %s", req.Number, req.Line, sipCallID)
	if err := s.store.Audit(ctx, AuditEntry{At: s.now(), Who: u.Login, Action: "callback.dial", Target: target, Detail: detail}); err != nil {
		s.log.Error("sales: audit of a callback failed", "target", target, "err", err)
	}
	s.log.Info("sales: callback dialled", "operator", u.Login, "target", target, "line", req.Line, "sip_call_id", sipCallID)
	return sipCallID, nil
}

// Callback dials the promise's customer back: the desk rings u's phone and, when
// he answers, the promise's phone (else its contact's first phone) through the
// trunk, on the line of the promise's call (else the default line). Its owner may,
// anyone may for a pool promise, and a supervisor or admin any; u must take calls
// (his phone is rung). It returns the SIP Call-ID of u's leg. Errors: ErrNotFound,
// ErrForbidden, ErrNoMedia (no bridge), ErrNoNumber, ErrNoPhone, ErrClaimed (he is
// on a call, or already dialling), ErrBridge.
func (s *Sales) Callback(ctx context.Context, u *User, promiseID string) (string, error) {
	if u == nil {
		return "", ErrUnauthorized
	}
	p, err := s.store.Promise(ctx, promiseID)
	if err != nil {
		return "", fmt.Errorf("promise %s: %w", promiseID, err)
	}
	if p.Owner != "" && p.Owner != u.Login && !isSupervisor(u) {
		return "", fmt.Errorf("promise %s belongs to %s: %w", promiseID, p.Owner, ErrForbidden)
	}
	number := p.Phone
	if !isE164(number) && p.ContactID != "" {
		if c, err := s.store.Contact(ctx, p.ContactID); err == nil {
			number = firstOf(slices.DeleteFunc(slices.Clone(c.Phones), func(ph string) bool { return !isE164(ph) }))
		} else if !errors.Is(err, ErrNotFound) {
			return "", fmt.Errorf("promise %s: contact %s: %w", promiseID, p.ContactID, err)
		}
	}
	if !isE164(number) {
		return "", fmt.Errorf("promise %s: %w", promiseID, ErrNoNumber)
	}
	line := DefaultLine
	if p.CallID != "" {
		if c, err := s.store.Call(ctx, p.CallID); err == nil && c.Line != "" {
			line = c.Line
		}
	}
	return s.dial(ctx, u, CallbackRequest{Operator: u.Login, Number: number, Line: line, PromiseID: p.ID, CallID: p.CallID}, "promise "+p.ID)
}

// CallbackMissed dials back the caller of a missed (or abandoned) call, on the
// line he rang, ringing u's phone first. A supervisor or admin may call back any
// missed call; an operator one that rang him, of a contact he manages, or whose
// callback promise is his or the pool's. When that callback promise is open the
// call keeps it once the customer answers.
func (s *Sales) CallbackMissed(ctx context.Context, u *User, callID string) (string, error) {
	if u == nil {
		return "", ErrUnauthorized
	}
	c, err := s.call(ctx, callID)
	if err != nil {
		return "", err
	}
	if c.Live() {
		return "", fmt.Errorf("call %s is %s: %w", callID, c.State, ErrNotLive)
	}
	var promise *Promise
	if p, err := s.store.Promise(ctx, "cb-"+c.ID); err == nil {
		promise = p
	} else if !errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("callback promise of call %s: %w", callID, err)
	}
	if !isSupervisor(u) {
		ok := slices.ContainsFunc(c.Attempts, func(a Attempt) bool { return a.Operator == u.Login }) ||
			(promise != nil && (promise.Owner == "" || promise.Owner == u.Login))
		if !ok && c.ContactID != "" {
			if ct, err := s.store.Contact(ctx, c.ContactID); err == nil && ct.Manager == u.Login {
				ok = true
			}
		}
		if !ok {
			return "", fmt.Errorf("call %s is not within the work of %s: %w", callID, u.Login, ErrForbidden)
		}
	}
	if !isE164(c.From) {
		return "", fmt.Errorf("call %s from %q: %w", callID, c.From, ErrNoNumber)
	}
	line := c.Line
	if line == "" {
		line = DefaultLine
	}
	req := CallbackRequest{Operator: u.Login, Number: c.From, Line: line, CallID: c.ID}
	if promise != nil && promise.State == PromiseOpen {
		req.PromiseID = promise.ID
	}
	return s.dial(ctx, u, req, "call "+c.ID)
}

// CallbackAnswered is the bridge's report that the customer of a callback
// answered: the promise it dialled for is kept ("called back", now), published as
// promise.updated to its owner and the operator, and the connection is audited
// ("callback.connected"). A pool promise becomes the operator's. promiseID ""
// takes the promise the call carries. Calling it again changes nothing.
func (s *Sales) CallbackAnswered(ctx context.Context, sipCallID, promiseID string) error {
	var call *Call
	if sipCallID != "" {
		c, err := s.store.CallBySIPID(ctx, sipCallID)
		switch {
		case err == nil:
			call = c
		case errors.Is(err, ErrNotFound):
			// The switchboard's save may still be queued; the promise is kept anyway.
		default:
			return fmt.Errorf("callback %s: %w", sipCallID, err)
		}
	}
	operator, target := "", "sip call "+sipCallID
	if call != nil {
		operator, target = call.Operator, "call "+call.ID
		if promiseID == "" {
			promiseID = call.PromiseID
		}
	}
	if promiseID == "" {
		s.auditCallback(ctx, operator, target, "connected")
		return nil
	}
	p, err := s.store.Promise(ctx, promiseID)
	if err != nil {
		return fmt.Errorf("callback %s: promise %s: %w", sipCallID, promiseID, err)
	}
	if p.State == PromiseKept {
		return nil
	}
	now := s.now()
	p.State, p.KeptAt, p.Result = PromiseKept, &now, ResultCalledBack
	if p.Owner == "" {
		p.Owner = operator // whoever called a pool promise back answers for it
	}
	if err := s.store.SavePromise(ctx, p); err != nil {
		return fmt.Errorf("callback %s: keep promise %s: %w", sipCallID, p.ID, err)
	}
	s.pub.Publish(Event{Type: EventPromiseUpdated, Operators: audience(p.Owner, operator), Payload: PromiseUpdate{Promise: p}})
	s.auditCallback(ctx, operator, "promise "+p.ID, target+": kept")
	return nil
}

func (s *Sales) auditCallback(ctx context.Context, who, target, detail string) {
	if who == "" {
		who = "desk"
	}
	if err := s.store.Audit(ctx, AuditEntry{At: s.now(), Who: who, Action: "callback.connected", Target: target, Detail: detail}); err != nil {
		s.log.Error("sales: audit of a connected callback failed", "target", target, "err", err)
	}
}
