package desk

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// Supervisors on live calls (media mode). A supervisor asks through the HTTP API
// (Monitor, StopMonitor); the media bridge rings his phone and reports each change
// of his leg through the cmd/desk adapter (MonitorChanged), which keeps his leg on
// the live call, tells the operator and the board (call.monitor) and audits it.
// The operator is told of every mode, listen included: the desk is open with the
// operators about who hears them.

// WithSupervisorMediaBridge gives the supervisor the media bridge that rings his
// phone into live calls; without it Monitor answers ErrNoMedia.
func WithSupervisorMediaBridge(b MediaBridge) SupervisorOption {
	return func(s *Supervisor) { s.bridge.set(b) }
}

// SetMediaBridge sets the media bridge after construction, for wiring where the
// bridge itself needs the Supervisor (MonitorChanged). Safe while serving.
func (s *Supervisor) SetMediaBridge(b MediaBridge) { s.bridge.set(b) }

// bridgeRef holds an optional MediaBridge that may be set while requests run.
type bridgeRef struct{ p atomic.Pointer[MediaBridge] }

func (r *bridgeRef) set(b MediaBridge) {
	if b == nil {
		r.p.Store(nil)
		return
	}
	r.p.Store(&b)
}

// get returns the bridge, nil when none is set.
func (r *bridgeRef) get() MediaBridge {
	if p := r.p.Load(); p != nil {
		return *p
	}
	return nil
}

// WithCallMonitors sets where the supervisor finds live calls and keeps the legs
// of supervisors on them (the *Switchboard). Without it live calls are read from
// the store, and call.monitor frames carry the call as stored, without Monitors.
func WithCallMonitors(m CallMonitors) SupervisorOption {
	return func(s *Supervisor) { s.calls = m }
}

// liveCall returns the call by desk id, the switchboard's fresh copy when there is one.
func (s *Supervisor) liveCall(ctx context.Context, callID string) (*Call, error) {
	if callID == "" {
		return nil, fmt.Errorf("call: empty id: %w", ErrNotFound)
	}
	if s.calls != nil {
		return s.calls.LiveCall(ctx, callID)
	}
	c, err := s.store.Call(ctx, callID)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", callID, err)
	}
	return c, nil
}

// mediaCall returns the call u may join: a live, answered call carried by the
// bridge.
func (s *Supervisor) mediaCall(ctx context.Context, callID string) (*Call, MediaBridge, error) {
	bridge := s.bridge.get()
	if bridge == nil {
		return nil, nil, fmt.Errorf("call %s: the desk runs without the media bridge: %w", callID, ErrNoMedia)
	}
	c, err := s.liveCall(ctx, callID)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case !c.Media:
		return nil, nil, fmt.Errorf("call %s is on a proxy-mode line: %w", callID, ErrNoMedia)
	case c.State != CallAnswered:
		return nil, nil, fmt.Errorf("call %s is %s, not in talk: %w", callID, c.State, ErrNotLive)
	}
	return c, bridge, nil
}

