package desk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
)

var (
	supIvan  = &desk.User{Login: "ivan", Name: "Иван", Role: desk.RoleOperator}
	supAdmin = &desk.User{Login: "root", Name: "Root", Role: desk.RoleAdmin}
)

// supEnv is the supervisor's service on the real Redis under a private prefix,
// with a recording publisher and a fake clock. Users: operators maria, oleg and
// ivan, supervisor sveta, admin root.
type supEnv struct {
	t     *testing.T
	store *redisstore.Store
	pub   *recorder
	sup   *desk.Supervisor
	clock *clock
}

func newSupEnv(t *testing.T) *supEnv {
	t.Helper()
	prefix := redistest.Prefix()
	admin := newRealClient(t)
	t.Cleanup(func() { redistest.DeletePrefix(context.Background(), admin, prefix) })
	e := &supEnv{t: t, pub: &recorder{}, clock: &clock{t: time.Date(2025, 2, 3, 11, 0, 0, 0, time.UTC)}}
	e.store = redisstore.New(newRealClient(t), redisstore.WithPrefix(prefix), redisstore.WithClock(e.clock.Now))
	t.Cleanup(func() { _ = e.store.Close() })
	e.sup = desk.NewSupervisor(e.store, e.pub, desk.WithSupervisorClock(e.clock.Now), desk.WithSupervisorLogger(quietLog()))
	for _, u := range []*desk.User{maria, oleg, supIvan, sveta, supAdmin} {
		cp := *u
		if err := e.store.CreateUser(context.Background(), &cp); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (e *supEnv) auditLog() []desk.AuditEntry {
	e.t.Helper()
	log, err := e.store.AuditLog(context.Background(), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return log
}

func TestSupervisorWhisper(t *testing.T) {
	e := newSupEnv(t)
	ctx := context.Background()
	// maria is on a call; oleg is between calls.
	if err := e.store.Claim(ctx, "maria", "call-7", desk.StatusTalking, time.Hour); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		by       *desk.User
		operator string
		text     string
		want     error
		wantCall string
	}{
		{"an operator may not whisper", oleg, "maria", "hi", desk.ErrForbidden, ""},
		{"nobody logged in", nil, "maria", "hi", desk.ErrForbidden, ""},
		{"empty text", sveta, "maria", "   ", desk.ErrInvalid, ""},
		{"text over 500 characters", sveta, "maria", strings.Repeat("я", desk.MaxWhisper+1), desk.ErrInvalid, ""},
		{"unknown operator", sveta, "ghost", "hi", desk.ErrNotFound, ""},
		{"a supervisor is not an operator", sveta, "sveta", "hi", desk.ErrNotFound, ""},
		{"during a call it is kept with the call", sveta, "maria", "  offer the 10% discount  ", nil, "call-7"},
		{"exactly 500 characters, between calls", supAdmin, "oleg", strings.Repeat("я", desk.MaxWhisper), nil, ""},
	}
	published := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := e.sup.Whisper(ctx, tt.by, tt.operator, tt.text)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Whisper = %v, %v; want %v", w, err, tt.want)
				}
				if n := len(e.pub.of(desk.EventWhisper)); n != published {
					t.Fatalf("a refused whisper published: %d events", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			published++
			if w.ID == "" || w.Operator != tt.operator || w.By != tt.by.Login || w.Text != strings.TrimSpace(tt.text) ||
				w.CallID != tt.wantCall || !w.At.Equal(e.clock.Now()) || w.AckedAt != nil {
				t.Fatalf("whisper %+v", w)
			}
			evs := e.pub.of(desk.EventWhisper)
			if len(evs) != published {
				t.Fatalf("%d whisper events; want %d", len(evs), published)
			}
			ev := evs[len(evs)-1]
			if up, ok := ev.Payload.(desk.WhisperUpdate); !ok || up.Whisper.ID != w.ID || !slices.Equal(ev.Operators, []string{tt.operator}) {
				t.Fatalf("event %+v", ev)
			}
			got, err := e.store.Whisper(ctx, w.ID)
			if err != nil || got.Text != w.Text || got.CallID != tt.wantCall {
				t.Fatalf("stored %+v, %v", got, err)
			}
			mine, err := e.sup.Whispers(ctx, sveta, tt.operator, true)
			if err != nil || len(mine) != 1 || mine[0].ID != w.ID {
				t.Fatalf("unacked whispers of %s = %+v, %v", tt.operator, mine, err)
			}
			onCall, err := e.sup.CallWhispers(ctx, "call-7")
			if err != nil || len(onCall) != 1 || onCall[0].Operator != "maria" {
				t.Fatalf("whispers of call-7 = %+v, %v; want maria's only", onCall, err)
			}
		})
	}
}

