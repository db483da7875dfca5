package desk_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// recorder is a desk.Publisher that keeps what it was given.
type recorder struct {
	mu     sync.Mutex
	events []desk.Event
}

func (r *recorder) Publish(ev desk.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) of(typ string) []desk.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []desk.Event
	for _, e := range r.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// wait polls until n events of typ were published.
func (r *recorder) wait(t *testing.T, typ string, n int) []desk.Event {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		evs := r.of(typ)
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d %s events; want %d", len(evs), typ, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// env is one test's switchboard on the real Redis under a private prefix.
type env struct {
	t      *testing.T
	prefix string
	store  *redisstore.Store
	pub    *recorder
	sb     *desk.Switchboard
}

var testScripts = map[string]*desk.Script{
	"general": {ID: "general", Title: "General", Steps: []desk.Step{{ID: "greet", Kind: "say"}}},
	"sales":   {ID: "sales", Title: "Sales", Steps: []desk.Step{{ID: "hello", Kind: "say"}}},
}

var testLines = []desk.Line{
	{Number: "+74951234567", Name: "Sales", Script: "sales", Source: "web"},
	{Number: "support", Name: "Support", Script: "general"},
}

func newRealClient(t *testing.T) redis.UniversalClient {
	c := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newEnv(t *testing.T, opts ...desk.SwitchboardOption) *env {
	t.Helper()
	prefix := redistest.Prefix()
	admin := newRealClient(t)
	t.Cleanup(func() { redistest.DeletePrefix(context.Background(), admin, prefix) })
	e := &env{t: t, prefix: prefix, pub: &recorder{}}
	e.store = redisstore.New(newRealClient(t), redisstore.WithPrefix(prefix))
	t.Cleanup(func() { _ = e.store.Close() })
	e.sb = e.newSwitchboard(e.store, opts...)
	return e
}

func (e *env) newSwitchboard(st desk.Store, opts ...desk.SwitchboardOption) *desk.Switchboard {
	base := []desk.SwitchboardOption{
		desk.WithLines(testLines, "general"), desk.WithScripts(testScripts), desk.WithRegion("RU"),
		desk.WithRingTimeout(15 * time.Second), desk.WithRefresh(-1),
	}
	sb := desk.NewSwitchboard(st, e.pub, append(base, opts...)...)
	e.t.Cleanup(sb.Close)
	return sb
}

// opSpec describes an operator for a test.
type opSpec struct {
	login      string
	registered bool
	page       bool
	away       bool
	busy       bool // on another call
}

// addOps creates the operators; they became idle in the order given (first = idle longest).
func (e *env) addOps(ops ...opSpec) {
	e.t.Helper()
	ctx := context.Background()
	for _, o := range ops {
		if err := e.store.CreateUser(ctx, &desk.User{Login: o.login, Name: "Name " + o.login, Role: desk.RoleOperator}); err != nil {
			e.t.Fatal(err)
		}
		if o.registered {
			b := desk.Binding{Login: o.login, Contact: "sip:" + o.login + "@127.0.0.1:5070", Source: "127.0.0.1:5070", Transport: "udp", Expires: time.Now().Add(time.Hour)}
			if err := e.store.PutBindings(ctx, o.login, []desk.Binding{b}); err != nil {
				e.t.Fatal(err)
			}
		}
		if o.page {
			_ = e.store.PageOpened(ctx, o.login, "node-test")
		}
		if o.away {
			_ = e.store.SetAway(ctx, o.login, true)
		}
		_ = e.store.Release(ctx, o.login, "warmup") // sets idle-since now
		time.Sleep(3 * time.Millisecond)
		if o.busy {
			if err := e.store.Claim(ctx, o.login, "other-call", desk.StatusTalking, time.Hour); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

func (e *env) addContact(name, manager string, phones ...string) *desk.Contact {
	e.t.Helper()
	c := &desk.Contact{Name: name, Company: "Acme", Manager: manager, Phones: phones}
	if err := e.store.CreateContact(context.Background(), c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) operator(login string) *desk.Operator {
	e.t.Helper()
	ops, err := e.store.Operators(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, o := range ops {
		if o.Login == login {
			return o
		}
	}
	e.t.Fatalf("no operator %s", login)
	return nil
}

func incoming(sipID, caller, dialled string, tried ...string) desk.Incoming {
	return desk.Incoming{SIPCallID: sipID, Caller: caller, Dialled: dialled, Tried: tried, Received: time.Now()}
}

func TestRouteChoosesOperator(t *testing.T) {
	const managed = "+79160000001"
	tests := []struct {
		name    string
		ops     []opSpec
		manager string // manager of the calling contact
		caller  string
		dialled string
		tried   []string
		want    string // "" means 480
	}{
		{name: "personal manager first", manager: "mgr", caller: managed, dialled: "sales",
			ops:  []opSpec{{login: "idle", registered: true, page: true}, {login: "mgr", registered: true, page: true}},
			want: "mgr"},
		{name: "manager with closed page still first", manager: "mgr", caller: managed, dialled: "sales",
			ops:  []opSpec{{login: "idle", registered: true, page: true}, {login: "mgr", registered: true}},
			want: "mgr"},
		{name: "manager away", manager: "mgr", caller: managed, dialled: "sales",
			ops:  []opSpec{{login: "idle", registered: true, page: true}, {login: "mgr", registered: true, page: true, away: true}},
			want: "idle"},
		{name: "manager busy", manager: "mgr", caller: managed, dialled: "sales",
			ops:  []opSpec{{login: "idle", registered: true, page: true}, {login: "mgr", registered: true, page: true, busy: true}},
			want: "idle"},
		{name: "manager not registered", manager: "mgr", caller: managed, dialled: "sales",
			ops:  []opSpec{{login: "mgr", page: true}, {login: "idle", registered: true, page: true}},
			want: "idle"},
		{name: "longest idle", caller: "+79990001122", dialled: "sales",
			ops:  []opSpec{{login: "first", registered: true, page: true}, {login: "second", registered: true, page: true}},
			want: "first"},
		{name: "skip away busy and tried", caller: "+79990001122", dialled: "sales", tried: []string{"tried"},
			ops: []opSpec{{login: "away", registered: true, page: true, away: true}, {login: "busy", registered: true, page: true, busy: true},
				{login: "tried", registered: true, page: true}, {login: "free", registered: true, page: true}},
			want: "free"},
		{name: "open page before closed page", caller: "+79990001122", dialled: "sales",
			ops:  []opSpec{{login: "closed", registered: true}, {login: "open", registered: true, page: true}},
			want: "open"},
		{name: "closed page as last resort", caller: "+79990001122", dialled: "sales",
			ops:  []opSpec{{login: "nophone", page: true}, {login: "closed", registered: true}},
			want: "closed"},
		{name: "direct call to a login", caller: "+79990001122", dialled: "second",
			ops:  []opSpec{{login: "first", registered: true, page: true}, {login: "second", registered: true, page: true}},
			want: "second"},
		{name: "direct call to a busy login", caller: "+79990001122", dialled: "second",
			ops:  []opSpec{{login: "first", registered: true, page: true}, {login: "second", registered: true, page: true, busy: true}},
			want: ""},
		{name: "nobody registered", caller: "+79990001122", dialled: "sales",
			ops:  []opSpec{{login: "first", page: true}},
			want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.addOps(tt.ops...)
			if tt.manager != "" {
				e.addContact("Ivan", tt.manager, managed)
			}
			r := e.sb.Route(context.Background(), incoming("sip-"+t.Name(), tt.caller, tt.dialled, tt.tried...))
			if tt.want == "" {
				if r.Status != 480 || r.Operator != "" {
					t.Fatalf("Route = %+v; want 480", r)
				}
				e.pub.wait(t, desk.EventCallMissed, 1)
				return
			}
			if r.Status != 0 || r.Operator != tt.want {
				t.Fatalf("Route = %+v; want %s", r, tt.want)
			}
			if len(r.Bindings) != 1 || r.Bindings[0].Login != tt.want || r.RingTimeout != 15*time.Second {
				t.Errorf("Route bindings %+v timeout %v", r.Bindings, r.RingTimeout)
			}
			if o := e.operator(tt.want); o.Status != desk.StatusRinging || o.CallID == "" {
				t.Errorf("chosen operator %+v; want ringing with a claim", o)
			}
			pops := e.pub.of(desk.EventCallRinging)
			if len(pops) != 1 || len(pops[0].Operators) != 1 || pops[0].Operators[0] != tt.want {
				t.Fatalf("pops = %+v; want one to %s", pops, tt.want)
			}
		})
	}
}

func TestPopFindsContactByAnyNumberForm(t *testing.T) {
	e := newEnv(t)
	e.addOps(opSpec{login: "alice", registered: true, page: true}, opSpec{login: "mgr", registered: true, page: true, busy: true})
	ivan := e.addContact("Ivan", "mgr", "+79160000001")
	tests := []struct {
		caller, dialled string
		wantContact     bool
		wantLine        string
		wantScript      string
		wantFrom        string
	}{
		{"8 (916) 000-00-01", "sales", true, desk.DefaultLine, "general", "+79160000001"},
		{"+7 916 000 00 01", "8 495 123-45-67", true, "+74951234567", "sales", "+79160000001"},
		{"79160000001", "support", true, "support", "general", "+79160000001"},
		{"+79990000000", "+74951234567", false, "+74951234567", "sales", "+79990000000"},
		{"anonymous", "unknown-line", false, desk.DefaultLine, "general", "anonymous"},
	}
	for i, tt := range tests {
		t.Run(tt.caller, func(t *testing.T) {
			sipID := fmt.Sprintf("pop-%d", i)
			r := e.sb.Route(context.Background(), incoming(sipID, tt.caller, tt.dialled))
			if r.Operator != "alice" {
				t.Fatalf("Route = %+v; want alice", r)
			}
			pops := e.pub.of(desk.EventCallRinging)
			pop := pops[len(pops)-1].Payload.(desk.Pop)
			if pop.Call.SIPCallID != sipID || pop.Call.From != tt.wantFrom || pop.Call.Line != tt.wantLine || pop.Call.State != desk.CallRinging {
				t.Errorf("pop call = %+v", pop.Call)
			}
			if pop.Script == nil || pop.Script.ID != tt.wantScript {
				t.Errorf("pop script = %+v; want %s", pop.Script, tt.wantScript)
			}
			if pop.Lookup != "" {
				t.Errorf("pop lookup = %q; want empty", pop.Lookup)
			}
			if tt.wantContact {
				if pop.Contact == nil || pop.Contact.ID != ivan.ID || pop.Manager != "Name mgr" || pop.Call.ContactID != ivan.ID {
					t.Errorf("pop contact %+v manager %q; want Ivan managed by mgr", pop.Contact, pop.Manager)
				}
			} else if pop.Contact != nil || pop.Manager != "" {
				t.Errorf("unknown caller popped contact %+v", pop.Contact)
			}
			// Free alice for the next caller.
			e.sb.Missed(sipID, 487)
			e.pub.wait(t, desk.EventCallMissed, i+1)
			waitFor(t, func() bool { return e.operator("alice").Status == desk.StatusAvailable })
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNobodyAvailable(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, desk.WithRegisterer(reg))
	e.addOps(opSpec{login: "away", registered: true, page: true, away: true}, opSpec{login: "mgr", registered: true, busy: true})
	e.addContact("Ivan", "mgr", "+79160000001")
	r := e.sb.Route(context.Background(), incoming("nobody-1", "89160000001", "sales"))
	if r.Status != 480 || r.Reason != "no operator available" {
		t.Fatalf("Route = %+v; want 480", r)
	}
	missed := e.pub.wait(t, desk.EventCallMissed, 1)
	call := missed[0].Payload.(desk.CallUpdate).Call
	if call.State != desk.CallMissed || call.Reason != "no operator" || call.From != "+79160000001" {
		t.Errorf("missed call = %+v", call)
	}
	if len(missed[0].Operators) != 1 || missed[0].Operators[0] != "mgr" {
		t.Errorf("call.missed went to %v; want the personal manager", missed[0].Operators)
	}
	if n := len(e.pub.of(desk.EventCallRinging)); n != 0 {
		t.Errorf("%d pops for a call nobody took", n)
	}
	e.sb.Close()
	saved, err := e.store.CallBySIPID(context.Background(), "nobody-1")
	if err != nil || saved.State != desk.CallMissed {
		t.Fatalf("saved = %+v, %v", saved, err)
	}
	if got := metric(t, reg, "desk_calls_total", map[string]string{"outcome": "missed"}); got != 1 {
		t.Errorf("desk_calls_total{outcome=missed} = %v; want 1", got)
	}
	// A retransmitted INVITE neither creates a call nor pops.
	if r := e.sb.Route(context.Background(), incoming("nobody-1", "89160000001", "sales")); r.Status != 480 {
		t.Errorf("retransmission Route = %+v", r)
	}
	if n := len(e.pub.of(desk.EventCallMissed)); n != 1 {
		t.Errorf("%d call.missed after a retransmission; want 1", n)
	}
}

// metric sums the samples of name (counter values, histogram sample counts) whose
// labels include want.
func metric(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == k && l.GetValue() == v)
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				sum += float64(h.GetSampleCount())
			}
		}
	}
	return sum
}

func TestHunting(t *testing.T) {
	e := newEnv(t)
	e.addOps(opSpec{login: "first", registered: true, page: true}, opSpec{login: "second", registered: true, page: true})
	ctx := context.Background()
	r1 := e.sb.Route(ctx, incoming("hunt-1", "+79990001122", "sales"))
	if r1.Operator != "first" {
		t.Fatalf("first Route = %+v", r1)
	}
	// What the proxy does on its ring timeout: report the failure, ask again.
	e.sb.TargetFailed("hunt-1", "first", 408)
	r2 := e.sb.Route(ctx, incoming("hunt-1", "+79990001122", "sales", "first"))
	if r2.Operator != "second" {
		t.Fatalf("hunting Route = %+v; want second", r2)
	}
	waitFor(t, func() bool { return e.operator("first").Status == desk.StatusAvailable })
	if o := e.operator("second"); o.Status != desk.StatusRinging {
		t.Errorf("second = %+v; want ringing", o)
	}
	r3 := e.sb.Route(ctx, incoming("hunt-1", "+79990001122", "sales", "first", "second"))
	if r3.Status != 480 {
		t.Fatalf("Route after everybody = %+v; want 480", r3)
	}
	e.sb.Missed("hunt-1", 480) // the proxy's report of the same end: a duplicate
	e.sb.Close()
	call, err := e.store.CallBySIPID(ctx, "hunt-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(call.Attempts) != 2 || call.Attempts[0].Operator != "first" || call.Attempts[0].Outcome != "timeout" ||
		call.Attempts[1].Operator != "second" || call.Operator != "second" || call.State != desk.CallMissed {
		t.Fatalf("call = %+v; want two attempts, first timed out", call)
	}
	if o := e.operator("second"); o.Status != desk.StatusAvailable {
		t.Errorf("second after the call = %+v; want released", o)
	}
	if n := len(e.pub.of(desk.EventCallRinging)); n != 2 {
		t.Errorf("%d pops; want 2 (one per attempt)", n)
	}
	if n := len(e.pub.of(desk.EventCallMissed)); n != 2 { // first's pop closes, then the call
		t.Errorf("%d call.missed; want 2", n)
	}
}

// Route without TargetFailed (the event lost or late) still frees the operator left behind.
func TestHuntingReleasesWithoutEvent(t *testing.T) {
	e := newEnv(t)
	e.addOps(opSpec{login: "first", registered: true, page: true}, opSpec{login: "second", registered: true, page: true})
	ctx := context.Background()
	e.sb.Route(ctx, incoming("hunt-2", "+79990001122", "sales"))
	if r := e.sb.Route(ctx, incoming("hunt-2", "+79990001122", "sales", "first")); r.Operator != "second" {
		t.Fatalf("hunting Route = %+v", r)
	}
	if o := e.operator("first"); o.Status != desk.StatusAvailable {
		t.Errorf("first = %+v; want released", o)
	}
}

func TestAnsweredEndedTimeline(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, desk.WithRegisterer(reg))
	e.addOps(opSpec{login: "alice", registered: true, page: true})
	ctx := context.Background()
	r := e.sb.Route(ctx, incoming("talk-1", "+79990001122", "sales"))
	if r.Operator != "alice" {
		t.Fatalf("Route = %+v", r)
	}
	// A retransmitted INVITE while alice rings: same answer, no second pop or call.
	if dup := e.sb.Route(ctx, incoming("talk-1", "+79990001122", "sales")); dup.Operator != "alice" || len(dup.Bindings) != 1 {
		t.Fatalf("duplicate Route = %+v", dup)
	}
	e.sb.Ringing("talk-1", "alice")
	// Rounded up, not down: the store keeps milliseconds, and a time rounded
	// down can fall before Started when the answer comes in the same millisecond.
	answered := time.Now().UTC().Add(time.Millisecond).Truncate(time.Millisecond)
	ended := answered.Add(90 * time.Second)
	e.sb.Answered("talk-1", "alice", answered)
	e.sb.Answered("talk-1", "alice", answered) // retransmitted 200 OK
	e.pub.wait(t, desk.EventCallAnswered, 1)
	waitFor(t, func() bool { return e.operator("alice").Status == desk.StatusTalking })
	live, err := e.sb.Live(ctx)
	if err != nil || len(live) != 1 || live[0].State != desk.CallAnswered {
		t.Fatalf("Live = %+v, %v", live, err)
	}
	e.sb.Ended("talk-1", "caller", ended)
	e.sb.Ended("talk-1", "caller", ended.Add(time.Second)) // retransmitted BYE
	e.sb.Close()

	if n := len(e.pub.of(desk.EventCallRinging)); n != 1 {
		t.Errorf("%d pops; want 1", n)
	}
	for typ, want := range map[string]int{desk.EventCallAnswered: 1, desk.EventCallEnded: 1} {
		if n := len(e.pub.of(typ)); n != want {
			t.Errorf("%d %s; want %d", n, typ, want)
		}
	}
	call, err := e.store.CallBySIPID(ctx, "talk-1")
	if err != nil {
		t.Fatal(err)
	}
	if call.State != desk.CallEnded || call.Answered == nil || call.Ended == nil || call.Reason != "caller hung up" {
		t.Fatalf("call = %+v", call)
	}
	if d := call.Ended.Sub(*call.Answered); d != 90*time.Second {
		t.Errorf("talk time %v; want 90s", d)
	}
	if call.Answered.Sub(call.Started) < 0 || len(call.Attempts) != 1 || call.Attempts[0].Outcome != "answered" {
		t.Errorf("timeline = %+v", call)
	}
	if o := e.operator("alice"); o.Status != desk.StatusAvailable || time.Since(o.IdleSince) > 5*time.Second {
		t.Errorf("alice after the call = %+v; want available and idle since now", o)
	}
	if live, _ := e.sb.Live(ctx); len(live) != 0 {
		t.Errorf("Live after the end = %+v", live)
	}
	if got := metric(t, reg, "desk_calls_total", map[string]string{"outcome": "answered"}); got != 1 {
		t.Errorf("desk_calls_total{outcome=answered} = %v; want 1", got)
	}
	if n := metric(t, reg, "desk_pop_latency_seconds", nil); n != 1 {
		t.Errorf("pop latency observed %v times; want 1", n)
	}
}

// After a restart the new switchboard does not know the call; Ended finds it in the store.
func TestEndedAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.addOps(opSpec{login: "alice", registered: true, page: true})
	ctx := context.Background()
	e.sb.Route(ctx, incoming("restart-1", "+79990001122", "sales"))
	e.sb.Answered("restart-1", "alice", time.Now())
	e.sb.Close()
	sb2 := e.newSwitchboard(e.store)
	sb2.Ended("restart-1", "operator", time.Now())
	sb2.Close()
	call, err := e.store.CallBySIPID(ctx, "restart-1")
	if err != nil || call.State != desk.CallEnded || call.Reason != "operator hung up" {
		t.Fatalf("call = %+v, %v", call, err)
	}
	if o := e.operator("alice"); o.Status != desk.StatusAvailable {
		t.Errorf("alice = %+v; want released", o)
	}
}

// A Redis outage: the call still routes from the cache and the pop says so.
func TestStoreUnavailable(t *testing.T) {
	m := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = client.Close() })
	st := redisstore.New(client)
	t.Cleanup(func() { _ = st.Close() })
	e := &env{t: t, store: st, pub: &recorder{}}
	e.addOps(opSpec{login: "alice", registered: true, page: true}, opSpec{login: "bob", registered: true, page: true})
	e.addContact("Ivan", "", "+79160000001")
	sb := e.newSwitchboard(st, desk.WithLookupTimeout(200*time.Millisecond))
	ctx := context.Background()
	if err := sb.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close() // Redis is gone

	tests := []struct{ sipID, want string }{
		{"down-1", "alice"},
		{"down-2", "bob"}, // alice is held in process
		{"down-3", ""},    // nobody left
	}
	for _, tt := range tests {
		start := time.Now()
		r := sb.Route(ctx, incoming(tt.sipID, "8 916 000 00 01", "sales"))
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s: Route took %v with Redis down", tt.sipID, took)
		}
		if tt.want == "" {
			if r.Status != 480 {
				t.Errorf("%s: Route = %+v; want 480", tt.sipID, r)
			}
			continue
		}
		if r.Operator != tt.want || len(r.Bindings) != 1 {
			t.Fatalf("%s: Route = %+v; want %s from the cache", tt.sipID, r, tt.want)
		}
	}
	pops := e.pub.wait(t, desk.EventCallRinging, 2)
	for _, ev := range pops {
		pop := ev.Payload.(desk.Pop)
		if pop.Lookup != "unavailable" || !pop.Call.LookupFailed || pop.Contact != nil || pop.Call.From != "+79160000001" {
			t.Errorf("pop = %+v call %+v; want lookup unavailable", pop, pop.Call)
		}
	}
	// Events keep working on the call (their store writes fail and are logged).
	sb.Answered("down-1", "alice", time.Now())
	e.pub.wait(t, desk.EventCallAnswered, 1)
	sb.Ended("down-1", "caller", time.Now())
	e.pub.wait(t, desk.EventCallEnded, 1)
	// alice is free in process again.
	if r := sb.Route(ctx, incoming("down-4", "+79990001122", "sales")); r.Operator != "alice" {
		t.Errorf("after her call Route = %+v; want alice", r)
	}
}

// Two nodes share one Redis and race two calls for one operator: one call gets him.
func TestTwoNodesRace(t *testing.T) {
	e := newEnv(t)
	e.addOps(opSpec{login: "alice", registered: true, page: true})
	st2 := redisstore.New(newRealClient(t), redisstore.WithPrefix(e.prefix))
	t.Cleanup(func() { _ = st2.Close() })
	nodes := []*desk.Switchboard{e.sb, e.newSwitchboard(st2)}
	for round := range 10 {
		var wg sync.WaitGroup
		routes := make([]desk.Route, 2)
		start := make(chan struct{})
		for i, sb := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				routes[i] = sb.Route(context.Background(), incoming(fmt.Sprintf("race-%d-%d", round, i), "+79990001122", "sales"))
			}()
		}
		close(start)
		wg.Wait()
		var won, lost int
		var winner int
		for i, r := range routes {
			switch {
			case r.Operator == "alice":
				won++
				winner = i
			case r.Status == 480:
				lost++
			}
		}
		if won != 1 || lost != 1 {
			t.Fatalf("round %d: routes %+v; want exactly one call to get alice", round, routes)
		}
		nodes[winner].Missed(fmt.Sprintf("race-%d-%d", round, winner), 487)
		waitFor(t, func() bool { return e.operator("alice").Status == desk.StatusAvailable })
	}
}

