package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
)

// digest hashes every key under prefix with its value, so two states compare.
func digest(t *testing.T, rdb redis.UniversalClient, prefix string) (string, int) {
	t.Helper()
	ctx := context.Background()
	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var vals []string
		switch typ {
		case "string":
			vals = []string{rdb.Get(ctx, k).Val()}
		case "list":
			vals = rdb.LRange(ctx, k, 0, -1).Val()
		case "set":
			vals = rdb.SMembers(ctx, k).Val()
			slices.Sort(vals)
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				vals = append(vals, f+"="+v)
			}
			slices.Sort(vals)
		case "zset":
			for _, z := range rdb.ZRangeWithScores(ctx, k, 0, -1).Val() {
				vals = append(vals, fmt.Sprint(z.Member, "=", z.Score))
			}
		default:
			t.Fatalf("key %s of type %s", k, typ)
		}
		h.Write([]byte(strings.TrimPrefix(k, prefix) + "\x00" + typ + "\x00" + strings.Join(vals, "\x00") + "\x01"))
	}
	return hex.EncodeToString(h.Sum(nil)), len(keys)
}

func TestSeedDemo(t *testing.T) {
	msk, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		now  time.Time
		anna bool // the built-in demo contact exists, as bootstrapUsers leaves it
	}{
		{"Wednesday afternoon", time.Date(2025, 1, 15, 15, 30, 0, 0, msk), true},
		{"Monday before work", time.Date(2025, 1, 13, 8, 0, 0, 0, msk), false},
		{"Sunday evening", time.Date(2025, 1, 19, 20, 0, 0, 0, msk), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			rdb, prefix := redistest.Client(t)
			store := redisstore.New(rdb, redisstore.WithPrefix(prefix), redisstore.WithClock(func() time.Time { return tt.now }))
			t.Cleanup(func() { _ = store.Close() })
			var anna *desk.Contact
			if tt.anna {
				anna = &desk.Contact{Name: demoContact.Name, Company: demoContact.Company, Phones: demoContact.Phones, Manager: "maria"}
				if err := store.CreateContact(ctx, anna); err != nil {
					t.Fatal(err)
				}
			}
			if err := seedDemo(ctx, store, tt.now, msk); err != nil {
				t.Fatal(err)
			}
			checkSeed(t, store, tt.now, msk)
			if anna != nil {
				if h, err := store.History(ctx, anna.ID, 0); err != nil || len(h) < 2 {
					t.Errorf("the demo contact's history = %d calls, %v; want her calls of the week", len(h), err)
				}
				if it, err := store.OpenInterest(ctx, anna.ID); err != nil || it.Owner != "maria" {
					t.Errorf("the demo contact's open interest = %+v, %v; want one owned by maria", it, err)
				}
			}

			before, n := digest(t, rdb, prefix)
			if n < 200 {
				t.Errorf("seed wrote %d keys; want a week of data", n)
			}
			// A restart seeds again, even at another time: nothing changes.
			for _, again := range []time.Time{tt.now, tt.now.Add(26 * time.Hour)} {
				if err := seedDemo(ctx, store, again, msk); err != nil {
					t.Fatal(err)
				}
				if after, m := digest(t, rdb, prefix); after != before || m != n {
					t.Errorf("second seed at %v changed the data: %d keys -> %d", again, n, m)
				}
			}

			// The same moment seeds the same week (deterministic reports).
			rdb2, prefix2 := redistest.Client(t)
			store2 := redisstore.New(rdb2, redisstore.WithPrefix(prefix2), redisstore.WithClock(func() time.Time { return tt.now }))
			t.Cleanup(func() { _ = store2.Close() })
			if tt.anna {
				cp := *anna
				cp.Created, cp.Updated = anna.Created, anna.Updated
				if err := store2.CreateContact(ctx, &cp); err != nil {
					t.Fatal(err)
				}
			}
			if err := seedDemo(ctx, store2, tt.now, msk); err != nil {
				t.Fatal(err)
			}
			if other, _ := digest(t, rdb2, prefix2); other != before {
				t.Error("two seeds at the same moment differ")
			}
		})
	}
}