func TestSupervisorAckWhisper(t *testing.T) {
	e := newSupEnv(t)
	ctx := context.Background()
	w, err := e.sup.Whisper(ctx, sveta, "maria", "call the client back")
	if err != nil {
		t.Fatal(err)
	}
	whispered := e.clock.Now()
	e.clock.Add(30 * time.Second)
	tests := []struct {
		name    string
		by      *desk.User
		id      string
		want    error
		wantAck time.Time
		events  int // whisper.ack events published so far
	}{
		{"another operator", oleg, w.ID, desk.ErrForbidden, time.Time{}, 0},
		{"the supervisor who sent it", sveta, w.ID, desk.ErrForbidden, time.Time{}, 0},
		{"nobody logged in", nil, w.ID, desk.ErrUnauthorized, time.Time{}, 0},
		{"unknown whisper", maria, "nope", desk.ErrNotFound, time.Time{}, 0},
		{"the operator", maria, w.ID, nil, whispered.Add(30 * time.Second), 1},
		{"again a minute later: nothing changes", maria, w.ID, nil, whispered.Add(30 * time.Second), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.HasPrefix(tt.name, "again") {
				e.clock.Add(time.Minute)
			}
			got, err := e.sup.AckWhisper(ctx, tt.by, tt.id)
			switch {
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("AckWhisper = %v; want %v", err, tt.want)
			case tt.want == nil && err != nil:
				t.Fatal(err)
			case tt.want == nil && (got.AckedAt == nil || !got.AckedAt.Equal(tt.wantAck)):
				t.Fatalf("acked %+v; want at %v", got, tt.wantAck)
			}
			evs := e.pub.of(desk.EventWhisperAck)
			if len(evs) != tt.events {
				t.Fatalf("%d whisper.ack events; want %d", len(evs), tt.events)
			}
			if len(evs) > 0 {
				up := evs[0].Payload.(desk.WhisperUpdate)
				if up.Whisper.ID != w.ID || up.Whisper.AckedAt == nil || !slices.Equal(evs[0].Operators, []string{"maria"}) {
					t.Fatalf("ack event %+v", evs[0])
				}
			}
		})
	}
	if un, err := e.sup.Whispers(ctx, maria, "", true); err != nil || len(un) != 0 {
		t.Fatalf("unacked after the ack = %+v, %v", un, err)
	}
	if all, err := e.sup.Whispers(ctx, maria, "", false); err != nil || len(all) != 1 || all[0].AckedAt == nil {
		t.Fatalf("maria's whispers = %+v, %v", all, err)
	}
}

