// Package sip is the desk's SIP side: a digest-authenticating registrar and a
// record-routing stateful proxy built on sipgo, on UDP and TCP.
//
// It knows nothing of contacts, scripts or pages. It consumes the small Handler
// interface declared here: credentials, bindings, the route decision as a value,
// and call events. cmd/desk adapts the desk domain to it. This package never
// imports desk, and desk never imports sipgo.
package sip

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors; wrapped with context where they are returned.
var (
	// ErrUnknownUser is returned by Handler.DigestHA1 for a login that does not exist.
	// The registrar answers it exactly like a wrong password, so nobody learns which
	// logins exist.
	ErrUnknownUser = errors.New("unknown user")
)

// Binding is one registered contact of a user agent.
type Binding struct {
	User      string    // digest user = login
	Contact   string    // Contact URI as registered
	Source    string    // ip:port the REGISTER arrived from; requests go there (NAT)
	Transport string    // "udp" or "tcp"
	Expires   time.Time // absolute expiry
	CallID    string
	CSeq      uint32
	UserAgent string
}

// Invite is what the proxy tells the Handler about an incoming call.
type Invite struct {
	CallID string // SIP Call-ID
	// Caller is the calling user part: from P-Asserted-Identity when the request
	// came from a trusted trunk, otherwise from From. Not yet normalised.
	Caller     string
	CallerName string // display name, as the caller chose it: untrusted text
	Dialled    string // Request-URI user part
	Source     string // ip:port the INVITE came from
	Transport  string
	// Tried lists the users already rung for this call, in order, for hunting.
	Tried []string
	// Leg is set only on INVITEs from the media bridge (WithBridge): which of its legs
	// this is (LegOperator, LegMonitor or LegCallback). Operator and Promise come with
	// LegCallback: the operator to ring and the promise being called back.
	Leg      string
	Operator string
	Promise  string
	CallRef  string // LegCallback: the desk call being called back, if any
}

// Legs the media bridge places through the proxy.
const (
	// LegOperator rings the operators for a media-mode call: routed, hunted and popped
	// exactly as a proxy-mode call, under the bridge's own Call-ID.
	LegOperator = "operator"
	// LegMonitor rings a supervisor's own phone (Dialled is his login) to mix him in.
	LegMonitor = "monitor"
	// LegCallback rings Invite.Operator's phone first for a callback the desk dials.
	LegCallback = "callback"
)

// Decision is the route decision, a value: ring Target now, or reject with Status.
// The proxy asks again (with Tried extended) when the target does not answer.
type Decision struct {
	// Target is the user to ring, already reserved for this call by the Handler.
	Target string
	// Contacts are the target's bindings; all are rung in parallel (forking).
	Contacts []Binding
	// RingTimeout is how long to ring before hunting on (our own Timer C).
	RingTimeout time.Duration
	// Status, when non-zero, rejects the call with that SIP status and Reason.
	Status int
	Reason string
	// Media hands the call to the media bridge (WithBridge) instead of ringing anybody:
	// the bridge answers the caller itself and comes back with a LegOperator INVITE.
	// Record asks the bridge to record it, kept for Retention.
	Media     bool
	Record    bool
	Retention time.Duration
	// Quiet: a leg of the bridge's own (a supervisor's phone) that is no desk call, so
	// no CallEvent is reported for it and nobody else is hunted when it fails.
	Quiet bool
}

// EventKind is what happened to a call.
type EventKind int

const (
	// EventRinging: the target's phone answered 180/183.
	EventRinging EventKind = iota + 1
	// EventAnswered: the target's phone answered 2xx; the call is established.
	EventAnswered
	// EventTargetFailed: the target did not answer in time, rejected, or was
	// cancelled because the caller gave up. Status carries the reason code
	// (408 for the ring timeout, 487 when cancelled, or the phone's final status).
	EventTargetFailed
	// EventMissed: the call ended before anybody answered: nobody could take it
	// (Status is what the caller got) or the caller hung up (Status 487).
	EventMissed
	// EventEnded: a BYE ended an established call. By is "caller" or "operator".
	EventEnded
)

func (k EventKind) String() string {
	switch k {
	case EventRinging:
		return "ringing"
	case EventAnswered:
		return "answered"
	case EventTargetFailed:
		return "target-failed"
	case EventMissed:
		return "missed"
	case EventEnded:
		return "ended"
	}
	return "unknown"
}

// CallEvent reports a change in a call.
type CallEvent struct {
	Kind   EventKind
	CallID string // SIP Call-ID
	Target string // the user concerned, when any
	Status int
	By     string // for EventEnded: "caller" or "operator"
	At     time.Time
}

// Handler is what the SIP side needs from the application. Every method is called on
// the SIP path, so implementations must answer quickly and must not wait on a browser.
type Handler interface {
	// DigestHA1 returns hex MD5(user:realm:password) for digest authentication.
	DigestHA1(ctx context.Context, user string) (string, error)
	// Bindings returns the user's current, unexpired bindings.
	Bindings(ctx context.Context, user string) ([]Binding, error)
	// PutBindings replaces the user's bindings after a successful REGISTER; an empty
	// slice unregisters him.
	PutBindings(ctx context.Context, user string, b []Binding) error
	// Route decides who rings next for an incoming call.
	Route(ctx context.Context, inv Invite) Decision
	// CallEvent reports what happened. It must not block.
	CallEvent(ev CallEvent)
}
