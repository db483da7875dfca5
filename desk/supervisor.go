package desk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Supervisor is what a supervisor (or admin) does to the floor besides watching:
// whisper to an operator, move what a manager owns to another, and force an
// operator's presence. Every move and every forced presence is audited.
type Supervisor struct {
	store  Store
	pub    Publisher
	log    *slog.Logger
	now    func() time.Time
	bridge bridgeRef    // unset: the desk runs without media mode
	calls  CallMonitors // nil: live calls are read from the store
}

// SupervisorOption configures a Supervisor.
type SupervisorOption func(*Supervisor)

// WithSupervisorLogger sets the logger.
func WithSupervisorLogger(l *slog.Logger) SupervisorOption {
	return func(s *Supervisor) {
		if l != nil {
			s.log = l
		}
	}
}

// WithSupervisorClock replaces time.Now, for tests.
func WithSupervisorClock(now func() time.Time) SupervisorOption {
	return func(s *Supervisor) {
		if now != nil {
			s.now = now
		}
	}
}

// Limits of the supervisor's actions.
const (
	MaxWhisper     = 500  // characters of a whisper
	MaxReassignIDs = 1000 // items named in one reassignment
)

// Kinds of a Reassignment.
const (
	ReassignContact  = "contact"
	ReassignInterest = "interest"
	ReassignPromise  = "promise"
)