func TestSupervisorWhispersListing(t *testing.T) {
	e := newSupEnv(t)
	ctx := context.Background()
	var sent []*desk.Whisper
	for _, to := range []string{"maria", "oleg", "maria"} {
		w, err := e.sup.Whisper(ctx, sveta, to, "note for "+to)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, w)
		e.clock.Add(time.Second)
	}
	if _, err := e.sup.AckWhisper(ctx, maria, sent[0].ID); err != nil {
		t.Fatal(err)
	}
	ids := func(ws []*desk.Whisper) []string {
		out := []string{}
		for _, w := range ws {
			out = append(out, w.ID)
		}
		return out
	}
	tests := []struct {
		name     string
		by       *desk.User
		operator string
		unacked  bool
		want     []string
		err      error
	}{
		{"operator, his own by default", maria, "", false, []string{sent[0].ID, sent[2].ID}, nil},
		{"operator, his own unacked", maria, "maria", true, []string{sent[2].ID}, nil},
		{"operator, another's", maria, "oleg", false, nil, desk.ErrForbidden},
		{"supervisor, everyone's, oldest first", sveta, "", false, ids(sent), nil},
		{"supervisor, everyone's unacked", sveta, "", true, []string{sent[1].ID, sent[2].ID}, nil},
		{"supervisor, oleg's", sveta, "oleg", false, []string{sent[1].ID}, nil},
		{"nobody", nil, "", false, nil, desk.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.sup.Whispers(ctx, tt.by, tt.operator, tt.unacked)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Whispers = %v; want %v", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(ids(got), tt.want) {
				t.Fatalf("Whispers = %v, %v; want %v", ids(got), err, tt.want)
			}
		})
	}
}

// reassignFixture is what ivan owns (and a little that others own), by name.
type reassignFixture struct {
	contacts  map[string]*desk.Contact
	interests map[string]*desk.Interest
	promises  map[string]*desk.Promise
}

func (e *supEnv) seedOwnership() reassignFixture {
	e.t.Helper()
	ctx := context.Background()
	now := e.clock.Now()
	f := reassignFixture{contacts: map[string]*desk.Contact{}, interests: map[string]*desk.Interest{}, promises: map[string]*desk.Promise{}}
	for i, c := range []struct{ name, manager string }{{"ivan-1", "ivan"}, {"ivan-2", "ivan"}, {"oleg-1", "oleg"}, {"nobody-1", ""}} {
		ct := &desk.Contact{Name: c.name, Manager: c.manager, Phones: []string{fmt.Sprintf("+7916000000%d", i)}}
		if err := e.store.CreateContact(ctx, ct); err != nil {
			e.t.Fatal(err)
		}
		f.contacts[c.name] = ct
	}
	for _, it := range []struct{ name, owner, state, contact string }{
		{"ivan-open-1", "ivan", "open", "ivan-1"}, {"ivan-open-2", "ivan", "open", "ivan-2"},
		{"ivan-lost", "ivan", "lost", "oleg-1"}, {"oleg-open", "oleg", "open", "nobody-1"},
	} {
		in := &desk.Interest{ContactID: f.contacts[it.contact].ID, Type: "interest", Owner: it.owner, Stage: "first_call",
			State: it.state, Created: now}
		if err := e.store.SaveInterest(ctx, in); err != nil {
			e.t.Fatal(err)
		}
		f.interests[it.name] = in
	}
	for i, p := range []struct{ id, owner, state string }{
		{"ivan-open-1", "ivan", desk.PromiseOpen}, {"ivan-open-2", "ivan", desk.PromiseOpen},
		{"ivan-overdue", "ivan", desk.PromiseOpen}, {"ivan-kept", "ivan", desk.PromiseKept},
		{"maria-open", "maria", desk.PromiseOpen}, {"pool-open", "", desk.PromiseOpen},
	} {
		pr := &desk.Promise{ID: p.id, Owner: p.owner, Kind: "promise", What: "send an offer", Due: now.Add(time.Duration(i-2) * time.Hour),
			Created: now.Add(-3 * time.Hour), State: p.state}
		if p.state == desk.PromiseKept {
			kept := now.Add(-time.Hour)
			pr.KeptAt = &kept
		}
		if err := e.store.SavePromise(ctx, pr); err != nil {
			e.t.Fatal(err)
		}
		f.promises[p.id] = pr
	}
	return f
}

func promiseIDs(ps []*desk.Promise) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.ID)
	}
	slices.Sort(out)
	return out
}

