package desk_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/prometheus/client_golang/prometheus"
)

var mediaLines = []desk.Line{
	{Number: "+74951234567", Name: "Sales", Script: "sales", Source: "web", Media: true, Record: true},
	{Number: "support", Name: "Support", Script: "general", Media: true},
	{Number: "expo", Name: "Expo", Script: "general", Media: true, Record: true, Retention: 30 * 24 * time.Hour},
	{Number: "plain", Name: "Plain", Script: "general"},
}

// TestRouteMedia: the first Route of a call on a media line only hands it to the
// bridge; the bridge's own leg is routed as in proxy mode and marked; a callback
// rings the operator who asked for it and nobody else.
func TestRouteMedia(t *testing.T) {
	const known = "+79160000101"
	tests := []struct {
		name  string
		lines []desk.Line // default mediaLines
		in    desk.Incoming
		ops   []opSpec
		// want
		route     desk.Route // Operator, Media, Record, Retention, Status compared
		reason    string     // a part of Route.Reason
		callMedia bool       // the stored call is marked Media (and Recorded as route.Record)
		direction string
		pinned    bool // a pop of the known contact with the line's script
	}{
		{name: "caller leg on a recording media line goes to the bridge",
			in:    desk.Incoming{Caller: known, Dialled: "84951234567"},
			route: desk.Route{Media: true, Record: true, Retention: desk.DefaultRetention}},
		{name: "caller leg on a media line without recording",
			in:    desk.Incoming{Caller: known, Dialled: "support"},
			route: desk.Route{Media: true}},
		{name: "the line's own retention",
			in:    desk.Incoming{Caller: known, Dialled: "expo"},
			route: desk.Route{Media: true, Record: true, Retention: 30 * 24 * time.Hour}},
		{name: "proxy line rings as before",
			in:    desk.Incoming{Caller: known, Dialled: "plain"},
			route: desk.Route{Operator: "first"}},
		{name: "an unknown number reaches a media default line",
			lines: []desk.Line{{Number: desk.DefaultLine, Name: "Default", Script: "general", Media: true}},
			in:    desk.Incoming{Caller: known, Dialled: "whatever"},
			route: desk.Route{Media: true}},
		{name: "a direct call to a login is never bridged",
			lines: []desk.Line{{Number: desk.DefaultLine, Name: "Default", Script: "general", Media: true}},
			in:    desk.Incoming{Caller: known, Dialled: "second"},
			route: desk.Route{Operator: "second"}},
		{name: "the bridge's leg is routed and marked",
			in:        desk.Incoming{Caller: known, Dialled: "+74951234567", Bridged: true},
			route:     desk.Route{Operator: "first", Record: true, Retention: desk.DefaultRetention},
			callMedia: true},
		{name: "a callback rings only its operator",
			in:        desk.Incoming{Caller: known, Dialled: "+74951234567", Bridged: true, Callback: true, Operator: "second", PromiseID: "p-1"},
			route:     desk.Route{Operator: "second", Record: true, Retention: desk.DefaultRetention},
			callMedia: true, direction: desk.DirectionCallback, pinned: true},
		{name: "a callback ignores away: he pressed the button",
			ops:       []opSpec{{login: "first", registered: true, page: true}, {login: "second", registered: true, page: true, away: true}},
			in:        desk.Incoming{Caller: known, Dialled: "support", Bridged: true, Callback: true, Operator: "second"},
			route:     desk.Route{Operator: "second"},
			callMedia: true, direction: desk.DirectionCallback, pinned: true},
		{name: "a callback whose operator is busy",
			ops:    []opSpec{{login: "first", registered: true, page: true}, {login: "second", registered: true, page: true, busy: true}},
			in:     desk.Incoming{Caller: known, Dialled: "support", Bridged: true, Callback: true, Operator: "second"},
			route:  desk.Route{Status: 480},
			reason: "second is busy"},
		{name: "a callback whose operator has no phone",
			ops:    []opSpec{{login: "first", registered: true, page: true}, {login: "second", page: true}},
			in:     desk.Incoming{Caller: known, Dialled: "support", Bridged: true, Callback: true, Operator: "second"},
			route:  desk.Route{Status: 480},
			reason: "no registered phone"},
		{name: "a callback that rang out does not hunt",
			in:     desk.Incoming{Caller: known, Dialled: "support", Bridged: true, Callback: true, Operator: "second", Tried: []string{"second"}},
			route:  desk.Route{Status: 480},
			reason: "did not answer"},
		{name: "a callback for an unknown operator",
			in:     desk.Incoming{Caller: known, Dialled: "support", Bridged: true, Callback: true, Operator: "ghost"},
			route:  desk.Route{Status: 480},
			reason: "ghost is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := tt.lines
			if lines == nil {
				lines = mediaLines
			}
			e := newEnv(t, desk.WithLines(lines, "general"))
			ops := tt.ops
			if ops == nil {
				ops = []opSpec{{login: "first", registered: true, page: true}, {login: "second", registered: true, page: true}}
			}
			e.addOps(ops...)
			e.addContact("Anna", "", known)
			ctx := context.Background()
			// No Refresh: the first call after start must tell a login from a line too.
			in := tt.in
			in.SIPCallID, in.Received = "sip-"+t.Name(), time.Now()
			r := e.sb.Route(ctx, in)
			if r.Operator != tt.route.Operator || r.Media != tt.route.Media || r.Record != tt.route.Record ||
				r.Retention != tt.route.Retention || r.Status != tt.route.Status || !strings.Contains(r.Reason, tt.reason) {
				t.Fatalf("Route = %+v; want %+v (reason %q)", r, tt.route, tt.reason)
			}
			if r.Media {
				// Handed to the bridge: nobody claimed, nothing stored, nothing popped.
				e.sb.Close()
				if _, err := e.store.CallBySIPID(ctx, in.SIPCallID); !errors.Is(err, desk.ErrNotFound) {
					t.Errorf("a call was stored for the caller leg: %v", err)
				}
				for _, typ := range []string{desk.EventCallRinging, desk.EventCallMissed} {
					if evs := e.pub.of(typ); len(evs) != 0 {
						t.Errorf("%s for the caller leg: %+v", typ, evs)
					}
				}
				for _, o := range ops {
					if op := e.operator(o.login); op.CallID != "" && !o.busy {
						t.Errorf("%s claimed: %+v", o.login, op)
					}
				}
				return
			}
			if r.Status != 0 {
				return
			}
			pops := e.pub.wait(t, desk.EventCallRinging, 1)
			pop := pops[0].Payload.(desk.Pop)
			c := pop.Call
			if c.Media != tt.callMedia || c.Recorded != (tt.callMedia && r.Record) || c.Direction != tt.direction || c.PromiseID != in.PromiseID {
				t.Errorf("call = %+v", c)
			}
			if !slices.Equal(pops[0].Operators, []string{tt.route.Operator}) {
				t.Errorf("pop to %v", pops[0].Operators)
			}
			if tt.pinned {
				want := "general"
				if in.Dialled == "+74951234567" {
					want = "sales"
				}
				if pop.Contact == nil || pop.Contact.Name != "Anna" || pop.Script == nil || pop.Script.ID != want {
					t.Errorf("callback pop: contact %+v script %+v; want Anna and %s", pop.Contact, pop.Script, want)
				}
			}
			if op := e.operator(tt.route.Operator); op.CallID != c.ID {
				t.Errorf("%s not claimed for the call: %+v", tt.route.Operator, op)
			}
		})
	}
}

