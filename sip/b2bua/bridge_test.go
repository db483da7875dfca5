package b2bua_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/emiago/diago"

	"github.com/calldesk/desk/sip"
	"github.com/calldesk/desk/sip/b2bua"
	"github.com/calldesk/desk/sip/b2bua/b2buatest"
)

// lines is the proxy's Handler in these tests: line "sales" is in media mode and
// rings operator "op1"; supervisors are rung on their own bindings. The desk's real
// Handler (cmd/desk over the switchboard) is tested end to end in cmd/desk.
type lines struct {
	mu       sync.Mutex
	bindings map[string][]sip.Binding
	events   []sip.CallEvent
	invites  []sip.Invite
	record   time.Duration
}

func (h *lines) DigestHA1(context.Context, string) (string, error) { return "", sip.ErrUnknownUser }
func (h *lines) Bindings(_ context.Context, u string) ([]sip.Binding, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bindings[u], nil
}
func (h *lines) PutBindings(_ context.Context, u string, b []sip.Binding) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bindings[u] = b
	return nil
}
func (h *lines) bind(user string, p *b2buatest.Peer) {
	h.PutBindings(context.Background(), user, []sip.Binding{{User: user, Contact: "sip:" + user + "@" + p.Addr,
		Source: p.Addr, Transport: "udp", Expires: time.Now().Add(time.Hour)}})
}
func (h *lines) Route(_ context.Context, inv sip.Invite) sip.Decision {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.invites = append(h.invites, inv)
	if len(inv.Tried) > 0 {
		return sip.Decision{Status: 480, Reason: "Nobody Else"}
	}
	switch inv.Leg {
	case "":
		if inv.Dialled != "sales" {
			return sip.Decision{Status: 404}
		}
		return sip.Decision{Media: true, Record: h.record > 0, Retention: h.record}
	case sip.LegOperator:
		return sip.Decision{Target: "op1", Contacts: h.bindings["op1"], RingTimeout: 5 * time.Second}
	case sip.LegMonitor:
		return sip.Decision{Target: inv.Dialled, Contacts: h.bindings[inv.Dialled], RingTimeout: 5 * time.Second, Quiet: true}
	case sip.LegCallback:
		return sip.Decision{Target: inv.Operator, Contacts: h.bindings[inv.Operator], RingTimeout: 5 * time.Second}
	}
	return sip.Decision{Status: 403}
}
func (h *lines) CallEvent(ev sip.CallEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}
func (h *lines) eventsOf(callID string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, ev := range h.events {
		if ev.CallID == callID {
			s := ev.Kind.String()
			if ev.By != "" {
				s += ":" + ev.By
			}
			out = append(out, s)
		}
	}
	return out
}

type unanswered struct {
	callID string
	status int
}

// rig is a proxy with its bridge, and the phones.
type rig struct {
	h        *lines
	proxy    *sip.Server
	bridge   *b2bua.Engine
	monitors chan b2bua.MonitorEvent
	kept     chan [2]string
	// unanswered gets the Call-ID and status of each callback whose customer did
	// not answer.
	unanswered chan unanswered
	dir        string
	caller     *b2buatest.Peer
	operator   *b2buatest.Peer
	sup        *b2buatest.Peer
}