func TestSupervisorReassign(t *testing.T) {
	type owners map[string]string // item name -> owner expected afterwards
	tests := []struct {
		name      string
		by        *desk.User
		r         func(f reassignFixture) desk.Reassignment
		want      error
		result    desk.ReassignResult
		contacts  owners
		interests owners
		promises  owners
		audited   []string // item names moved, in the audit log
	}{
		{name: "an operator may not", by: maria, want: desk.ErrForbidden,
			r: func(reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "promise", From: "ivan", To: "maria"}
			}},
		{name: "unknown kind", by: sveta, want: desk.ErrInvalid,
			r: func(reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "meeting", From: "ivan", To: "maria"}
			}},
		{name: "to a supervisor", by: sveta, want: desk.ErrInvalid,
			r: func(reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "promise", From: "ivan", To: "sveta"}
			}},
		{name: "to an unknown login", by: sveta, want: desk.ErrInvalid,
			r: func(reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "promise", From: "ivan", To: "ghost"}
			}},
		{name: "to nobody", by: sveta, want: desk.ErrInvalid,
			r: func(reassignFixture) desk.Reassignment { return desk.Reassignment{Kind: "promise", From: "ivan"} }},
		{name: "bulk without from", by: sveta, want: desk.ErrInvalid,
			r: func(reassignFixture) desk.Reassignment { return desk.Reassignment{Kind: "promise", To: "maria"} }},
		{name: "bulk to himself", by: sveta, want: desk.ErrInvalid,
			r: func(reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "promise", From: "ivan", To: "ivan"}
			}},
		{
			name: "all of ivan's open promises to maria", by: sveta,
			r: func(reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "promise", From: "ivan", To: "maria"}
			},
			result: desk.ReassignResult{Promises: 3},
			promises: owners{"ivan-open-1": "maria", "ivan-open-2": "maria", "ivan-overdue": "maria", "ivan-kept": "ivan",
				"maria-open": "maria", "pool-open": ""},
			audited: []string{"ivan-open-1", "ivan-open-2", "ivan-overdue"},
		},
		{
			name: "all of ivan's open interests to oleg", by: supAdmin,
			r: func(reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "interest", From: "ivan", To: "oleg"}
			},
			result:    desk.ReassignResult{Interests: 2},
			interests: owners{"ivan-open-1": "oleg", "ivan-open-2": "oleg", "ivan-lost": "ivan", "oleg-open": "oleg"},
			audited:   []string{"ivan-open-1", "ivan-open-2"},
		},
		{
			name: "all of ivan's contacts to maria", by: sveta,
			r: func(reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "contact", From: "ivan", To: "maria"}
			},
			result:   desk.ReassignResult{Contacts: 2},
			contacts: owners{"ivan-1": "maria", "ivan-2": "maria", "oleg-1": "oleg", "nobody-1": ""},
			audited:  []string{"ivan-1", "ivan-2"},
		},
		{
			name: "a kept promise named by id moves", by: sveta,
			r: func(reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "promise", IDs: []string{"ivan-kept"}, To: "oleg"}
			},
			result:   desk.ReassignResult{Promises: 1},
			promises: owners{"ivan-kept": "oleg", "ivan-open-1": "ivan"},
			audited:  []string{"ivan-kept"},
		},
		{
			name: "a pool promise by id", by: sveta,
			r: func(reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "promise", IDs: []string{"pool-open"}, To: "oleg"}
			},
			result:   desk.ReassignResult{Promises: 1},
			promises: owners{"pool-open": "oleg"},
			audited:  []string{"pool-open"},
		},
		{
			name: "a closed interest and a contact without manager by id", by: sveta,
			r: func(f reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "interest", IDs: []string{f.interests["ivan-lost"].ID}, To: "maria"}
			},
			result:    desk.ReassignResult{Interests: 1},
			interests: owners{"ivan-lost": "maria", "ivan-open-1": "ivan"},
			audited:   []string{"ivan-lost"},
		},
		{
			name: "one named item is not from's: nothing moves", by: sveta, want: desk.ErrInvalid,
			r: func(reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "promise", IDs: []string{"ivan-open-1", "maria-open"}, From: "ivan", To: "oleg"}
			},
			promises: owners{"ivan-open-1": "ivan", "maria-open": "maria"},
		},
		{
			name: "one named item is unknown: nothing moves", by: sveta, want: desk.ErrNotFound,
			r: func(reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "promise", IDs: []string{"ivan-open-1", "nope"}, To: "oleg"}
			},
			promises: owners{"ivan-open-1": "ivan"},
		},
		{
			name: "already the target's: not counted, not audited", by: sveta,
			r: func(reassignFixture) desk.Reassignment {
				return desk.Reassignment{Kind: "promise", IDs: []string{"maria-open", "maria-open"}, To: "maria"}
			},
			promises: owners{"maria-open": "maria"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSupEnv(t)
			ctx := context.Background()
			f := e.seedOwnership()
			before := len(e.auditLog())
			res, err := e.sup.Reassign(ctx, tt.by, tt.r(f))
			switch {
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("Reassign = %+v, %v; want %v", res, err, tt.want)
			case tt.want == nil && err != nil:
				t.Fatal(err)
			case tt.want == nil && *res != tt.result:
				t.Fatalf("result %+v; want %+v", *res, tt.result)
			}
			for name, want := range tt.contacts {
				if c, err := e.store.Contact(ctx, f.contacts[name].ID); err != nil || c.Manager != want {
					t.Errorf("contact %s manager %q (%v); want %q", name, c.Manager, err, want)
				}
			}
			for name, want := range tt.interests {
				if i, err := e.store.Interest(ctx, f.interests[name].ID); err != nil || i.Owner != want || i.State != f.interests[name].State {
					t.Errorf("interest %s owner %q state %q (%v); want %q, state unchanged", name, i.Owner, i.State, err, want)
				}
			}
			for id, want := range tt.promises {
				p, err := e.store.Promise(ctx, id)
				if err != nil || p.Owner != want || p.State != f.promises[id].State {
					t.Errorf("promise %s owner %q state %q (%v); want %q, state unchanged", id, p.Owner, p.State, err, want)
				}
				// The owner indexes moved with it.
				listed, err := e.store.Promises(ctx, want, "")
				if err != nil || !slices.Contains(promiseIDs(listed), id) {
					t.Errorf("promise %s not listed under %q: %v %v", id, want, promiseIDs(listed), err)
				}
				if old := f.promises[id].Owner; old != want {
					if listed, _ := e.store.Promises(ctx, old, ""); slices.Contains(promiseIDs(listed), id) {
						t.Errorf("promise %s still listed under its old owner %q", id, old)
					}
				}
			}
			log := e.auditLog()
			entries := log[:len(log)-before]
			if len(entries) != len(tt.audited) {
				t.Fatalf("%d audit entries %+v; want %d", len(entries), entries, len(tt.audited))
			}
			r := tt.r(f)
			for _, name := range tt.audited {
				var id, from string
				switch r.Kind {
				case "contact":
					id, from = f.contacts[name].ID, f.contacts[name].Manager
				case "interest":
					id, from = f.interests[name].ID, f.interests[name].Owner
				case "promise":
					id, from = name, f.promises[name].Owner
					if from == "" {
						from = "pool"
					}
				}
				i := slices.IndexFunc(entries, func(a desk.AuditEntry) bool { return a.Target == id })
				if i < 0 {
					t.Fatalf("no audit entry for %s %s in %+v", r.Kind, name, entries)
				}
				a := entries[i]
				if a.Action != "reassign."+r.Kind || a.Who != tt.by.Login || !a.At.Equal(e.clock.Now()) ||
					a.Detail != fmt.Sprintf("from %s to %s", from, r.To) {
					t.Errorf("audit entry %+v; want reassign.%s by %s from %s to %s", a, r.Kind, tt.by.Login, from, r.To)
				}
			}
			// Moved promises reach both owners' pages.
			evs := e.pub.of(desk.EventPromiseUpdated)
			if r.Kind == "promise" && len(evs) != tt.result.Promises {
				t.Fatalf("%d promise.updated events; want %d", len(evs), tt.result.Promises)
			}
			for _, ev := range evs {
				p := ev.Payload.(desk.PromiseUpdate).Promise
				if p.Owner != r.To || !slices.Contains(ev.Operators, r.To) {
					t.Errorf("promise.updated %+v to %v; want the new owner %s", p, ev.Operators, r.To)
				}
			}
		})
	}
}