// TestCallbackMissedLeavesNoPromise: a callback nobody took is not the customer's
// missed call: no callback promise, no missed call in his history.
func TestCallbackMissedLeavesNoPromise(t *testing.T) {
	e := newSalesEnv(t)
	ctx := context.Background()
	c := &desk.Call{ID: "cb-call", SIPCallID: "sip-cb", From: "+79160000111", To: "sales", Line: "sales",
		State: desk.CallMissed, Direction: desk.DirectionCallback, Started: time.Now()}
	e.sales.CallMissed(ctx, c)
	if _, err := e.store.Promise(ctx, "cb-cb-call"); !errors.Is(err, desk.ErrNotFound) {
		t.Errorf("a missed callback made a callback promise: %v", err)
	}
}

// monitorEnv is a switchboard with a live media call of alice's, and the
// supervisor's service keeping monitors on it.
type monitorEnv struct {
	*env
	sup    *desk.Supervisor
	bridge *recBridge
	callID string
}

// recBridge is a desk.MediaBridge that records what it was asked.
type recBridge struct {
	mu  sync.Mutex
	log []string
}

func (b *recBridge) Monitor(_ context.Context, sipCallID, supervisor string, mode desk.MonitorMode) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, "monitor "+sipCallID+" "+supervisor+" "+string(mode))
	return nil
}