// NewSupervisor returns the supervisor's service on store, publishing through pub.
func NewSupervisor(store Store, pub Publisher, opts ...SupervisorOption) *Supervisor {
	s := &Supervisor{store: store, pub: pub, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// operator returns the operator login's presence; ErrNotFound when login is not
// an operator.
func (s *Supervisor) operator(ctx context.Context, login string) (*Operator, error) {
	ops, err := s.store.Operators(ctx)
	if err != nil {
		return nil, fmt.Errorf("operators: %w", err)
	}
	for _, o := range ops {
		if o.Login == login {
			return o, nil
		}
	}
	return nil, fmt.Errorf("operator %q: %w", login, ErrNotFound)
}

// Whisper pins text on the operator's page: it is stored in his list and, when he
// is on a call (ringing, talking or in its wrap-up), with that call, and published
// as a whisper frame to him and the supervisors. Supervisors and admins only.
func (s *Supervisor) Whisper(ctx context.Context, u *User, operator, text string) (*Whisper, error) {
	if !isSupervisor(u) {
		return nil, fmt.Errorf("whisper: %w", ErrForbidden)
	}
	text = strings.TrimSpace(text)
	if n := utf8.RuneCountInString(text); n == 0 || n > MaxWhisper {
		return nil, &FieldError{Field: "text", Reason: fmt.Sprintf("a whisper is 1 to %d characters", MaxWhisper)}
	}
	op, err := s.operator(ctx, operator)
	if err != nil {
		return nil, fmt.Errorf("whisper: %w", err)
	}
	w := &Whisper{ID: newID(), Operator: op.Login, By: u.Login, Text: text, CallID: op.CallID, At: s.now()}
	if err := s.store.SaveWhisper(ctx, w); err != nil {
		return nil, fmt.Errorf("whisper to %s: %w", operator, err)
	}
	detail := w.Text
	if w.CallID != "" {
		detail = "call " + w.CallID + ": " + w.Text
	}
	if err := s.store.Audit(ctx, AuditEntry{At: w.At, Who: u.Login, Action: "whisper", Target: w.Operator, Detail: detail}); err != nil {
		s.log.Error("supervisor: audit of a whisper failed", "operator", w.Operator, "err", err)
	}
	s.pub.Publish(Event{Type: EventWhisper, Operators: []string{w.Operator}, Payload: WhisperUpdate{Whisper: w}})
	s.log.Info("supervisor: whisper", "operator", w.Operator, "by", u.Login, "call", w.CallID)
	return w, nil
}

// AckWhisper acknowledges a whisper; only the operator it was whispered to may.
// The supervisors see a whisper.ack frame. Acknowledging it again changes nothing.
func (s *Supervisor) AckWhisper(ctx context.Context, u *User, id string) (*Whisper, error) {
	if u == nil {
		return nil, ErrUnauthorized
	}
	w, err := s.store.Whisper(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("whisper %s: %w", id, err)
	}
	if w.Operator != u.Login {
		return nil, fmt.Errorf("whisper %s is to %s: %w", id, w.Operator, ErrForbidden)
	}
	if w.AckedAt != nil {
		return w, nil
	}
	now := s.now()
	w.AckedAt = &now
	if err := s.store.SaveWhisper(ctx, w); err != nil {
		return nil, fmt.Errorf("ack whisper %s: %w", id, err)
	}
	s.pub.Publish(Event{Type: EventWhisperAck, Operators: []string{w.Operator}, Payload: WhisperUpdate{Whisper: w}})
	return w, nil
}

// Whispers lists whispers, oldest first. An operator sees only his own (operator
// "" or his login; another login is ErrForbidden); a supervisor the operator's, or
// everyone's with "".
func (s *Supervisor) Whispers(ctx context.Context, u *User, operator string, unackedOnly bool) ([]*Whisper, error) {
	switch {
	case u == nil:
		return nil, ErrUnauthorized
	case isSupervisor(u):
	case operator == "" || operator == u.Login:
		operator = u.Login
	default:
		return nil, fmt.Errorf("whispers of %s: %w", operator, ErrForbidden)
	}
	ws, err := s.store.Whispers(ctx, operator, unackedOnly)
	if err != nil {
		return nil, fmt.Errorf("whispers: %w", err)
	}
	return ws, nil
}

// CallWhispers returns the whispers sent during a call, oldest first.
func (s *Supervisor) CallWhispers(ctx context.Context, callID string) ([]*Whisper, error) {
	ws, err := s.store.CallWhispers(ctx, callID)
	if err != nil {
		return nil, fmt.Errorf("whispers of call %s: %w", callID, err)
	}
	return ws, nil
}

// owned is one item a reassignment may move, with its owner as it was read.
type owned struct {
	id, owner string
}

// Reassign moves contacts (personal manager), interests (owner) or promises
// (owner) to To, who must be an operator. With IDs it moves those (whatever their
// state; with From set, each must be From's, else nothing moves); without, it
// moves all of From's contacts, or From's open interests or promises. Every moved
// item is audited ("reassign.KIND", who, when, "from X to Y"); moved promises are
// published as promise.updated to both owners. Items already To's, or changed by
// someone else meanwhile, are left and not counted. Supervisors and admins only.
func (s *Supervisor) Reassign(ctx context.Context, u *User, r Reassignment) (*ReassignResult, error) {
	if !isSupervisor(u) {
		return nil, fmt.Errorf("reassign: %w", ErrForbidden)
	}
	r.Kind, r.From, r.To = strings.TrimSpace(r.Kind), strings.TrimSpace(r.From), strings.TrimSpace(r.To)
	switch r.Kind {
	case ReassignContact, ReassignInterest, ReassignPromise:
	default:
		return nil, &FieldError{Field: "kind", Reason: fmt.Sprintf("%q is not contact, interest or promise", r.Kind)}
	}
	if len(r.IDs) > MaxReassignIDs {
		return nil, &FieldError{Field: "ids", Reason: fmt.Sprintf("at most %d items at once", MaxReassignIDs)}
	}
	if r.To == "" {
		return nil, &FieldError{Field: "to", Reason: "required: the operator who takes the items over"}
	}
	to, err := s.store.User(ctx, r.To)
	if errors.Is(err, ErrNotFound) || (err == nil && to.Role != RoleOperator) {
		return nil, &FieldError{Field: "to", Reason: fmt.Sprintf("%q is not an operator", r.To)}
	}
	if err != nil {
		return nil, fmt.Errorf("reassign to %s: %w", r.To, err)
	}
	bulk := len(r.IDs) == 0
	if bulk && r.From == "" {
		return nil, &FieldError{Field: "from", Reason: "required when no ids are given: whose items move"}
	}
	if bulk && r.From == r.To {
		return nil, &FieldError{Field: "to", Reason: "the items are already " + r.To + "'s"}
	}
	items, err := s.reassignable(ctx, r)
	if err != nil {
		return nil, err
	}
	res := &ReassignResult{}
	for _, it := range items {
		if it.owner == r.To {
			continue
		}
		moved, err := s.move(ctx, u, r.Kind, it, r.To, bulk)
		if err != nil {
			return res, err
		}
		if !moved {
			continue
		}
		switch r.Kind {
		case ReassignContact:
			res.Contacts++
		case ReassignInterest:
			res.Interests++
		case ReassignPromise:
			res.Promises++
		}
	}
	s.log.Info("supervisor: reassign", "kind", r.Kind, "from", r.From, "to", r.To, "by", u.Login, "named", len(r.IDs),
		"contacts", res.Contacts, "interests", res.Interests, "promises", res.Promises)
	return res, nil
}

// reassignable reads the items a reassignment names, or finds From's, with their
// owners. Named items are all read (and checked against From) before any moves.
func (s *Supervisor) reassignable(ctx context.Context, r Reassignment) ([]owned, error) {
	var out []owned
	if len(r.IDs) == 0 {
		switch r.Kind {
		case ReassignContact:
			cs, err := s.store.ContactsOf(ctx, r.From)
			if err != nil {
				return nil, fmt.Errorf("contacts of %s: %w", r.From, err)
			}
			for _, c := range cs {
				out = append(out, owned{c.ID, c.Manager})
			}
		case ReassignInterest:
			is, err := s.store.InterestsOf(ctx, r.From)
			if err != nil {
				return nil, fmt.Errorf("interests of %s: %w", r.From, err)
			}
			for _, i := range is {
				if i.State == "open" {
					out = append(out, owned{i.ID, i.Owner})
				}
			}
		case ReassignPromise:
			ps, err := s.store.Promises(ctx, r.From, PromiseOpen)
			if err != nil {
				return nil, fmt.Errorf("promises of %s: %w", r.From, err)
			}
			for _, p := range ps {
				out = append(out, owned{p.ID, p.Owner})
			}
		}
		return out, nil
	}
	var seen []string
	for _, id := range r.IDs {
		id = strings.TrimSpace(id)
		if id == "" || slices.Contains(seen, id) {
			continue
		}
		seen = append(seen, id)
		var owner string
		switch r.Kind {
		case ReassignContact:
			c, err := s.store.Contact(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("contact %s: %w", id, err)
			}
			owner = c.Manager
		case ReassignInterest:
			i, err := s.store.Interest(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("interest %s: %w", id, err)
			}
			owner = i.Owner
		case ReassignPromise:
			p, err := s.store.Promise(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("promise %s: %w", id, err)
			}
			owner = p.Owner
		}
		if r.From != "" && owner != r.From {
			return nil, &FieldError{Field: "ids", Reason: fmt.Sprintf("%s %s is %s's, not %s's", r.Kind, id, movedFromName(r.Kind, owner), r.From)}
		}
		out = append(out, owned{id, owner})
	}
	if len(out) == 0 {
		return nil, &FieldError{Field: "ids", Reason: "no ids given"}
	}
	return out, nil
}

// move moves one item from it.owner to to if it is still it.owner's, audits the
// move and publishes a moved promise.
func (s *Supervisor) move(ctx context.Context, u *User, kind string, it owned, to string, openOnly bool) (bool, error) {
	var moved bool
	var err error
	var p *Promise
	switch kind {
	case ReassignContact:
		_, moved, err = s.store.ReassignContact(ctx, it.id, it.owner, to)
	case ReassignInterest:
		_, moved, err = s.store.ReassignInterest(ctx, it.id, it.owner, to, openOnly)
	case ReassignPromise:
		p, moved, err = s.store.ReassignPromise(ctx, it.id, it.owner, to, openOnly)
	}
	if err != nil {
		return false, fmt.Errorf("reassign %s %s: %w", kind, it.id, err)
	}
	if !moved {
		return false, nil
	}
	e := AuditEntry{At: s.now(), Who: u.Login, Action: "reassign." + kind, Target: it.id,
		Detail: fmt.Sprintf("from %s to %s", movedFromName(kind, it.owner), to)}
	if err := s.store.Audit(ctx, e); err != nil {
		// The item moved; the audit must not be silently lost, so the caller hears of it.
		return true, fmt.Errorf("audit of reassign %s %s: %w", kind, it.id, err)
	}
	if p != nil {
		s.pub.Publish(Event{Type: EventPromiseUpdated, Operators: audience(it.owner, to), Payload: PromiseUpdate{Promise: p}})
	}
	return true, nil
}

// movedFromName names an owner in the audit: a login, the pool for an ownerless
// promise, nobody for a contact or interest without one.
func movedFromName(kind, owner string) string {
	switch {
	case owner != "":
		return owner
	case kind == ReassignPromise:
		return "pool"
	default:
		return "nobody"
	}
}

// presencePayload is the payload of a presence event (the shape of hub.PresencePayload).
type presencePayload struct {
	Operator *Operator `json:"operator"`
}

// SetPresence forces the operator away (or back, clearing his away flag), e.g. one
// who left with the page open. It is audited ("presence.force") and published as a
// presence frame with his fresh presence. Supervisors and admins only.
func (s *Supervisor) SetPresence(ctx context.Context, u *User, operator string, away bool) error {
	if !isSupervisor(u) {
		return fmt.Errorf("set presence: %w", ErrForbidden)
	}
	if _, err := s.operator(ctx, operator); err != nil {
		return fmt.Errorf("set presence: %w", err)
	}
	if err := s.store.SetAway(ctx, operator, away); err != nil {
		return fmt.Errorf("set presence of %s: %w", operator, err)
	}
	detail := "available"
	if away {
		detail = "away"
	}
	if err := s.store.Audit(ctx, AuditEntry{At: s.now(), Who: u.Login, Action: "presence.force", Target: operator, Detail: detail}); err != nil {
		s.log.Error("supervisor: audit of a forced presence failed", "operator", operator, "err", err)
	}
	op, err := s.operator(ctx, operator)
	if err != nil { // the flag is set; the page learns it from the next presence frame
		s.log.Warn("supervisor: presence not re-read", "operator", operator, "err", err)
		op = &Operator{Login: operator, Away: away}
	}
	s.pub.Publish(Event{Type: EventPresence, Operators: []string{operator}, Payload: presencePayload{Operator: op}})
	s.log.Info("supervisor: presence forced", "operator", operator, "away", away, "by", u.Login)
	return nil
}
