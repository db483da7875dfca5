// Package desk is the inbound call desk's domain: the people (User, Operator), the
// callers (Contact), the dialled numbers (Line), the calls (Call), the scripts the
// operators walk through (Script) and the events the pages see (Event).
//
// The package holds plain types and the small interfaces its adapters implement.
// It never imports a transport: SIP lives in package sip, Redis in desk/redisstore,
// websockets and HTTP in desk/hub and desk/httpapi, and cmd/desk wires them together.
package desk

import (
	"errors"
	"time"
)

// Sentinel errors. Adapters wrap them with context (fmt.Errorf("...: %w", ErrNotFound))
// so callers can test with errors.Is whatever the storage behind them.
var (
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrInvalid      = errors.New("invalid")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	// ErrUnavailable means the store could not be reached. The call path treats it as
	// "route with what is known" and never as a reason to fail a call.
	ErrUnavailable = errors.New("store unavailable")
	// ErrClaimed means another call (possibly on another node) holds the operator.
	ErrClaimed = errors.New("operator already claimed")
)

// Role is what a user may do at the desk.
type Role string

const (
	RoleOperator   Role = "operator"
	RoleSupervisor Role = "supervisor"
	RoleAdmin      Role = "admin"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	return r == RoleOperator || r == RoleSupervisor || r == RoleAdmin
}

// User is anyone who logs in to the desk. Operators also have a softphone that
// registers as sip:LOGIN@DOMAIN with digest user LOGIN.
type User struct {
	Login string `json:"login"`
	Name  string `json:"name"`
	Role  Role   `json:"role"`
	// PasswordHash is the web password, hashed with argon2id (PHC string format).
	PasswordHash string `json:"-"`
	// SIPHA1 is hex MD5(login:realm:sip_password), all the registrar needs to check
	// a digest response. The plain SIP password is never stored.
	SIPHA1  string    `json:"-"`
	Created time.Time `json:"created"`
}

