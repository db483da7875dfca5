package desk

import (
	"context"
	"errors"
	"os"
	"time"
)

// Media mode. A line configured with `media: true` is carried by the media bridge
// (package sip/b2bua): the desk answers the caller itself, rings the operator as a
// second leg with the same routing, hunting and pop as proxy mode, and bridges the
// audio. Only then can a supervisor hear a call, the call be recorded, or the desk
// dial a callback. The desk declares what it needs of the bridge here; cmd/desk
// adapts sip/b2bua to it, so desk never imports sipgo or diago.

// MonitorMode is how a supervisor's phone joins a live media-mode call.
type MonitorMode string

const (
	// MonitorListen: he hears the caller and the operator; nobody hears him.
	MonitorListen MonitorMode = "listen"
	// MonitorWhisper: he hears both; only the operator hears him (coaching).
	MonitorWhisper MonitorMode = "whisper"
	// MonitorBarge: all three hear each other.
	MonitorBarge MonitorMode = "barge"
)

// Valid reports whether m is one of the three modes.
func (m MonitorMode) Valid() bool {
	return m == MonitorListen || m == MonitorWhisper || m == MonitorBarge
}

// Sentinel errors of media mode.
var (
	// ErrNoMedia: the call is not carried by the media bridge (a proxy-mode line, or
	// the desk runs without the bridge), so there is no audio to join or record.
	ErrNoMedia = errors.New("call is not in media mode")
	// ErrNoPhone: the user who should be rung has no registered phone.
	ErrNoPhone = errors.New("no registered phone")
)

// MediaBridge is what the desk asks of the media bridge.
type MediaBridge interface {
	// Monitor rings the supervisor's registered phone and, when he answers, mixes him
	// into the call carried under sipCallID (the operator leg's SIP Call-ID) in mode.
	// When his leg is already in the call it only switches the mode, without redialling.
	// It returns once the phone is being rung (or the mode switched); the bridge reports
	// the rest with MonitorChange.
	Monitor(ctx context.Context, sipCallID, supervisor string, mode MonitorMode) error
	// StopMonitor hangs up the supervisor's leg in that call.
	StopMonitor(ctx context.Context, sipCallID, supervisor string) error
	// Callback rings the operator's phone and, when he answers, dials the number through
	// the outbound trunk and bridges the two. It returns the SIP Call-ID of the operator
	// leg as soon as that leg is started; the pop, the events and the wrap-up follow as
	// for an inbound call on the line.
	Callback(ctx context.Context, cb CallbackRequest) (string, error)
}

// CallbackRequest is one callback dialled from the desk.
type CallbackRequest struct {
	Operator  string // login whose phone rings first
	Number    string // E.164 of the customer, dialled through the trunk
	Line      string // line number (as dialled) whose script pops
	PromiseID string // kept when the customer answers; "" for a missed-call callback
	CallID    string // the desk call being called back (missed call), if any
}

// MonitorChange is what the bridge reports about a supervisor's leg.
type MonitorChange struct {
	SIPCallID  string      `json:"sip_call_id"`
	Supervisor string      `json:"supervisor"`
	Mode       MonitorMode `json:"mode"`  // the mode now in force
	State      string      `json:"state"` // "ringing", "joined", "switched", "left" or "failed"
	Reason     string      `json:"reason,omitempty"`
	At         time.Time   `json:"at"`
}

// Monitor states reported by the bridge.
const (
	MonitorRinging  = "ringing"
	MonitorJoined   = "joined"
	MonitorSwitched = "switched"
	MonitorLeft     = "left"
	MonitorFailed   = "failed"
)

// More sentinel errors of media mode.
var (
	// ErrNotLive: the call is over, or not answered yet, so there is nothing to join.
	ErrNotLive = errors.New("call is not live")
	// ErrNoTrunk: a callback was asked for, but the desk has no outbound trunk to
	// dial the customer through (media.trunk in DESK_CONFIG).
	ErrNoTrunk = errors.New("no outbound trunk configured")
	// ErrBridge: the media bridge failed to do what it was asked (it could not
	// ring the phone, or the trunk refused); the HTTP side answers 502.
	ErrBridge = errors.New("media bridge failed")
)

// Monitor is one supervisor's leg in a live media-mode call, as the board shows it.
type Monitor struct {
	Supervisor string      `json:"supervisor"`
	Mode       MonitorMode `json:"mode"`
	State      string      `json:"state"` // MonitorRinging, MonitorJoined or MonitorSwitched
	// Since is when the leg took its current state and mode.
	Since time.Time `json:"since"`
}

// MonitorEvent is one change of a supervisor's leg, as the pages and the audit see it.
type MonitorEvent struct {
	CallID     string `json:"call_id"` // the desk's call id
	Operator   string `json:"operator"`
	Supervisor string `json:"supervisor"`
	// SupervisorName is his display name, so the operator's page (which cannot list
	// users) says who is listening. Untrusted text to the page: shown as text.
	SupervisorName string      `json:"supervisor_name,omitempty"`
	Mode           MonitorMode `json:"mode"`
	State          string      `json:"state"`
	Reason         string      `json:"reason,omitempty"`
	At             time.Time   `json:"at"`
}

// MonitorUpdate is the payload of call.monitor. The change sits under "monitor"
// because a frame's top-level "at" is the hub's publish time; "call" is the call
// with its current Monitors, so the board can redraw the row from this frame alone.
type MonitorUpdate struct {
	Monitor MonitorEvent `json:"monitor"`
	Call    *Call        `json:"call"`
}

// CallMonitors is what the supervisor's media actions need of the switchboard
// (*Switchboard implements it): the freshest copy of a live call, and a place to
// keep the supervisors' legs on it, in order with the call's other events.
type CallMonitors interface {
	// LiveCall returns the call by desk id: this node's live copy when it has one,
	// else the store's. ErrNotFound when unknown.
	LiveCall(ctx context.Context, callID string) (*Call, error)
	// SetMonitor applies ch to the Monitors of the call carried under
	// ch.SIPCallID and returns the call as it now stands (unchanged when the call
	// is over). ErrNotFound when no call has that SIP Call-ID.
	SetMonitor(ctx context.Context, ch MonitorChange) (*Call, error)
}

// Recordings serves stored call recordings (*recordfile.Dir implements it).
// Recordings are keyed by the call's SIPCallID (the operator leg's Call-ID, the
// one the desk's Call carries).
type Recordings interface {
	// OpenRecording opens the call's stereo WAV for reading; an error wrapping
	// ErrNotFound when there is none or it is past its retention.
	OpenRecording(sipCallID string) (*os.File, error)
}