func (b *recBridge) StopMonitor(_ context.Context, sipCallID, supervisor string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, "stop "+sipCallID+" "+supervisor)
	return nil
}

func (b *recBridge) Callback(_ context.Context, cb desk.CallbackRequest) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, "callback "+cb.Operator+" "+cb.Number)
	return "cb-sip", nil
}

func newMonitorEnv(t *testing.T) *monitorEnv {
	t.Helper()
	e := newEnv(t, desk.WithLines(mediaLines, "general"))
	e.addOps(opSpec{login: "alice", registered: true, page: true})
	for _, u := range []*desk.User{sveta, {Login: "root", Role: desk.RoleAdmin}} {
		cp := *u
		if err := e.store.CreateUser(context.Background(), &cp); err != nil {
			t.Fatal(err)
		}
	}
	b := &recBridge{}
	sup := desk.NewSupervisor(e.store, e.pub, desk.WithSupervisorLogger(quietLog()),
		desk.WithSupervisorMediaBridge(b), desk.WithCallMonitors(e.sb))
	ctx := context.Background()
	r := e.sb.Route(ctx, desk.Incoming{SIPCallID: "op-leg", Caller: "+79990001122", Dialled: "+74951234567", Bridged: true, Received: time.Now()})
	if r.Operator != "alice" {
		t.Fatalf("Route = %+v", r)
	}
	pop := e.pub.wait(t, desk.EventCallRinging, 1)[0].Payload.(desk.Pop)
	return &monitorEnv{env: e, sup: sup, bridge: b, callID: pop.Call.ID}
}