// A promise kept between the supervisor's read and the move stays kept and
// its owner's: the store moves an item only while it is as read.
func TestSupervisorReassignDoesNotUndoAConcurrentChange(t *testing.T) {
	e := newSupEnv(t)
	ctx := context.Background()
	e.seedOwnership()
	p, moved, err := e.store.ReassignPromise(ctx, "ivan-open-1", "oleg", "maria", true) // oleg never owned it
	if err != nil || moved || p.Owner != "ivan" {
		t.Fatalf("ReassignPromise from the wrong owner = %+v, %v, %v; want unmoved", p, moved, err)
	}
	kept, err := e.store.Promise(ctx, "ivan-kept")
	if err != nil {
		t.Fatal(err)
	}
	if p, moved, err := e.store.ReassignPromise(ctx, kept.ID, "ivan", "maria", true); err != nil || moved || p.Owner != "ivan" {
		t.Fatalf("bulk move of a kept promise = %+v, %v, %v; want unmoved", p, moved, err)
	}
	if _, _, err := e.store.ReassignPromise(ctx, "nope", "ivan", "maria", true); !errors.Is(err, desk.ErrNotFound) {
		t.Fatalf("unknown promise: %v", err)
	}
}

func TestSupervisorSetPresence(t *testing.T) {
	e := newSupEnv(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		by       *desk.User
		operator string
		away     bool
		want     error
	}{
		{"an operator may not", oleg, "maria", true, desk.ErrForbidden},
		{"unknown operator", sveta, "ghost", true, desk.ErrNotFound},
		{"a supervisor has no presence", sveta, "sveta", true, desk.ErrNotFound},
		{"force away", sveta, "maria", true, nil},
		{"back to available", supAdmin, "maria", false, nil},
	}
	events := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.auditLog())
			err := e.sup.SetPresence(ctx, tt.by, tt.operator, tt.away)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("SetPresence = %v; want %v", err, tt.want)
				}
				if len(e.auditLog()) != before || len(e.pub.of(desk.EventPresence)) != events {
					t.Fatal("a refused change was audited or published")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			events++
			ops, err := e.store.Operators(ctx)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(ops, func(o *desk.Operator) bool { return o.Login == tt.operator })
			if i < 0 || ops[i].Away != tt.away {
				t.Fatalf("stored presence %+v; want away %v", ops, tt.away)
			}
			evs := e.pub.of(desk.EventPresence)
			if len(evs) != events {
				t.Fatalf("%d presence events; want %d", len(evs), events)
			}
			ev := evs[len(evs)-1]
			// The payload has the shape of hub.PresencePayload: {"operator": Operator}.
			raw, err := json.Marshal(ev.Payload)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Operator *desk.Operator `json:"operator"`
			}
			if err := json.Unmarshal(raw, &body); err != nil || body.Operator == nil ||
				body.Operator.Login != tt.operator || body.Operator.Away != tt.away || !slices.Equal(ev.Operators, []string{tt.operator}) {
				t.Fatalf("presence event %+v: %s", ev, raw)
			}
			log := e.auditLog()
			wantDetail := map[bool]string{true: "away", false: "available"}[tt.away]
			if len(log) != before+1 || log[0].Action != "presence.force" || log[0].Target != tt.operator ||
				log[0].Who != tt.by.Login || log[0].Detail != wantDetail || !log[0].At.Equal(e.clock.Now()) {
				t.Fatalf("audit %+v", log)
			}
		})
	}
}
