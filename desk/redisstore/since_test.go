package redisstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
)

// fakeClock is a settable clock for the store.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// Operator.Since is when his current state started: it stays while the state
// stays (a retransmitted claim, a ttl refresh, going away twice) and restarts when
// the state changes.
func TestOperatorSince(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			t0 := time.Now().Truncate(time.Millisecond).UTC()
			clk := &fakeClock{t: t0}
			s := redisstore.New(b.client(), redisstore.WithPrefix(b.prefix), redisstore.WithClock(clk.Now))
			t.Cleanup(func() { _ = s.Close() })
			mustOp(t, s, "alice")
			if err := s.PutBindings(ctx, "alice", []desk.Binding{{Login: "alice", Contact: "sip:alice@127.0.0.1",
				Transport: "udp", Expires: t0.Add(time.Hour)}}); err != nil {
				t.Fatal(err)
			}
			at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
			steps := []struct {
				name       string
				sec        int // the clock when the step runs
				do         func() error
				wantStatus desk.Status
				wantSince  time.Time
			}{
				{"ringing", 1, func() error { return s.Claim(ctx, "alice", "c1", desk.StatusRinging, time.Minute) }, desk.StatusRinging, at(1)},
				{"INVITE again", 2, func() error { return s.Claim(ctx, "alice", "c1", desk.StatusRinging, time.Minute) }, desk.StatusRinging, at(1)},
				{"answered", 5, func() error { return s.UpdateClaim(ctx, "alice", "c1", desk.StatusTalking, time.Hour) }, desk.StatusTalking, at(5)},
				{"talk refreshed", 60, func() error { return s.UpdateClaim(ctx, "alice", "c1", desk.StatusTalking, time.Hour) }, desk.StatusTalking, at(5)},
				{"wrap-up", 100, func() error { return s.UpdateClaim(ctx, "alice", "c1", desk.StatusWrapup, time.Hour) }, desk.StatusWrapup, at(100)},
				{"wrap-up claimed again", 110, func() error { return s.Claim(ctx, "alice", "c1", desk.StatusWrapup, time.Hour) }, desk.StatusWrapup, at(100)},
				{"released", 130, func() error { return s.Release(ctx, "alice", "c1") }, desk.StatusAvailable, at(130)},
				{"away", 200, func() error { return s.SetAway(ctx, "alice", true) }, desk.StatusAway, at(200)},
				{"away again", 210, func() error { return s.SetAway(ctx, "alice", true) }, desk.StatusAway, at(200)},
				{"ringing while away", 220, func() error { return s.Claim(ctx, "alice", "c2", desk.StatusRinging, time.Minute) }, desk.StatusRinging, at(220)},
				{"caller gave up", 230, func() error { return s.Release(ctx, "alice", "c2") }, desk.StatusAway, at(200)},
				{"back", 300, func() error { return s.SetAway(ctx, "alice", false) }, desk.StatusAvailable, at(300)},
				{"back again", 310, func() error { return s.SetAway(ctx, "alice", false) }, desk.StatusAvailable, at(300)},
				{"next call ends", 400, func() error {
					if err := s.Claim(ctx, "alice", "c3", desk.StatusRinging, time.Minute); err != nil {
						return err
					}
					return s.Release(ctx, "alice", "c3")
				}, desk.StatusAvailable, at(400)},
			}
			for _, st := range steps {
				clk.Set(at(st.sec))
				if err := st.do(); err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				ops, err := s.Operators(ctx)
				if err != nil || len(ops) != 1 {
					t.Fatalf("%s: Operators = %v, %v", st.name, ops, err)
				}
				if o := ops[0]; o.Status != st.wantStatus || !o.Since.Equal(st.wantSince) {
					t.Errorf("%s: status %s since %v; want %s since %v", st.name, o.Status, o.Since, st.wantStatus, st.wantSince)
				}
			}
		})
	}
}

// A claim written before the time was kept in it ("callID|status") still reads,
// with an unknown start, and the call that holds it may still update and release it.
func TestOperatorSinceLegacyClaim(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		mustOp(t, s, "bob")
		rdb := b.client()
		if err := rdb.Set(ctx, b.prefix+"{presence}:claim:bob", "old-call|talking", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		ops, err := s.Operators(ctx)
		if err != nil || len(ops) != 1 {
			t.Fatalf("Operators = %v, %v", ops, err)
		}
		if o := ops[0]; o.Status != desk.StatusTalking || o.CallID != "old-call" || !o.Since.IsZero() {
			t.Errorf("legacy claim read as %+v; want talking on old-call, since unknown", *o)
		}
		if err := s.Claim(ctx, "bob", "other", desk.StatusRinging, time.Minute); err == nil {
			t.Error("another call claimed bob over a legacy claim")
		}
		if err := s.UpdateClaim(ctx, "bob", "old-call", desk.StatusWrapup, time.Minute); err != nil {
			t.Fatalf("UpdateClaim on a legacy claim: %v", err)
		}
		ops, _ = s.Operators(ctx)
		if o := ops[0]; o.Status != desk.StatusWrapup || o.Since.IsZero() {
			t.Errorf("after update: %+v; want wrap-up with a start time", *o)
		}
		if err := s.Release(ctx, "bob", "old-call"); err != nil {
			t.Fatal(err)
		}
		ops, _ = s.Operators(ctx)
		if ops[0].CallID != "" {
			t.Errorf("legacy claim not released: %+v", *ops[0])
		}
	})
}