func TestLiveIncludesOtherNodes(t *testing.T) {
	e := newEnv(t)
	e.addOps(opSpec{login: "alice", registered: true, page: true})
	e.sb.Route(context.Background(), incoming("live-1", "+79990001122", "sales"))
	st2 := redisstore.New(newRealClient(t), redisstore.WithPrefix(e.prefix))
	t.Cleanup(func() { _ = st2.Close() })
	other := e.newSwitchboard(st2)
	waitFor(t, func() bool {
		live, err := other.Live(context.Background())
		return err == nil && len(live) == 1 && live[0].SIPCallID == "live-1"
	})
	if _, err := e.store.Call(context.Background(), "nope"); !errors.Is(err, desk.ErrNotFound) {
		t.Errorf("Call(nope) = %v", err)
	}
}

// The pop of a known caller carries his card, read within the lookup budget; a card
// that fails or is late leaves the pop without it, never without the call.
func TestPopCarriesCardSourceAndPrices(t *testing.T) {
	prices := []desk.PriceRange{{Product: "scanner", Min: 18000, Max: 42000, Currency: "RUB"}}
	card := &desk.Card{Calls: []desk.CallSummary{{CallID: "old", Outcome: "deal"}}}
	tests := []struct {
		name     string
		cards    func(ctx context.Context, id string) (*desk.Card, error)
		wantCard bool
	}{
		{"card", func(ctx context.Context, id string) (*desk.Card, error) { return card, nil }, true},
		{"card fails", func(ctx context.Context, id string) (*desk.Card, error) { return nil, errors.New("boom") }, false},
		{"card late", func(ctx context.Context, id string) (*desk.Card, error) {
			<-ctx.Done() // the lookup budget runs out
			return nil, ctx.Err()
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked []string
			var mu sync.Mutex
			cards := func(ctx context.Context, id string) (*desk.Card, error) {
				mu.Lock()
				asked = append(asked, id)
				mu.Unlock()
				return tt.cards(ctx, id)
			}
			e := newEnv(t, desk.WithCards(cards), desk.WithPopPrices(prices), desk.WithLookupTimeout(100*time.Millisecond))
			e.addOps(opSpec{login: "alice", registered: true, page: true})
			ivan := e.addContact("Ivan", "", "+79160000001")
			start := time.Now()
			if r := e.sb.Route(context.Background(), incoming("card-1", "+79160000001", "+74951234567")); r.Operator != "alice" {
				t.Fatalf("Route = %+v", r)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("Route took %v", took)
			}
			pop := e.pub.of(desk.EventCallRinging)[0].Payload.(desk.Pop)
			if (pop.Card != nil) != tt.wantCard || (tt.wantCard && pop.Card.Calls[0].CallID != "old") {
				t.Errorf("pop card = %+v; want card %v", pop.Card, tt.wantCard)
			}
			if pop.Contact == nil || pop.Contact.ID != ivan.ID || len(asked) != 1 || asked[0] != ivan.ID {
				t.Errorf("pop contact %+v, cards asked for %v", pop.Contact, asked)
			}
			if pop.PresetSource != "web" || pop.Call.Script != "sales" || len(pop.Prices) != 1 || pop.Prices[0] != prices[0] {
				t.Errorf("pop source %q script %q prices %+v", pop.PresetSource, pop.Call.Script, pop.Prices)
			}
		})
	}
	// An unknown caller has no card to ask for.
	asked := 0
	e := newEnv(t, desk.WithCards(func(ctx context.Context, id string) (*desk.Card, error) { asked++; return card, nil }))
	e.addOps(opSpec{login: "alice", registered: true, page: true})
	e.sb.Route(context.Background(), incoming("card-2", "+79990001122", "support"))
	pop := e.pub.of(desk.EventCallRinging)[0].Payload.(desk.Pop)
	if pop.Card != nil || asked != 0 || pop.PresetSource != "" || pop.Call.Script != "general" {
		t.Errorf("unknown caller's pop = %+v (cards asked %d)", pop, asked)
	}
}

