package desk

import (
	"context"
	"time"
)

// UserStore keeps users and their credentials.
type UserStore interface {
	CreateUser(ctx context.Context, u *User) error // ErrExists when the login is taken
	User(ctx context.Context, login string) (*User, error)
	Users(ctx context.Context) ([]*User, error)
}

// SessionStore keeps web sessions. Tokens are random and opaque.
type SessionStore interface {
	CreateSession(ctx context.Context, login string, ttl time.Duration) (token string, err error)
	Session(ctx context.Context, token string) (login string, err error) // ErrNotFound when expired or unknown
	DeleteSession(ctx context.Context, token string) error
}

// ContactStore keeps contacts with an index by every E.164 phone.
type ContactStore interface {
	// CreateContact assigns ID, Created and Updated. Phones must already be E.164.
	CreateContact(ctx context.Context, c *Contact) error
	Contact(ctx context.Context, id string) (*Contact, error)
	// ContactByPhone finds a contact by an E.164 number; ErrNotFound when none.
	ContactByPhone(ctx context.Context, e164 string) (*Contact, error)
}

// BindingStore keeps registrations, shared by every node.
type BindingStore interface {
	// PutBindings replaces the login's bindings; an empty slice unregisters.
	PutBindings(ctx context.Context, login string, b []Binding) error
	// Bindings returns the login's bindings that have not expired.
	Bindings(ctx context.Context, login string) ([]Binding, error)
}

// PresenceStore keeps what routing needs to know about operators, atomically.
type PresenceStore interface {
	// Operators returns every operator with his presence.
	Operators(ctx context.Context) ([]*Operator, error)
	// Operator returns one operator with his presence, as Operators would, at a
	// cost that does not grow with the team; ErrNotFound when login is no operator.
	Operator(ctx context.Context, login string) (*Operator, error)
	SetAway(ctx context.Context, login string, away bool) error
	// PageOpened and PageClosed count desk pages per operator and node.
	PageOpened(ctx context.Context, login, node string) error
	PageClosed(ctx context.Context, login, node string) error
	// Claim atomically reserves a free operator for a call for ttl. It returns
	// ErrClaimed when another call holds him, on this node or any other.
	Claim(ctx context.Context, login, callID string, status Status, ttl time.Duration) error
	// UpdateClaim changes the status and ttl of the claim callID holds on login (ringing
	// → talking once answered). ErrNotFound when the claim is gone, ErrClaimed when
	// another call holds him.
	UpdateClaim(ctx context.Context, login, callID string, status Status, ttl time.Duration) error
	// Release frees the operator if callID still holds him, and marks him idle now.
	Release(ctx context.Context, login, callID string) error
}

// CallStore keeps calls and their timelines.
type CallStore interface {
	SaveCall(ctx context.Context, c *Call) error
	Call(ctx context.Context, id string) (*Call, error)
	CallBySIPID(ctx context.Context, sipCallID string) (*Call, error)
	// LiveCalls returns calls ringing or in talk.
	LiveCalls(ctx context.Context) ([]*Call, error)
}

// Store is everything the desk keeps. desk/redisstore implements it on Redis.
type Store interface {
	UserStore
	SessionStore
	ContactStore
	BindingStore
	PresenceStore
	CallStore
	RecordStore
	SalesStore
	ReportStore
	Ping(ctx context.Context) error
	WhisperStore
	ReassignStore
}

// RecordStore keeps the sales records of calls.
type RecordStore interface {
	// ApplyAnswers applies op to the call's record once: a replayed op.Op changes
	// nothing and returns applied false with the record as it is. Fields with an
	// empty value delete the answer. It is atomic (one Lua script), so two tabs and
	// a resend never interleave.
	ApplyAnswers(ctx context.Context, rec *Record, op AnswerOp) (out *Record, applied bool, err error)
	// Record returns the call's record; ErrNotFound when nothing was captured yet.
	Record(ctx context.Context, callID string) (*Record, error)
	// SaveRecord writes the whole record (flags, wrap-up).
	SaveRecord(ctx context.Context, rec *Record) error
}