// checkSeed checks what the reports and the board need: calls on each of the
// last 7 days, interests at every funnel stage with wins and every refusal
// reason, promises in every state, meetings, sources, mismatches and ranges.
func checkSeed(t *testing.T, store desk.Store, now time.Time, loc *time.Location) {
	t.Helper()
	ctx := context.Background()
	y, m, d := now.In(loc).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, loc)
	weekStart := today.AddDate(0, 0, -7)

	for i := 7; i >= 1; i-- {
		day := today.AddDate(0, 0, -i)
		calls, err := store.CallsBetween(ctx, day, day.AddDate(0, 0, 1))
		if err != nil {
			t.Fatal(err)
		}
		if len(calls) == 0 {
			t.Errorf("no calls on %s", day.Format("Mon 2006-01-02"))
		}
		for _, c := range calls {
			if h := c.Started.In(loc).Hour(); h < 9 || h > 17 {
				t.Errorf("call %s at %v is out of business hours", c.ID, c.Started.In(loc))
			}
		}
	}
	calls, err := store.CallsBetween(ctx, weekStart, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var answered, missed, abandoned, long int
	ops := map[string]int{}
	for _, c := range calls {
		if c.Started.After(now) {
			t.Errorf("call %s starts after now", c.ID)
		}
		switch {
		case c.Answered != nil:
			answered++
			ops[c.Operator]++
			if c.Ended.Sub(*c.Answered) > 15*time.Minute {
				long++
			}
		case c.State == desk.CallMissed && c.Reason == "cancelled":
			abandoned++
		case c.State == desk.CallMissed:
			missed++
		default:
			t.Errorf("call %s is %s and never answered", c.ID, c.State)
		}
	}
	share := float64(answered) / float64(len(calls))
	t.Logf("%d calls: %d answered (%.0f%%), %d missed, %d abandoned, %d long; by operator %v",
		len(calls), answered, share*100, missed, abandoned, long, ops)
	if len(calls) < 70 || share < 0.7 || share > 0.9 || missed == 0 || abandoned == 0 || long == 0 {
		t.Errorf("calls = %d, answered share %.2f, %d missed, %d abandoned, %d long; want a plausible week", len(calls), share, missed, abandoned, long)
	}
	if ops["maria"] == 0 || ops["oleg"] == 0 || len(ops) != 2 {
		t.Errorf("answered by %v; want maria and oleg", ops)
	}

	// Records of the answered calls: sources, mismatches, ranges, wrap-ups.
	sources := map[string]bool{}
	var mismatches, ranges, wrapups int
	for _, c := range calls {
		if c.Answered == nil {
			continue
		}
		rec, err := store.Record(ctx, c.ID)
		if err != nil {
			t.Fatalf("record of %s: %v", c.ID, err)
		}
		sources[rec.Answers["source"]] = true
		if rec.SourceMismatch {
			mismatches++
		}
		if rec.Range != nil {
			ranges++
		}
		if rec.Wrapup != nil && rec.Wrapup.Outcome != "" {
			wrapups++
		}
	}
	for _, s := range []string{"exhibition", "web_search", "catalogue", "tv_radio", "referral"} {
		if !sources[s] {
			t.Errorf("no call names the source %s", s)
		}
	}
	if mismatches == 0 || mismatches > 8 || ranges == 0 || wrapups != answered {
		t.Errorf("%d source mismatches, %d price ranges, %d of %d wrapped up", mismatches, ranges, wrapups, answered)
	}

	// The funnel.
	its, err := store.Interests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	open := map[string]int{}
	reasons := map[string]int{}
	won := 0
	for _, it := range its {
		switch it.State {
		case "open":
			open[it.Stage]++
		case "won":
			won++
		case "lost":
			reasons[it.Reason]++
		}
		if it.Owner != "maria" && it.Owner != "oleg" {
			t.Errorf("interest %s owned by %q", it.ID, it.Owner)
		}
		if len(it.History) == 0 || it.History[0].CallID == "" {
			t.Errorf("interest %s has no history", it.ID)
		}
	}
	for _, s := range desk.Stages {
		if open[s] == 0 {
			t.Errorf("no open interest at %s (open by stage %v)", s, open)
		}
	}
	for _, r := range []string{desk.ReasonUnreachable, desk.ReasonCompetitor, desk.ReasonNotProspective} {
		if reasons[r] == 0 {
			t.Errorf("no interest lost as %s (%v)", r, reasons)
		}
	}
	if won < 2 {
		t.Errorf("%d deals won; want 2", won)
	}

	// Promises in every state.
	ps, err := store.Promises(ctx, "*", "")
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]int{}
	for _, p := range ps {
		switch {
		case p.State == desk.PromiseKept && p.KeptAt != nil && !p.KeptAt.After(p.Due):
			states["kept on time"]++
		case p.State == desk.PromiseKept:
			states["kept late"]++
		case p.Overdue(now):
			states["overdue"]++
		default:
			states["open"]++
		}
		if p.Kind == "callback" {
			states["callback"]++
		}
		if p.KeptAt != nil && p.KeptAt.After(now) {
			t.Errorf("promise %s kept in the future", p.ID)
		}
	}
	t.Logf("promises: %v", states)
	for _, s := range []string{"kept on time", "kept late", "overdue", "open", "callback"} {
		if states[s] == 0 {
			t.Errorf("no promise %s (%v)", s, states)
		}
	}

	ms, err := store.MeetingsBetween(ctx, weekStart, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 3 {
		t.Errorf("%d meetings; want a few", len(ms))
	}

	// The contacts: the marker last, every one with a manager, notes and history.
	c, err := store.ContactByPhone(ctx, demoMarkerPhone)
	if err != nil {
		t.Fatalf("marker contact: %v", err)
	}
	var withNotes, withHistory int
	for i := range demoPeople {
		id := strings.Replace(c.ID, "24", "", 1) + twoDigits(i)
		ct, err := store.Contact(ctx, id)
		if err != nil {
			t.Fatalf("contact %s: %v", id, err)
		}
		if ct.Manager != "maria" && ct.Manager != "oleg" {
			t.Errorf("contact %s manager %q", id, ct.Manager)
		}
		if n, _ := store.Notes(ctx, id, 0); len(n) > 0 {
			withNotes++
		}
		if h, _ := store.History(ctx, id, 0); len(h) > 0 {
			withHistory++
		}
	}
	if withNotes < 5 || withHistory < 20 {
		t.Errorf("%d contacts with notes, %d with history", withNotes, withHistory)
	}
}

func twoDigits(i int) string { return string([]byte{byte('0' + i/10), byte('0' + i%10)}) }