func TestMonitorLifecycle(t *testing.T) {
	e := newMonitorEnv(t)
	ctx := context.Background()

	// Ringing: nothing to join yet.
	if err := e.sup.Monitor(ctx, sveta, e.callID, desk.MonitorListen); !errors.Is(err, desk.ErrNotLive) {
		t.Fatalf("Monitor of a ringing call: %v; want ErrNotLive", err)
	}
	e.sb.Answered("op-leg", "alice", time.Now())
	e.pub.wait(t, desk.EventCallAnswered, 1)
	// The switchboard's copy is fresh at once, whatever the store has saved yet.
	for _, tc := range []struct {
		u    *desk.User
		mode desk.MonitorMode
		want error
	}{
		{maria, desk.MonitorListen, desk.ErrForbidden},
		{nil, desk.MonitorListen, desk.ErrForbidden},
		{sveta, "spy", desk.ErrInvalid},
		{sveta, desk.MonitorListen, nil},
	} {
		if err := e.sup.Monitor(ctx, tc.u, e.callID, tc.mode); !errors.Is(err, tc.want) {
			t.Errorf("Monitor(%v, %s) = %v; want %v", tc.u, tc.mode, err, tc.want)
		}
	}
	if err := e.sup.Monitor(ctx, sveta, "nope", desk.MonitorListen); !errors.Is(err, desk.ErrNotFound) {
		t.Errorf("Monitor of an unknown call: %v", err)
	}

	at := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	steps := []struct {
		ch       desk.MonitorChange
		monitors string // the call's Monitors after the change, "login/mode/state" joined by ","
	}{
		{desk.MonitorChange{Supervisor: "sveta", Mode: desk.MonitorListen, State: desk.MonitorRinging}, "sveta/listen/ringing"},
		{desk.MonitorChange{Supervisor: "sveta", Mode: desk.MonitorListen, State: desk.MonitorJoined}, "sveta/listen/joined"},
		{desk.MonitorChange{Supervisor: "root", Mode: desk.MonitorBarge, State: desk.MonitorFailed, Reason: "486 busy"}, "sveta/listen/joined"},
		{desk.MonitorChange{Supervisor: "sveta", Mode: desk.MonitorWhisper, State: desk.MonitorSwitched}, "sveta/whisper/switched"},
		{desk.MonitorChange{Supervisor: "sveta", Mode: desk.MonitorWhisper, State: desk.MonitorLeft}, ""},
	}
	for i, st := range steps {
		ch := st.ch
		ch.SIPCallID, ch.At = "op-leg", at.Add(time.Duration(i)*time.Second)
		if err := e.sup.MonitorChanged(ctx, ch); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		live, err := e.sb.Live(ctx)
		if err != nil || len(live) != 1 {
			t.Fatalf("Live = %v, %v", live, err)
		}
		var got []string
		for _, m := range live[0].Monitors {
			got = append(got, m.Supervisor+"/"+string(m.Mode)+"/"+m.State)
		}
		if strings.Join(got, ",") != st.monitors {
			t.Errorf("step %d (%s %s): monitors %q; want %q", i, ch.Supervisor, ch.State, got, st.monitors)
		}
		evs := e.pub.wait(t, desk.EventCallMonitor, i+1)
		ev := evs[i]
		up := ev.Payload.(desk.MonitorUpdate)
		if !slices.Equal(ev.Operators, []string{"alice"}) || up.Monitor.CallID != e.callID || up.Monitor.Operator != "alice" ||
			up.Monitor.Supervisor != ch.Supervisor || up.Monitor.State != ch.State || up.Monitor.Mode != ch.Mode ||
			up.Monitor.Reason != ch.Reason || !up.Monitor.At.Equal(ch.At) || up.Call == nil || len(up.Call.Monitors) != len(got) {
			t.Errorf("step %d: event to %v %+v", i, ev.Operators, up)
		}
	}
	// What the store keeps matches, once the worker saved it.
	waitFor(t, func() bool {
		c, err := e.store.CallBySIPID(ctx, "op-leg")
		return err == nil && len(c.Monitors) == 0 && c.State == desk.CallAnswered
	})

	if err := e.sup.StopMonitor(ctx, sveta, e.callID); err != nil {
		t.Fatal(err)
	}
	e.bridge.mu.Lock()
	if want := []string{"monitor op-leg sveta listen", "stop op-leg sveta"}; !slices.Equal(e.bridge.log, want) {
		t.Errorf("bridge asked %q; want %q", e.bridge.log, want)
	}
	e.bridge.mu.Unlock()

	log, err := e.store.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range log {
		actions = append(actions, a.Action+" "+a.Who)
	}
	slices.Reverse(actions)
	want := []string{"monitor.request sveta", "monitor.joined sveta", "monitor.failed root", "monitor.switched sveta", "monitor.left sveta", "monitor.stop sveta"}
	if !slices.Equal(actions, want) {
		t.Errorf("audit %q; want %q", actions, want)
	}

	// A leg still in when the call ends goes with it.
	if err := e.sup.MonitorChanged(ctx, desk.MonitorChange{SIPCallID: "op-leg", Supervisor: "root", Mode: desk.MonitorBarge, State: desk.MonitorJoined}); err != nil {
		t.Fatal(err)
	}
	e.sb.Ended("op-leg", "caller", time.Now())
	ended := e.pub.wait(t, desk.EventCallEnded, 1)[0].Payload.(desk.CallUpdate)
	if len(ended.Call.Monitors) != 0 {
		t.Errorf("monitors on the ended call: %+v", ended.Call.Monitors)
	}
	// The bridge's late report of the leg leaving is still told and audited.
	if err := e.sup.MonitorChanged(ctx, desk.MonitorChange{SIPCallID: "op-leg", Supervisor: "root", Mode: desk.MonitorBarge, State: desk.MonitorLeft}); err != nil {
		t.Fatal(err)
	}
	if err := e.sup.Monitor(ctx, sveta, e.callID, desk.MonitorListen); !errors.Is(err, desk.ErrNotLive) {
		t.Errorf("Monitor of an ended call: %v; want ErrNotLive", err)
	}
	if err := e.sup.MonitorChanged(ctx, desk.MonitorChange{SIPCallID: "unknown", Supervisor: "root", State: desk.MonitorLeft}); !errors.Is(err, desk.ErrNotFound) {
		t.Errorf("change of an unknown call: %v; want ErrNotFound", err)
	}
	if err := e.sup.MonitorChanged(ctx, desk.MonitorChange{SIPCallID: "op-leg", Supervisor: "root", State: "dancing"}); !errors.Is(err, desk.ErrInvalid) {
		t.Errorf("unknown state: %v; want ErrInvalid", err)
	}
}