func newRig(t *testing.T, opts ...b2bua.Option) *rig {
	t.Helper()
	r := &rig{h: &lines{bindings: map[string][]sip.Binding{}}, monitors: make(chan b2bua.MonitorEvent, 64),
		kept: make(chan [2]string, 4), unanswered: make(chan unanswered, 4), dir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	base := []b2bua.Option{
		b2bua.OnMonitor(func(ev b2bua.MonitorEvent) { r.monitors <- ev }),
		b2bua.OnCallbackAnswered(func(id, promise string) { r.kept <- [2]string{id, promise} }),
		b2bua.OnCallbackUnanswered(func(id string, status int) { r.unanswered <- unanswered{id, status} }),
		b2bua.WithRecorder(func(id string, keep time.Duration) (io.WriteSeeker, io.Closer, error) {
			f, err := os.Create(filepath.Join(r.dir, "call.wav"))
			return f, f, err
		}),
	}
	var log *slog.Logger
	if os.Getenv("B2BUA_TEST_LOG") != "" { // to see both sides' logs when a test fails
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		base = append(base, b2bua.WithLogger(log))
	}
	br, err := b2bua.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Start(ctx); err != nil {
		t.Fatal(err)
	}
	px, err := sip.New(r.h, sip.WithDomain("desk.test"), sip.WithBridge(br.Addr()), sip.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- px.ListenAndServe(ctx, "127.0.0.1:0") }()
	select {
	case <-px.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	br.SetProxy(px.Addr())
	r.proxy, r.bridge = px, br
	t.Cleanup(func() {
		cancel()
		br.Close()
		<-done
	})
	r.caller = b2buatest.NewPeer(t, "caller", b2buatest.ToneCaller)
	r.operator = b2buatest.NewPeer(t, "op1", b2buatest.ToneOperator)
	r.sup = b2buatest.NewPeer(t, "sup1", b2buatest.ToneSupervisor)
	r.h.bind("op1", r.operator)
	r.h.bind("sup1", r.sup)
	return r
}

func (r *rig) waitMonitor(t *testing.T, state string) b2bua.MonitorEvent {
	t.Helper()
	for {
		select {
		case ev := <-r.monitors:
			if ev.State == state {
				return ev
			}
			if ev.State == "failed" {
				t.Fatalf("supervisor leg failed: %s", ev.Reason)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s monitor event", state)
		}
	}
}

// TestMonitorModes places a media-mode call, mixes a supervisor in each mode, checks
// who hears whom by their tones, and that a hang-up by either side tears down every
// leg, leaving no RTP socket or goroutine behind.
func TestMonitorModes(t *testing.T) {
	tests := []struct {
		mode      b2bua.Mode
		hangup    string
		callerHas bool // the caller hears the supervisor
		opHas     bool // the operator hears the supervisor
	}{
		{b2bua.Listen, "caller", false, false},
		{b2bua.Listen, "operator", false, false},
		{b2bua.Whisper, "caller", false, true},
		{b2bua.Whisper, "operator", false, true},
		{b2bua.Barge, "caller", true, true},
		{b2bua.Barge, "operator", true, true},
	}
	for _, tc := range tests {
		t.Run(string(tc.mode)+"/"+tc.hangup+" hangs up", func(t *testing.T) {
			r := newRig(t)
			runtime.GC()
			sockets, goroutines := b2buatest.OpenSockets(t), runtime.NumGoroutine()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cd, callerAudio, err := r.caller.Call(ctx, "sip:sales@"+r.proxy.Addr())
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			op := r.operator.WaitAnswered(t)
			callID := op.Req.CallID().Value()
			b2buatest.ExpectHears(t, "caller", callerAudio, map[float64]bool{b2buatest.ToneOperator: true, b2buatest.ToneCaller: false})
			b2buatest.ExpectHears(t, "operator", op.Audio, map[float64]bool{b2buatest.ToneCaller: true, b2buatest.ToneOperator: false})

			start := time.Now()
			if err := r.bridge.Monitor(ctx, callID, "sup1", tc.mode); err != nil {
				t.Fatalf("monitor: %v", err)
			}
			sup := r.sup.WaitAnswered(t)
			ev := r.waitMonitor(t, "joined")
			if ev.Mode != tc.mode || ev.Setup <= 0 || ev.Setup > time.Since(start) {
				t.Fatalf("joined event %+v", ev)
			}
			b2buatest.ExpectHears(t, "supervisor", sup.Audio, map[float64]bool{b2buatest.ToneCaller: true, b2buatest.ToneOperator: true})
			b2buatest.ExpectHears(t, "caller", callerAudio, map[float64]bool{b2buatest.ToneOperator: true, b2buatest.ToneSupervisor: tc.callerHas})
			b2buatest.ExpectHears(t, "operator", op.Audio, map[float64]bool{b2buatest.ToneCaller: true, b2buatest.ToneSupervisor: tc.opHas})

			switch tc.hangup {
			case "caller":
				if err := cd.Hangup(ctx); err != nil {
					t.Fatalf("caller BYE: %v", err)
				}
			case "operator":
				if err := op.D.Hangup(ctx); err != nil {
					t.Fatalf("operator BYE: %v", err)
				}
			}
			for name, c := range map[string]context.Context{"caller": cd.Context(), "operator": op.D.Context(), "supervisor": sup.D.Context()} {
				select {
				case <-c.Done():
				case <-time.After(5 * time.Second):
					t.Fatalf("the %s leg is still up after the %s hung up", name, tc.hangup)
				}
			}
			r.waitMonitor(t, "left")
			if err := b2buatest.Eventually(5*time.Second, func() bool { return r.bridge.Active() == 0 }); err != nil {
				t.Fatalf("bridge still carries %d calls", r.bridge.Active())
			}
			// The proxy reports the end once the BYE's 200 came back through it.
			if err := b2buatest.Eventually(5*time.Second, func() bool {
				got := r.h.eventsOf(callID)
				return contains(got, "answered") && contains(got, "ended:"+byOf(tc.hangup))
			}); err != nil {
				t.Fatalf("events of the operator leg: %v", r.h.eventsOf(callID))
			}
			if got := r.h.eventsOf(cd.InviteRequest.CallID().Value()); len(got) != 0 {
				t.Fatalf("the caller's leg to the bridge is no desk call, yet reported %v", got)
			}
			cd.Close()
			if err := b2buatest.Eventually(5*time.Second, func() bool { return b2buatest.OpenSockets(t) <= sockets }); err != nil {
				t.Fatalf("sockets: %d open after the call, %d before", b2buatest.OpenSockets(t), sockets)
			}
			if err := b2buatest.Eventually(5*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines+2 }); err != nil {
				buf := make([]byte, 1<<20)
				t.Fatalf("goroutines: %d after the call, %d before\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

// byOf maps who hung up to the proxy's EventEnded.By of the operator leg: the bridge
// is that leg's caller, so a caller's BYE reaches the proxy from the bridge.
func byOf(who string) string {
	if who == "operator" {
		return "operator"
	}
	return "caller"
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// TestSwitchModeWithoutRedial switches listen → whisper → barge on one supervisor leg.
func TestSwitchModeWithoutRedial(t *testing.T) {
	r := newRig(t)
	r.h.mu.Lock()
	r.h.record = time.Hour
	r.h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cd, callerAudio, err := r.caller.Call(ctx, "sip:sales@"+r.proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer cd.Close()
	op := r.operator.WaitAnswered(t)
	callID := op.Req.CallID().Value()
	if err := r.bridge.Monitor(ctx, callID, "sup1", b2bua.Listen); err != nil {
		t.Fatal(err)
	}
	sup := r.sup.WaitAnswered(t)
	r.waitMonitor(t, "joined")
	steps := []struct {
		mode             b2bua.Mode
		callerHas, opHas bool
	}{
		{b2bua.Listen, false, false},
		{b2bua.Whisper, false, true},
		{b2bua.Barge, true, true},
		{b2bua.Listen, false, false},
	}
	for _, s := range steps {
		if err := r.bridge.Monitor(ctx, callID, "sup1", s.mode); err != nil {
			t.Fatal(err)
		}
		b2buatest.ExpectHears(t, "caller in "+string(s.mode), callerAudio, map[float64]bool{b2buatest.ToneSupervisor: s.callerHas, b2buatest.ToneOperator: true})
		b2buatest.ExpectHears(t, "operator in "+string(s.mode), op.Audio, map[float64]bool{b2buatest.ToneSupervisor: s.opHas, b2buatest.ToneCaller: true})
	}
	select {
	case <-r.sup.Answered:
		t.Fatal("the supervisor's phone was rung again for a mode switch")
	default:
	}
	// His own hang-up leaves the call as it was.
	if err := sup.D.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	r.waitMonitor(t, "left")
	b2buatest.ExpectHears(t, "caller after the supervisor left", callerAudio, map[float64]bool{b2buatest.ToneOperator: true, b2buatest.ToneSupervisor: false})
	if err := cd.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b2buatest.Eventually(5*time.Second, func() bool { return r.bridge.Active() == 0 }); err != nil {
		t.Fatal("call not torn down")
	}
	b, err := os.ReadFile(filepath.Join(r.dir, "call.wav"))
	if err != nil {
		t.Fatal(err)
	}
	b2buatest.CheckStereoWAV(t, b, b2buatest.ToneCaller, b2buatest.ToneOperator)
}

// TestCallback dials a callback: the operator's phone first, through the proxy with
// the pinned operator, then the customer through a test trunk; both hear each other
// and the promise is reported kept when the customer answers.
func TestCallback(t *testing.T) {
	customer := b2buatest.NewPeer(t, "customer", b2buatest.ToneCaller,
		b2buatest.WithDigest(diago.DigestAuth{Username: "desk", Password: "trunk-secret", Realm: "trunk.test"}))
	customer.RingFor.Store(int64(1500 * time.Millisecond))
	r := newRig(t, b2bua.WithTrunk(b2bua.Trunk{URI: "sip:" + customer.Addr, From: "sales", Username: "desk", Password: "trunk-secret"}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := r.bridge.Callback(ctx, b2bua.Callback{Operator: "op1", Number: "+79161234567", Line: "sales", Promise: "p-1"})
	if err != nil {
		t.Fatal(err)
	}
	op := r.operator.WaitAnswered(t)
	// The customer's phone rings for 1.5 s: the operator hears the ringback tone,
	// whose first burst lasts 1 s, instead of silence.
	b2buatest.ExpectHears(t, "operator while the customer rings", op.Audio, map[float64]bool{b2bua.ToneHz: true})
	if got := op.Req.CallID().Value(); got != id {
		t.Fatalf("operator leg Call-ID %q, Callback returned %q", got, id)
	}
	if u := op.Req.From().Address.User; u != "+79161234567" {
		t.Fatalf("operator sees caller %q", u)
	}
	cust := customer.WaitAnswered(t)
	if u := cust.Req.Recipient.User; u != "+79161234567" {
		t.Fatalf("trunk asked for %q", u)
	}
	if customer.Challenged.Load() == 0 || cust.Req.GetHeader("Authorization") == nil {
		t.Fatalf("the trunk's digest challenge was not answered (challenged %d times)", customer.Challenged.Load())
	}
	select {
	case k := <-r.kept:
		if k != [2]string{id, "p-1"} {
			t.Fatalf("kept %v", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("callback answer not reported")
	}
	r.h.mu.Lock()
	var leg sip.Invite
	for _, inv := range r.h.invites {
		if inv.CallID == id {
			leg = inv
		}
	}
	r.h.mu.Unlock()
	if leg.Leg != sip.LegCallback || leg.Operator != "op1" || leg.Promise != "p-1" || leg.Caller != "+79161234567" {
		t.Fatalf("the proxy saw %+v", leg)
	}
	// The ringback stops with the answer.
	b2buatest.ExpectHears(t, "operator", op.Audio, map[float64]bool{b2buatest.ToneCaller: true, b2bua.ToneHz: false})
	b2buatest.ExpectHears(t, "customer", cust.Audio, map[float64]bool{b2buatest.ToneOperator: true})
	// A supervisor can coach a callback like an inbound call: the customer has the
	// caller's place.
	if err := r.bridge.Monitor(ctx, id, "sup1", b2bua.Whisper); err != nil {
		t.Fatal(err)
	}
	sup := r.sup.WaitAnswered(t)
	r.waitMonitor(t, "joined")
	b2buatest.ExpectHears(t, "supervisor of the callback", sup.Audio, map[float64]bool{b2buatest.ToneCaller: true, b2buatest.ToneOperator: true})
	b2buatest.ExpectHears(t, "operator coached", op.Audio, map[float64]bool{b2buatest.ToneCaller: true, b2buatest.ToneSupervisor: true})
	b2buatest.ExpectHears(t, "customer", cust.Audio, map[float64]bool{b2buatest.ToneOperator: true, b2buatest.ToneSupervisor: false})
	select {
	case u := <-r.unanswered:
		t.Fatalf("an answered callback reported unanswered: %+v", u)
	default:
	}
	if err := cust.D.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-op.D.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("operator leg still up after the customer hung up")
	}
	if err := b2buatest.Eventually(5*time.Second, func() bool { return r.bridge.Active() == 0 }); err != nil {
		t.Fatal("callback not torn down")
	}
}

// TestCallbackNotAnswered: the operator answers his phone, but the customer is never
// on the line. In every case the operator's leg is hung up, the customer's phone
// was never answered, nothing is reported kept, and the bridge lets go of the call.
//   - busy: the operator hears the busy tone, and 486 is reported;
//   - ring timeout: the customer's phone rings past the timeout, is cancelled, and
//     408 is reported;
//   - the operator gives up while he hears the ringback: the customer's leg is
//     cancelled and nothing is reported (the trunk gave no status; the desk closes
//     the call from the operator's BYE).
func TestCallbackNotAnswered(t *testing.T) {
	tests := []struct {
		name    string
		reject  int32         // the customer's phone answers this status
		ringFor time.Duration // how long the customer's phone rings before it would answer
		opts    []b2bua.Option
		hangUp  bool // the operator hangs up while he hears the tone
		report  int  // the status reported; 0: none
	}{
		{name: "busy", reject: 486, report: 486},
		{name: "ring timeout", ringFor: time.Minute, opts: []b2bua.Option{b2bua.WithCallbackRingTimeout(2 * time.Second)}, report: 408},
		{name: "operator gives up", ringFor: time.Minute, hangUp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			customer := b2buatest.NewPeer(t, "customer", b2buatest.ToneCaller)
			customer.Reject.Store(tt.reject)
			customer.RingFor.Store(int64(tt.ringFor))
			r := newRig(t, append([]b2bua.Option{b2bua.WithTrunk(b2bua.Trunk{URI: "sip:" + customer.Addr})}, tt.opts...)...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			id, err := r.bridge.Callback(ctx, b2bua.Callback{Operator: "op1", Number: "+79161234567", Line: "sales", Promise: "p-2"})
			if err != nil {
				t.Fatal(err)
			}
			op := r.operator.WaitAnswered(t)
			if op.Audio == nil {
				t.Fatal("the operator's answer was not confirmed")
			}
			// Busy tone or ringback: the operator is not left in silence.
			b2buatest.ExpectHears(t, "operator", op.Audio, map[float64]bool{b2bua.ToneHz: true})
			if tt.hangUp {
				if err := op.D.Hangup(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if tt.report != 0 {
				select {
				case u := <-r.unanswered:
					if u != (unanswered{id, tt.report}) {
						t.Fatalf("unanswered %+v; want %s with %d", u, id, tt.report)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("%d was not reported", tt.report)
				}
			}
			select {
			case <-op.D.Context().Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the operator's leg is still up")
			}
			if err := b2buatest.Eventually(5*time.Second, func() bool { return r.bridge.Active() == 0 }); err != nil {
				t.Fatal("the callback is still up")
			}
			select {
			case u := <-r.unanswered:
				t.Fatalf("reported unanswered %+v", u)
			case k := <-r.kept:
				t.Fatalf("promise reported kept: %v", k)
			default:
			}
			if n := len(customer.Answered); n != 0 {
				t.Fatalf("the customer's phone was answered %d times", n)
			}
		})
	}
}

func TestCallbackWithoutTrunk(t *testing.T) {
	br, err := b2bua.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := br.Callback(context.Background(), b2bua.Callback{Operator: "op1", Number: "+7916"}); !errors.Is(err, b2bua.ErrNoTrunk) {
		t.Fatalf("callback without a trunk: %v, want ErrNoTrunk", err)
	}
}