// Contact is a caller the company knows: a person at a client company.
// Everything learnt on calls stays with the contact, whoever the manager is.
type Contact struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Company  string   `json:"company,omitempty"`
	Position string   `json:"position,omitempty"`
	Email    string   `json:"email,omitempty"`
	Phones   []string `json:"phones"` // E.164, normalised on save
	// Manager is the login of the contact's personal manager, rung first.
	Manager string    `json:"manager,omitempty"`
	Notes   string    `json:"notes,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Line is a dialled number: what the caller rang. It picks the script and carries
// the preset source, as call tracking does (one number per advertising channel).
type Line struct {
	// Number is the dialled user part as it arrives in the Request-URI, e.g. "sales"
	// or "+74951234567". Numbers are compared after normalisation to E.164.
	Number string `json:"number" yaml:"number"`
	Name   string `json:"name" yaml:"name"`
	Script string `json:"script" yaml:"script"`
	Source string `json:"source,omitempty" yaml:"source"`
	// Media puts the line in media mode: the desk's media bridge carries the audio
	// (a B2BUA), so supervisors can listen, whisper and barge and the call can be
	// recorded. Proxy mode (false) stays the default: it never touches the audio.
	Media bool `json:"media,omitempty" yaml:"media"`
	// Record keeps a stereo recording of each answered call (media lines only).
	Record bool `json:"record,omitempty" yaml:"record"`
	// Retention is how long a recording is kept; DefaultRetention when Record is
	// set and this is zero.
	Retention time.Duration `json:"retention,omitempty" yaml:"retention"`
}

// DefaultRetention is how long recordings are kept when a recording line names no
// retention: 90 days, long enough to settle a dispute over what was promised.
const DefaultRetention = 90 * 24 * time.Hour

// RecordingRetention is how long this line's recordings are kept: 0 when it does
// not record.
func (l Line) RecordingRetention() time.Duration {
	switch {
	case !l.Record:
		return 0
	case l.Retention > 0:
		return l.Retention
	}
	return DefaultRetention
}

// DefaultLine is the ID of the line that catches any number not otherwise configured.
const DefaultLine = "default"

// CallState is where a call is in its life.
type CallState string

const (
	CallRinging  CallState = "ringing"
	CallAnswered CallState = "answered"
	CallEnded    CallState = "ended"
	CallMissed   CallState = "missed"
)

// Call is one inbound call, from the first INVITE to the end, with its timeline.
type Call struct {
	ID        string `json:"id"`
	SIPCallID string `json:"sip_call_id"`
	// From is the caller's number in E.164, or the raw user part when it is not a number.
	From        string    `json:"from"`
	FromDisplay string    `json:"from_display,omitempty"`
	To          string    `json:"to"`
	Line        string    `json:"line"`
	Script      string    `json:"script,omitempty"` // the line's script id
	Operator    string    `json:"operator"`
	State       CallState `json:"state"`
	ContactID   string    `json:"contact_id,omitempty"`
	// LookupFailed is set when the caller could not be looked up (store unavailable).
	LookupFailed bool       `json:"lookup_failed,omitempty"`
	Started      time.Time  `json:"started"`
	Answered     *time.Time `json:"answered,omitempty"`
	Ended        *time.Time `json:"ended,omitempty"`
	// Reason says why a call ended or was missed: "caller hung up", "operator hung up",
	// "cancelled", "no operator", "timeout"; for a callback whose customer did not
	// answer, "customer busy", "customer declined" or "customer did not answer".
	Reason   string    `json:"reason,omitempty"`
	Attempts []Attempt `json:"attempts,omitempty"`
	// Media is set when the media bridge carries the call (a media-mode line, or
	// a callback): only such a call can be monitored or recorded.
	Media bool `json:"media,omitempty"`
	// Recorded is set when the call's line records it.
	Recorded bool `json:"recorded,omitempty"`
	// Direction is "callback" for a call the desk dialled back; "" is inbound.
	Direction string `json:"direction,omitempty"`
	// PromiseID is the promise a callback keeps when the customer answers.
	PromiseID string `json:"promise_id,omitempty"`
	// Unreached is the SIP status with which the customer of a callback refused or
	// never answered (486 busy, 480 or 408 no answer, ...): the operator's leg was
	// up, the customer's never. Such a call ends without a wrap-up and its promise
	// stays open. 0 for every other call.
	Unreached int `json:"unreached,omitempty"`
	// Monitors are the supervisors' legs in the call now (media mode only),
	// shown on the board; they are cleared when the call ends (the audit log
	// keeps every use).
	Monitors []Monitor `json:"monitors,omitempty"`
}

// DirectionCallback marks a call the desk dialled back (Call.Direction).
const DirectionCallback = "callback"

// Attempt is one operator rung for a call, in order.
type Attempt struct {
	Operator string    `json:"operator"`
	Started  time.Time `json:"started"`
	// Outcome is "answered", "timeout", "rejected", "cancelled" or "" while ringing.
	Outcome string `json:"outcome,omitempty"`
	Status  int    `json:"status,omitempty"`
}

// Live reports whether the call is still ringing or in talk.
func (c *Call) Live() bool { return c.State == CallRinging || c.State == CallAnswered }

// Talked reports whether the customer was on the line: the call was answered, and
// it is not a callback whose customer never answered (the operator's leg alone
// was up then).
func (c *Call) Talked() bool { return c.Answered != nil && c.Unreached == 0 }

// Binding is one registered contact of an operator's softphone.
type Binding struct {
	Login     string    `json:"login"`
	Contact   string    `json:"contact"`   // the Contact URI the phone registered
	Source    string    `json:"source"`    // ip:port the REGISTER came from (NAT)
	Transport string    `json:"transport"` // udp or tcp
	Expires   time.Time `json:"expires"`
	CallID    string    `json:"call_id"`
	CSeq      uint32    `json:"cseq"`
	UserAgent string    `json:"user_agent,omitempty"`
	Node      string    `json:"node,omitempty"`
}

// Status is an operator's presence as the desk sees it.
type Status string

const (
	StatusAvailable Status = "available"
	StatusRinging   Status = "ringing"
	StatusTalking   Status = "talking"
	StatusWrapup    Status = "wrapup"
	StatusAway      Status = "away"
	StatusOffline   Status = "offline" // no page open and no phone registered
)

// Operator is a user who takes calls, with his presence.
type Operator struct {
	Login string `json:"login"`
	Name  string `json:"name"`
	// Status is derived: the call he is on wins, then away, then page/phone state.
	Status     Status    `json:"status"`
	Away       bool      `json:"away"`       // set by the operator himself
	PageOpen   bool      `json:"page_open"`  // at least one desk page connected
	Registered bool      `json:"registered"` // at least one live binding
	IdleSince  time.Time `json:"idle_since"` // when he last became free
	CallID     string    `json:"call_id,omitempty"`
	// Since is when his current status started: the claim of his call (ringing,
	// talking, wrap-up), going away, or becoming free (the later of his last call's
	// end and his return from away). Zero when unknown (offline).
	Since time.Time `json:"since"`
}

// Event is something pages may see. The hub turns it into one websocket frame per
// audience: {"type": Type, "seq": N, ...fields of Payload}.
type Event struct {
	Type string `json:"type"`
	// Operators are the logins whose pages receive the event. Supervisors and admins
	// always receive every event.
	Operators []string `json:"operators,omitempty"`
	// Payload must marshal to a JSON object; its fields sit beside type and seq.
	Payload any `json:"payload"`
}

// Event types.
const (
	EventCallRinging  = "call.ringing"
	EventCallAnswered = "call.answered"
	EventCallEnded    = "call.ended"
	EventCallMissed   = "call.missed"
	EventPresence     = "presence"
	EventSnapshot     = "snapshot"
	// EventCallMonitor: a supervisor's leg in a media-mode call changed (ringing,
	// joined, switched mode, left, failed). Payload MonitorUpdate, to the call's
	// operator (he always sees that he is monitored) and the supervisors.
	EventCallMonitor = "call.monitor"
)

// Pop is the payload of call.ringing: everything the operator's page needs to show
// the card and the script before the phone is answered. Contact is null when the
// caller is unknown; Lookup is "unavailable" when the store could not be asked.
type Pop struct {
	Call    *Call    `json:"call"`
	Contact *Contact `json:"contact"`
	Script  *Script  `json:"script"`
	Manager string   `json:"manager,omitempty"` // personal manager's display name
	Lookup  string   `json:"lookup,omitempty"`
	// Card is the known contact's history: past calls, open interest, open promises
	// and notes. Nil for an unknown caller, or when it could not be read in time.
	Card *Card `json:"card,omitempty"`
	// PresetSource is the line's call-tracking source, pre-selected in the script.
	PresetSource string `json:"preset_source,omitempty"`
	// Prices is the price list the script's price step offers.
	Prices []PriceRange `json:"prices,omitempty"`
}

// CallUpdate is the payload of call.answered, call.ended and call.missed.
type CallUpdate struct {
	Call *Call `json:"call"`
}

// Publisher fans events out to pages on every node. Publish must not block the SIP
// path: an implementation that cannot reach its broker delivers locally and returns.
type Publisher interface {
	Publish(ev Event)
}