func TestMonitorWithoutBridge(t *testing.T) {
	e := newMonitorEnv(t)
	e.sup.SetMediaBridge(nil)
	e.sb.Answered("op-leg", "alice", time.Now())
	e.pub.wait(t, desk.EventCallAnswered, 1)
	if err := e.sup.Monitor(context.Background(), sveta, e.callID, desk.MonitorListen); !errors.Is(err, desk.ErrNoMedia) {
		t.Errorf("Monitor without a bridge: %v; want ErrNoMedia", err)
	}
}

// TestCallbackUnreached: a callback's operator leg ends. Unless the bridge reported
// the customer connected first, the call closes as unreached: the reason is said
// (the bridge's status, when it had one), the operator owes no wrap-up and may not
// write one, nothing was recorded, the contact's history and the audit log note the
// attempt, the promise stays open, and desk_calls_total counts it unreached. A
// connected callback still owes its wrap-up and counts answered.
func TestCallbackUnreached(t *testing.T) {
	const known = "+79160000101"
	tests := []struct {
		name      string
		connected bool // the bridge reported the customer's answer
		status    int  // the bridge reported this refusal; 0: none
		by        string
		// want
		unreached int
		reason    string
	}{
		{name: "busy", status: 486, by: "caller", unreached: 486, reason: "customer busy"},
		{name: "no answer", status: 480, by: "caller", unreached: 480, reason: "customer did not answer"},
		{name: "declined", status: 603, by: "caller", unreached: 603, reason: "customer declined"},
		{name: "trunk failure", status: 503, by: "caller", unreached: 503, reason: "customer not reached (status 503)"},
		{name: "operator hangs up on the busy tone", status: 486, by: "operator", unreached: 486, reason: "customer busy"},
		// The bridge has no status to report when the operator gives up while the
		// customer's phone rings: his BYE reaches the switchboard first.
		{name: "operator hangs up while it rings", by: "operator", unreached: 487, reason: "operator hung up before the customer answered"},
		{name: "the bridge hangs up without a status", by: "caller", unreached: 487, reason: "customer did not answer"},
		{name: "connected", connected: true, by: "caller", reason: "caller hung up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			var sales *desk.Sales
			reg := prometheus.NewRegistry()
			e := newEnv(t, desk.WithLines(mediaLines, "general"), desk.WithRegisterer(reg), desk.WithCallHooks(
				func(ctx context.Context, c *desk.Call) { sales.CallEnded(ctx, c) },
				func(ctx context.Context, c *desk.Call) { sales.CallMissed(ctx, c) }))
			sales = desk.NewSales(e.store, e.pub, desk.WithSalesLines(mediaLines, "general"), desk.WithSalesLogger(quietLog()))
			e.addOps(opSpec{login: "second", registered: true, page: true})
			anna := e.addContact("Anna", "", known)
			now := time.Now()
			if err := e.store.SavePromise(ctx, &desk.Promise{ID: "p-cb", ContactID: anna.ID, Phone: known, Owner: "second",
				Kind: "promise", What: "send the price list", Due: now.Add(time.Hour), Created: now, State: desk.PromiseOpen}); err != nil {
				t.Fatal(err)
			}
			// The sales line records, so a connected callback is recorded.
			in := desk.Incoming{SIPCallID: "sip-cb", Caller: known, Dialled: "+74951234567", Bridged: true, Callback: true,
				Operator: "second", PromiseID: "p-cb", Received: now}
			if r := e.sb.Route(ctx, in); r.Operator != "second" || !r.Record {
				t.Fatalf("Route = %+v", r)
			}
			e.sb.Answered("sip-cb", "second", time.Now())
			if tt.connected {
				e.sb.CallbackConnected("sip-cb")
			}
			if tt.status != 0 {
				e.sb.CallbackUnreached("sip-cb", tt.status)
			}
			e.sb.Ended("sip-cb", tt.by, time.Now())
			ended := e.pub.wait(t, desk.EventCallEnded, 1)[0].Payload.(desk.CallUpdate).Call
			if ended.Unreached != tt.unreached || ended.Reason != tt.reason || ended.Recorded != tt.connected {
				t.Errorf("call.ended carries unreached %d, reason %q, recorded %v; want %d, %q, %v",
					ended.Unreached, ended.Reason, ended.Recorded, tt.unreached, tt.reason, tt.connected)
			}
			e.sb.Close()

			call, err := e.store.CallBySIPID(ctx, "sip-cb")
			if err != nil {
				t.Fatal(err)
			}
			if call.Unreached != tt.unreached || call.Reason != tt.reason || call.Talked() != tt.connected {
				t.Errorf("stored call: unreached %d, reason %q, talked %v", call.Unreached, call.Reason, call.Talked())
			}
			wantStatus := desk.StatusAvailable
			if tt.connected {
				wantStatus = desk.StatusWrapup
			}
			if o := e.operator("second"); o.Status != wantStatus {
				t.Errorf("operator after the call: %s; want %s", o.Status, wantStatus)
			}
			op := &desk.User{Login: "second", Role: desk.RoleOperator}
			rec, err := sales.Record(ctx, op, call.ID)
			if err != nil || rec.NoWrapup == tt.connected {
				t.Errorf("record = %+v, %v; want no_wrapup %v", rec, err, !tt.connected)
			}
			hist, err := e.store.History(ctx, anna.ID, 10)
			if err != nil {
				t.Fatal(err)
			}
			log, err := e.store.AuditLog(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			var audited []string
			for _, a := range log {
				if a.Action == "callback.unreached" {
					audited = append(audited, a.Target+": "+a.Detail)
				}
			}
			counts := map[string]float64{}
			for _, o := range []string{"answered", "unreached"} {
				counts[o] = metric(t, reg, "desk_calls_total", map[string]string{"outcome": o})
			}
			if !tt.connected {
				if len(hist) != 1 || hist[0].Outcome != desk.OutcomeUnreached || hist[0].CallID != call.ID || hist[0].Recorded {
					t.Errorf("history = %+v; want one unreached call", hist)
				}
				if want := fmt.Sprintf("promise p-cb: call %s: %s (%d)", call.ID, tt.reason, tt.unreached); !slices.Equal(audited, []string{want}) {
					t.Errorf("audited %q; want %q", audited, want)
				}
				if _, err := sales.Wrapup(ctx, op, call.ID, desk.WrapupRequest{Outcome: desk.OutcomeInterest}); !errors.Is(err, desk.ErrInvalid) {
					t.Errorf("wrap-up of an unreached callback: %v; want ErrInvalid", err)
				}
				if counts["answered"] != 0 || counts["unreached"] != 1 {
					t.Errorf("desk_calls_total %v; want unreached 1, answered 0", counts)
				}
			} else {
				if len(hist) != 0 || len(audited) != 0 {
					// The wrap-up writes the history of a call that was talked.
					t.Errorf("connected callback: history %+v, audited %q; want neither before the wrap-up", hist, audited)
				}
				if counts["answered"] != 1 || counts["unreached"] != 0 {
					t.Errorf("desk_calls_total %v; want answered 1, unreached 0", counts)
				}
			}
			p, err := e.store.Promise(ctx, "p-cb")
			if err != nil || p.State != desk.PromiseOpen {
				t.Errorf("promise = %+v, %v; want still open", p, err)
			}
			if _, err := e.store.Promise(ctx, "cb-"+call.ID); !errors.Is(err, desk.ErrNotFound) {
				t.Errorf("a callback promise was made for the callback: %v", err)
			}
		})
	}
}