// hooks records the calls the switchboard hands to its call hooks.
type hooks struct {
	mu            sync.Mutex
	ended, missed []*desk.Call
}

func (h *hooks) onEnded(_ context.Context, c *desk.Call) {
	h.mu.Lock()
	h.ended = append(h.ended, c)
	h.mu.Unlock()
}

func (h *hooks) onMissed(_ context.Context, c *desk.Call) {
	h.mu.Lock()
	h.missed = append(h.missed, c)
	h.mu.Unlock()
}

func (h *hooks) counts() (int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ended), len(h.missed)
}

// With wrap-up on, an operator whose answered call ended stays claimed in wrap-up
// and is not rung; the next call goes to someone else.
func TestEndedHoldsOperatorInWrapup(t *testing.T) {
	h := &hooks{}
	e := newEnv(t, desk.WithCallHooks(h.onEnded, h.onMissed))
	e.addOps(opSpec{login: "alice", registered: true, page: true}, opSpec{login: "bob", registered: true, page: true})
	ctx := context.Background()
	if r := e.sb.Route(ctx, incoming("wrap-1", "+79990001122", "sales")); r.Operator != "alice" {
		t.Fatalf("Route = %+v", r)
	}
	e.sb.Answered("wrap-1", "alice", time.Now())
	e.sb.Ended("wrap-1", "caller", time.Now())
	e.sb.Ended("wrap-1", "caller", time.Now()) // a retransmitted BYE
	e.pub.wait(t, desk.EventCallEnded, 1)
	waitFor(t, func() bool { n, _ := h.counts(); return n == 1 })
	o := e.operator("alice")
	if o.Status != desk.StatusWrapup || o.CallID == "" {
		t.Fatalf("alice after her call = %+v; want in wrap-up", o)
	}
	h.mu.Lock()
	ended := h.ended[0]
	h.mu.Unlock()
	if ended.SIPCallID != "wrap-1" || ended.State != desk.CallEnded || ended.Operator != "alice" || ended.Script != "general" {
		t.Errorf("ended hook got %+v", ended)
	}
	if r := e.sb.Route(ctx, incoming("wrap-2", "+79990001133", "sales")); r.Operator != "bob" {
		t.Fatalf("next call = %+v; want bob while alice wraps up", r)
	}
	if r := e.sb.Route(ctx, incoming("wrap-3", "+79990001144", "alice")); r.Status != 480 {
		t.Errorf("a direct call to alice in wrap-up = %+v; want 480", r)
	}
	// The wrap-up (Sales.Wrapup) releases her: then she is rung again.
	if err := e.store.Release(ctx, "alice", o.CallID); err != nil {
		t.Fatal(err)
	}
	if r := e.sb.Route(ctx, incoming("wrap-4", "+79990001155", "sales")); r.Operator != "alice" {
		t.Errorf("after the wrap-up Route = %+v; want alice", r)
	}
	e.sb.Close()
	if n, _ := h.counts(); n != 1 {
		t.Errorf("ended hook ran %d times; want 1", n)
	}
}