// SalesStore keeps what outlives a call: interests, promises, meetings, notes, the
// contacts' call history, and the audit log.
type SalesStore interface {
	UpdateContact(ctx context.Context, c *Contact) error // re-indexes phones; ErrExists when a phone belongs to another contact

	SaveInterest(ctx context.Context, i *Interest) error
	Interest(ctx context.Context, id string) (*Interest, error)
	// OpenInterest returns the contact's open interest; ErrNotFound when none.
	OpenInterest(ctx context.Context, contactID string) (*Interest, error)
	Interests(ctx context.Context) ([]*Interest, error)

	SavePromise(ctx context.Context, p *Promise) error
	Promise(ctx context.Context, id string) (*Promise, error)
	// Promises returns promises of owner ("*" for every owner, "" for the pool) in
	// state ("open", "kept", or "" for all), by due time.
	Promises(ctx context.Context, owner, state string) ([]*Promise, error)
	// DuePromises returns open, not yet notified promises due at or before t.
	DuePromises(ctx context.Context, t time.Time) ([]*Promise, error)
	ContactPromises(ctx context.Context, contactID string) ([]*Promise, error) // open ones, by due time

	SaveMeeting(ctx context.Context, m *Meeting) error
	AddNote(ctx context.Context, n *Note) error
	Notes(ctx context.Context, contactID string, limit int) ([]Note, error) // newest first
	// AddHistory appends a past call to the contact's history.
	AddHistory(ctx context.Context, contactID string, s CallSummary) error
	History(ctx context.Context, contactID string, limit int) ([]CallSummary, error) // newest first

	// PendingWrapup remembers that the operator owes a wrap-up for callID; an empty
	// callID clears it.
	SetPendingWrapup(ctx context.Context, login, callID string) error
	PendingWrapup(ctx context.Context, login string) (string, error) // "" when none

	Audit(ctx context.Context, e AuditEntry) error
	AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) // newest first

	// Lease takes or renews a named lease for holder for ttl, so scheduled work runs
	// on one node at a time. It reports whether holder has it.
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
}

// ReportStore reads what happened over a period, for reports and the live board.
type ReportStore interface {
	// CallsBetween returns the calls started in [from, to), oldest first.
	CallsBetween(ctx context.Context, from, to time.Time) ([]*Call, error)
	// MeetingsBetween returns the meetings set in [from, to), oldest first.
	MeetingsBetween(ctx context.Context, from, to time.Time) ([]*Meeting, error)
	// Records returns the records of the calls that have one, by call ID, in one
	// round trip; calls without a record are absent from the map.
	Records(ctx context.Context, callIDs []string) (map[string]*Record, error)
	// CallsByID returns the calls that exist among ids, by ID, in one round trip.
	CallsByID(ctx context.Context, ids []string) (map[string]*Call, error)
	// Histories returns each contact's past calls (newest first, as many as are
	// kept), by contact ID, in one round trip; contacts without history are absent.
	Histories(ctx context.Context, contactIDs []string) (map[string][]CallSummary, error)
	// ChannelCosts returns the channel costs an admin entered; nil when none.
	ChannelCosts(ctx context.Context) (*ChannelCosts, error)
	// SetChannelCosts stores the admin's channel costs; nil clears them.
	SetChannelCosts(ctx context.Context, c *ChannelCosts) error
}

// WhisperStore keeps supervisors' whispers, per operator and with the call.
type WhisperStore interface {
	// SaveWhisper stores w (assigning ID and At when empty) and indexes it by
	// operator, by call and, until AckedAt is set, among the unacknowledged.
	SaveWhisper(ctx context.Context, w *Whisper) error
	Whisper(ctx context.Context, id string) (*Whisper, error) // ErrNotFound when unknown
	// Whispers returns the operator's whispers ("" for every operator), oldest
	// first; with unackedOnly only those not yet acknowledged.
	Whispers(ctx context.Context, operator string, unackedOnly bool) ([]*Whisper, error)
	// CallWhispers returns the whispers sent during the call, oldest first.
	CallWhispers(ctx context.Context, callID string) ([]*Whisper, error)
}

// ReassignStore finds what a manager owns and moves it, one item at a time. Each
// move is a compare-and-set: the item moves only while from still owns it (and,
// with openOnly, it is still open), so a concurrent change is never undone. They
// return the item as it now stands and whether it moved; ErrNotFound when unknown.
type ReassignStore interface {
	ContactsOf(ctx context.Context, manager string) ([]*Contact, error) // personal manager is manager
	InterestsOf(ctx context.Context, owner string) ([]*Interest, error) // open or closed
	ReassignContact(ctx context.Context, id, from, to string) (*Contact, bool, error)
	ReassignInterest(ctx context.Context, id, from, to string, openOnly bool) (*Interest, bool, error)
	ReassignPromise(ctx context.Context, id, from, to string, openOnly bool) (*Promise, bool, error) // from "" is the pool
}