// bridgeErr keeps the bridge's own sentinels (ErrNoPhone, ErrNoMedia, ErrNotLive,
// ErrNotFound) and marks anything else ErrBridge.
func bridgeErr(what string, err error) error {
	for _, known := range []error{ErrNoPhone, ErrNoMedia, ErrNoTrunk, ErrNotLive, ErrNotFound, ErrInvalid, ErrForbidden} {
		if errors.Is(err, known) {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return fmt.Errorf("%s: %w: %w", what, ErrBridge, err)
}

// Monitor rings u's registered phone into the live media-mode call callID in mode
// (listen, whisper or barge); when his leg is already in the call it only switches
// the mode. The request is audited ("monitor.request"); the bridge reports what
// follows through MonitorChanged. Supervisors and admins only. Errors: a
// *FieldError for a bad mode, ErrNotFound, ErrNoMedia (proxy-mode call or no
// bridge), ErrNotLive (ringing or over), ErrNoPhone, ErrBridge.
func (s *Supervisor) Monitor(ctx context.Context, u *User, callID string, mode MonitorMode) error {
	if !isSupervisor(u) {
		return fmt.Errorf("monitor: %w", ErrForbidden)
	}
	if !mode.Valid() {
		return &FieldError{Field: "mode", Reason: fmt.Sprintf("%q is not listen, whisper or barge", mode)}
	}
	c, bridge, err := s.mediaCall(ctx, callID)
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	if err := bridge.Monitor(ctx, c.SIPCallID, u.Login, mode); err != nil {
		s.log.Warn("supervisor: monitor refused by the bridge", "call", c.ID, "supervisor", u.Login, "mode", mode, "err", err)
		return bridgeErr("monitor call "+c.ID, err)
	}
	s.audit(ctx, AuditEntry{At: s.now(), Who: u.Login, Action: "monitor.request", Target: c.ID,
		Detail: fmt.Sprintf("%s, operator %s", mode, c.Operator)})
	s.log.Info("supervisor: monitor requested", "call", c.ID, "operator", c.Operator, "supervisor", u.Login, "mode", mode)
	return nil
}

// StopMonitor hangs up u's leg in the call callID. It is audited ("monitor.stop");
// the bridge reports the leg gone through MonitorChanged. Stopping a call that is
// over is ErrNotLive. Supervisors and admins only.
func (s *Supervisor) StopMonitor(ctx context.Context, u *User, callID string) error {
	if !isSupervisor(u) {
		return fmt.Errorf("stop monitor: %w", ErrForbidden)
	}
	bridge := s.bridge.get()
	if bridge == nil {
		return fmt.Errorf("stop monitor of call %s: the desk runs without the media bridge: %w", callID, ErrNoMedia)
	}
	c, err := s.liveCall(ctx, callID)
	if err != nil {
		return fmt.Errorf("stop monitor: %w", err)
	}
	switch {
	case !c.Media:
		return fmt.Errorf("stop monitor: call %s is on a proxy-mode line: %w", callID, ErrNoMedia)
	case !c.Live():
		return fmt.Errorf("stop monitor: call %s is over: %w", callID, ErrNotLive)
	}
	if err := bridge.StopMonitor(ctx, c.SIPCallID, u.Login); err != nil {
		return bridgeErr("stop monitor of call "+c.ID, err)
	}
	s.audit(ctx, AuditEntry{At: s.now(), Who: u.Login, Action: "monitor.stop", Target: c.ID,
		Detail: "operator " + c.Operator})
	s.log.Info("supervisor: monitor stopped", "call", c.ID, "supervisor", u.Login)
	return nil
}

// MonitorChanged is what the bridge reports about a supervisor's leg: it keeps
// the leg on the live call (the board and GET /api/calls/live show it), publishes
// call.monitor to the call's operator and to the supervisors, and audits the
// joined, switched, left and failed changes ("monitor.joined", ...). It is called
// by the cmd/desk adapter, off the SIP path: it may wait for the call's worker.
func (s *Supervisor) MonitorChanged(ctx context.Context, ch MonitorChange) error {
	if ch.SIPCallID == "" || ch.Supervisor == "" {
		return fmt.Errorf("monitor change without a call or a supervisor: %w", ErrInvalid)
	}
	switch ch.State {
	case MonitorRinging, MonitorJoined, MonitorSwitched, MonitorLeft, MonitorFailed:
	default:
		return fmt.Errorf("monitor change: unknown state %q: %w", ch.State, ErrInvalid)
	}
	if ch.At.IsZero() {
		ch.At = s.now()
	}
	var c *Call
	var err error
	if s.calls != nil {
		c, err = s.calls.SetMonitor(ctx, ch)
	} else {
		c, err = s.store.CallBySIPID(ctx, ch.SIPCallID)
	}
	if err != nil {
		s.log.Warn("supervisor: monitor change for an unknown call", "sip_call_id", ch.SIPCallID, "supervisor", ch.Supervisor, "state", ch.State, "err", err)
		return fmt.Errorf("monitor change of sip call %s: %w", ch.SIPCallID, err)
	}
	ev := MonitorEvent{CallID: c.ID, Operator: c.Operator, Supervisor: ch.Supervisor, Mode: ch.Mode,
		State: ch.State, Reason: ch.Reason, At: ch.At}
	if u, err := s.store.User(ctx, ch.Supervisor); err == nil {
		ev.SupervisorName = u.Name
	}
	s.pub.Publish(Event{Type: EventCallMonitor, Operators: audience(c.Operator), Payload: MonitorUpdate{Monitor: ev, Call: c}})
	if ch.State != MonitorRinging {
		// Every use is kept: who heard which operator's call, how, and until when.
		detail := fmt.Sprintf("%s, operator %s", ch.Mode, c.Operator)
		if ch.Reason != "" {
			detail += ": " + ch.Reason
		}
		s.audit(ctx, AuditEntry{At: ch.At, Who: ch.Supervisor, Action: "monitor." + ch.State, Target: c.ID, Detail: detail})
	}
	s.log.Info("supervisor: monitor leg", "call", c.ID, "operator", c.Operator, "supervisor", ch.Supervisor,
		"mode", ch.Mode, "state", ch.State, "reason", ch.Reason)
	return nil
}

// audit writes e; a failure is logged, not returned, as the action itself was done.
func (s *Supervisor) audit(ctx context.Context, e AuditEntry) {
	if err := s.store.Audit(ctx, e); err != nil {
		s.log.Error("supervisor: audit failed", "action", e.Action, "target", e.Target, "err", err)
	}
}