// The missed hook runs once per missed call: abandoned while ringing, or nobody
// to take it.
func TestMissedHookOnce(t *testing.T) {
	h := &hooks{}
	e := newEnv(t, desk.WithCallHooks(h.onEnded, h.onMissed))
	e.addOps(opSpec{login: "alice", registered: true, page: true})
	ctx := context.Background()
	e.sb.Route(ctx, incoming("miss-1", "+79990001122", "sales"))
	e.sb.Missed("miss-1", 487)
	e.sb.Missed("miss-1", 487) // the proxy's duplicate report
	// alice is rung by miss-1 until it is applied; then nobody else is there for miss-2.
	waitFor(t, func() bool { return e.operator("alice").CallID == "" })
	if r := e.sb.Route(ctx, incoming("miss-2", "+79990001133", "alice")); r.Operator != "alice" {
		t.Fatalf("Route = %+v", r)
	}
	if r := e.sb.Route(ctx, incoming("miss-3", "+79990001144", "sales")); r.Status != 480 {
		t.Fatalf("Route with alice busy = %+v; want 480", r)
	}
	e.sb.Missed("miss-3", 480) // the proxy reports the 480 it sent
	e.sb.Close()
	ended, missed := h.counts()
	if ended != 0 || missed != 2 {
		t.Fatalf("hooks ran ended %d, missed %d; want 0 and 2", ended, missed)
	}
	got := []string{h.missed[0].SIPCallID, h.missed[1].SIPCallID}
	slices.Sort(got)
	if !slices.Equal(got, []string{"miss-1", "miss-3"}) || h.missed[0].State != desk.CallMissed {
		t.Errorf("missed hook got %v", got)
	}
}
