package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
)

func TestUpdateContact(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		ivan := &desk.Contact{Name: "Ivan", Phones: []string{"+79990000001", "+79990000002"}}
		olga := &desk.Contact{Name: "Olga", Phones: []string{"+79990000009"}}
		for _, c := range []*desk.Contact{ivan, olga} {
			if err := s.CreateContact(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		created := ivan.Created
		tests := []struct {
			name   string
			c      desk.Contact
			want   error
			owners map[string]string // phone -> contact ID ("" none) after the update
		}{
			{"merge a new phone", desk.Contact{ID: ivan.ID, Name: "Ivan P", Phones: []string{"+79990000001", "+79990000002", "+79990000003", "+79990000003"}}, nil,
				map[string]string{"+79990000001": ivan.ID, "+79990000002": ivan.ID, "+79990000003": ivan.ID, "+79990000009": olga.ID}},
			{"drop a phone releases it", desk.Contact{ID: ivan.ID, Name: "Ivan P", Phones: []string{"+79990000001", "+79990000003"}}, nil,
				map[string]string{"+79990000001": ivan.ID, "+79990000002": "", "+79990000003": ivan.ID}},
			{"another contact's phone", desk.Contact{ID: ivan.ID, Name: "Thief", Phones: []string{"+79990000001", "+79990000009"}}, desk.ErrExists,
				map[string]string{"+79990000001": ivan.ID, "+79990000003": ivan.ID, "+79990000009": olga.ID}},
			{"not E.164", desk.Contact{ID: ivan.ID, Phones: []string{"8999"}}, desk.ErrInvalid, nil},
			{"unknown contact", desk.Contact{ID: "nobody", Phones: []string{"+79990000005"}}, desk.ErrNotFound,
				map[string]string{"+79990000005": ""}},
			{"released phone is free for others", desk.Contact{ID: olga.ID, Name: "Olga", Phones: []string{"+79990000009", "+79990000002"}}, nil,
				map[string]string{"+79990000002": olga.ID, "+79990000009": olga.ID}},
		}
		for _, tt := range tests {
			c := tt.c
			err := s.UpdateContact(ctx, &c)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("%s: UpdateContact = %v; want %v", tt.name, err, tt.want)
			}
			for phone, id := range tt.owners {
				got, err := s.ContactByPhone(ctx, phone)
				switch {
				case id == "" && !errors.Is(err, desk.ErrNotFound):
					t.Errorf("%s: %s owned by %v (%v); want nobody", tt.name, phone, got, err)
				case id != "" && (err != nil || got.ID != id):
					t.Errorf("%s: %s owned by %v (%v); want %s", tt.name, phone, got, err, id)
				}
			}
		}
		got, err := s.Contact(ctx, ivan.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Ivan P" || !slices.Equal(got.Phones, []string{"+79990000001", "+79990000003"}) || !got.Created.Equal(created) {
			t.Errorf("Contact = %+v; want the last good update with the original Created", got)
		}
	})
}

func TestInterests(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		if _, err := s.OpenInterest(ctx, "k1"); !errors.Is(err, desk.ErrNotFound) {
			t.Errorf("OpenInterest before any = %v; want ErrNotFound", err)
		}
		t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
		first := &desk.Interest{ContactID: "k1", Type: "interest", Owner: "alice", Stage: "first_call", State: "open", Created: t0,
			History: []desk.StageChange{{Stage: "first_call", State: "open", At: t0, By: "alice", CallID: "c1"}}}
		other := &desk.Interest{ContactID: "k2", Type: "deal", Owner: "bob", Stage: "meeting", State: "open", Created: t0.Add(time.Hour)}
		for _, i := range []*desk.Interest{first, other} {
			if err := s.SaveInterest(ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		if first.ID == "" || first.ID == other.ID {
			t.Fatalf("IDs %q, %q; want distinct", first.ID, other.ID)
		}
		got, err := s.OpenInterest(ctx, "k1")
		if err != nil || got.ID != first.ID || len(got.History) != 1 || got.History[0].CallID != "c1" {
			t.Errorf("OpenInterest(k1) = %+v, %v", got, err)
		}

		// Closing it (lost) leaves no open interest; a new one becomes the open one.
		first.State, first.Reason = "lost", desk.ReasonCompetitor
		if err := s.SaveInterest(ctx, first); err != nil {
			t.Fatal(err)
		}
		if _, err := s.OpenInterest(ctx, "k1"); !errors.Is(err, desk.ErrNotFound) {
			t.Errorf("OpenInterest after closing = %v; want ErrNotFound", err)
		}
		again := &desk.Interest{ContactID: "k1", Type: "interest", Owner: "alice", Stage: "first_call", State: "open", Created: t0.Add(2 * time.Hour)}
		if err := s.SaveInterest(ctx, again); err != nil {
			t.Fatal(err)
		}
		// Saving the old, closed one again must not steal the index from the new one.
		if err := s.SaveInterest(ctx, first); err != nil {
			t.Fatal(err)
		}
		if got, err := s.OpenInterest(ctx, "k1"); err != nil || got.ID != again.ID {
			t.Errorf("OpenInterest = %+v, %v; want the new one", got, err)
		}
		if got, err := s.Interest(ctx, first.ID); err != nil || got.State != "lost" || got.Reason != desk.ReasonCompetitor {
			t.Errorf("Interest = %+v, %v", got, err)
		}
		if _, err := s.Interest(ctx, "nope"); !errors.Is(err, desk.ErrNotFound) {
			t.Errorf("Interest(unknown) = %v; want ErrNotFound", err)
		}
		all, err := s.Interests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, i := range all {
			ids = append(ids, i.ID)
		}
		if want := []string{again.ID, other.ID, first.ID}; !slices.Equal(ids, want) {
			t.Errorf("Interests = %v; want newest first %v", ids, want)
		}
	})
}

func TestPromises(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	forEachWith(t, []redisstore.Option{redisstore.WithClock(func() time.Time { return now })}, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		at := func(m int) time.Time { return now.Add(time.Duration(m) * time.Minute) }
		ps := map[string]*desk.Promise{
			"a-late":  {Owner: "alice", ContactID: "k1", Kind: "promise", What: "send offer", Due: at(60)},
			"a-soon":  {Owner: "alice", ContactID: "k1", Kind: "promise", What: "check stock", Due: at(-30)},
			"a-done":  {Owner: "alice", ContactID: "k2", Kind: "promise", What: "done", Due: at(-90)},
			"b":       {Owner: "bob", ContactID: "k2", Kind: "promise", What: "call", Due: at(-10)},
			"pool":    {Owner: "", Phone: "+79990000001", Kind: "callback", Due: at(-5)},
			"told":    {Owner: "bob", Kind: "promise", Due: at(-60), Notified: true},
			"pool-ok": {Owner: "", Kind: "callback", Due: at(30)},
		}
		names := map[string]string{} // ID -> name
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range ps {
				if !yield(k) {
					return
				}
			}
		}) {
			p := ps[name]
			if err := s.SavePromise(ctx, p); err != nil {
				t.Fatal(err)
			}
			if p.ID == "" || p.State != desk.PromiseOpen || !p.Created.Equal(now) {
				t.Fatalf("SavePromise did not fill in %+v", p)
			}
			names[p.ID] = name
		}
		kept := now
		done := ps["a-done"]
		done.State, done.KeptAt, done.Result = desk.PromiseKept, &kept, "sent"
		if err := s.SavePromise(ctx, done); err != nil {
			t.Fatal(err)
		}
		list := func(ps []*desk.Promise, err error) string {
			if err != nil {
				return err.Error()
			}
			var out []string
			for _, p := range ps {
				out = append(out, names[p.ID])
			}
			return fmt.Sprint(out)
		}
		tests := []struct {
			name string
			got  func() ([]*desk.Promise, error)
			want string
		}{
			{"alice all", func() ([]*desk.Promise, error) { return s.Promises(ctx, "alice", "") }, "[a-done a-soon a-late]"},
			{"alice open", func() ([]*desk.Promise, error) { return s.Promises(ctx, "alice", desk.PromiseOpen) }, "[a-soon a-late]"},
			{"alice kept", func() ([]*desk.Promise, error) { return s.Promises(ctx, "alice", desk.PromiseKept) }, "[a-done]"},
			{"alice overdue", func() ([]*desk.Promise, error) { return s.Promises(ctx, "alice", desk.PromiseOverdue) }, "[a-soon]"},
			{"pool", func() ([]*desk.Promise, error) { return s.Promises(ctx, "", "") }, "[pool pool-ok]"},
			{"everyone open", func() ([]*desk.Promise, error) { return s.Promises(ctx, "*", desk.PromiseOpen) },
				"[told a-soon b pool pool-ok a-late]"},
			{"everyone kept", func() ([]*desk.Promise, error) { return s.Promises(ctx, "*", desk.PromiseKept) }, "[a-done]"},
			{"everyone", func() ([]*desk.Promise, error) { return s.Promises(ctx, "*", "") },
				"[a-done told a-soon b pool pool-ok a-late]"},
			{"nobody's", func() ([]*desk.Promise, error) { return s.Promises(ctx, "carol", "") }, "[]"},
			{"contact k1 open", func() ([]*desk.Promise, error) { return s.ContactPromises(ctx, "k1") }, "[a-soon a-late]"},
			{"contact k2 open: kept left", func() ([]*desk.Promise, error) { return s.ContactPromises(ctx, "k2") }, "[b]"},
			{"due now, not notified, not kept", func() ([]*desk.Promise, error) { return s.DuePromises(ctx, now) }, "[a-soon b pool]"},
			{"due earlier", func() ([]*desk.Promise, error) { return s.DuePromises(ctx, at(-10)) }, "[a-soon b]"},
		}
		for _, tt := range tests {
			if got := list(tt.got()); got != tt.want {
				t.Errorf("%s = %s; want %s", tt.name, got, tt.want)
			}
		}

		// Notifying takes a promise out of the due set; reassigning it moves it
		// between owners; keeping it takes it out of every open set.
		pool := ps["pool"]
		pool.Notified = true
		pool.Owner = "alice"
		if err := s.SavePromise(ctx, pool); err != nil {
			t.Fatal(err)
		}
		b2 := ps["b"]
		b2.State = desk.PromiseKept
		if err := s.SavePromise(ctx, b2); err != nil {
			t.Fatal(err)
		}
		after := []struct {
			name string
			got  func() ([]*desk.Promise, error)
			want string
		}{
			{"due after notify and keep", func() ([]*desk.Promise, error) { return s.DuePromises(ctx, now) }, "[a-soon]"},
			{"pool after reassign", func() ([]*desk.Promise, error) { return s.Promises(ctx, "", "") }, "[pool-ok]"},
			{"alice open after reassign", func() ([]*desk.Promise, error) { return s.Promises(ctx, "alice", desk.PromiseOpen) }, "[a-soon pool a-late]"},
			{"bob open after keep", func() ([]*desk.Promise, error) { return s.Promises(ctx, "bob", desk.PromiseOpen) }, "[told]"},
			{"contact k2 after keep", func() ([]*desk.Promise, error) { return s.ContactPromises(ctx, "k2") }, "[]"},
			{"everyone open after keep", func() ([]*desk.Promise, error) { return s.Promises(ctx, "*", desk.PromiseOpen) },
				"[told a-soon pool pool-ok a-late]"},
		}
		for _, tt := range after {
			if got := list(tt.got()); got != tt.want {
				t.Errorf("%s = %s; want %s", tt.name, got, tt.want)
			}
		}
		// The reads above filter by state; the indexes themselves must not keep
		// kept or notified promises either, or they would grow for ever.
		raw := b.client()
		for key, want := range map[string]int64{
			"{sales}:promises:due":         3, // a-soon, a-late, pool-ok
			"{sales}:promises:open":        5,
			"{sales}:promises:oowner:bob":  1, // told
			"{sales}:promises:ocontact:k2": 0,
			"{sales}:promises:owner:~pool": 1, // pool-ok
		} {
			if n, err := raw.ZCard(ctx, b.prefix+key).Result(); err != nil || n != want {
				t.Errorf("index %s has %d members (%v); want %d", key, n, err, want)
			}
		}
		got, err := s.Promise(ctx, done.ID)
		if err != nil || got.State != desk.PromiseKept || got.KeptAt == nil || !got.KeptAt.Equal(now) || got.Result != "sent" {
			t.Errorf("Promise = %+v, %v", got, err)
		}
		if _, err := s.Promise(ctx, "nope"); !errors.Is(err, desk.ErrNotFound) {
			t.Errorf("Promise(unknown) = %v; want ErrNotFound", err)
		}
	})
}

func TestMeetingsNotesHistory(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
		m := &desk.Meeting{ContactID: "k1", Owner: "alice", At: t0.Add(24 * time.Hour), Format: "online"}
		if err := s.SaveMeeting(ctx, m); err != nil || m.ID == "" || m.Created.IsZero() {
			t.Errorf("SaveMeeting = %v, %+v", err, m)
		}

		const n = 205 // more than a contact keeps
		for i := range n {
			if err := s.AddNote(ctx, &desk.Note{ContactID: "k1", Text: fmt.Sprint("note ", i), By: "alice", At: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
				t.Fatal(err)
			}
			if err := s.AddHistory(ctx, "k1", desk.CallSummary{CallID: fmt.Sprint("c", i), Operator: "alice", Outcome: desk.OutcomeInterest, Seconds: int64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name      string
			limit     int
			wantLen   int
			wantFirst int
		}{
			{"card size", 20, 20, n - 1},
			{"one", 1, 1, n - 1},
			{"all kept is capped", 0, 200, n - 1},
			{"more than kept", 1000, 200, n - 1},
		}
		for _, tt := range tests {
			notes, err := s.Notes(ctx, "k1", tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			hist, err := s.History(ctx, "k1", tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(notes) != tt.wantLen || len(hist) != tt.wantLen {
				t.Errorf("%s: %d notes, %d calls; want %d", tt.name, len(notes), len(hist), tt.wantLen)
				continue
			}
			if notes[0].Text != fmt.Sprint("note ", tt.wantFirst) || hist[0].CallID != fmt.Sprint("c", tt.wantFirst) {
				t.Errorf("%s: first %q, %q; want the newest", tt.name, notes[0].Text, hist[0].CallID)
			}
			for i := 1; i < len(notes); i++ {
				if !notes[i].At.Before(notes[i-1].At) || hist[i].Seconds >= hist[i-1].Seconds {
					t.Fatalf("%s: not newest first at %d", tt.name, i)
				}
			}
			if notes[0].ID == "" {
				t.Errorf("%s: note without ID", tt.name)
			}
		}
		if notes, err := s.Notes(ctx, "k2", 10); err != nil || len(notes) != 0 {
			t.Errorf("Notes(other contact) = %v, %v; want none", notes, err)
		}
		if err := s.AddNote(ctx, &desk.Note{Text: "x"}); !errors.Is(err, desk.ErrInvalid) {
			t.Errorf("AddNote without contact = %v; want ErrInvalid", err)
		}
	})
}

func TestPendingWrapup(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		steps := []struct {
			login, set string // set "-" means only read
			want       string
		}{
			{"alice", "-", ""},
			{"alice", "c1", "c1"},
			{"bob", "-", ""},
			{"alice", "c2", "c2"},
			{"alice", "", ""},
		}
		for i, st := range steps {
			if st.set != "-" {
				if err := s.SetPendingWrapup(ctx, st.login, st.set); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := s.PendingWrapup(ctx, st.login); err != nil || got != st.want {
				t.Errorf("step %d: PendingWrapup(%s) = %q, %v; want %q", i, st.login, got, err, st.want)
			}
		}
	})
}

func TestAudit(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	forEachWith(t, []redisstore.Option{redisstore.WithClock(func() time.Time { return now })}, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		for i := range 5 {
			if err := s.Audit(ctx, desk.AuditEntry{Who: "sup", Action: "wrapup.force", Target: fmt.Sprint("c", i)}); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			limit   int
			targets string
		}{
			{2, "[c4 c3]"},
			{0, "[c4 c3 c2 c1 c0]"},
			{50, "[c4 c3 c2 c1 c0]"},
		}
		for _, tt := range tests {
			es, err := s.AuditLog(ctx, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Target)
				if !e.At.Equal(now) || e.Who != "sup" || e.Action != "wrapup.force" {
					t.Errorf("entry %+v; want At stamped and fields kept", e)
				}
			}
			if fmt.Sprint(got) != tt.targets {
				t.Errorf("AuditLog(%d) = %v; want %s", tt.limit, got, tt.targets)
			}
		}
	})
}

func TestLease(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		other := redisstore.New(b.client(), redisstore.WithPrefix(b.prefix)) // a second node
		const ttl = 500 * time.Millisecond
		steps := []struct {
			name   string
			store  *redisstore.Store
			lease  string
			holder string
			wait   time.Duration // lease time to elapse before the call
			want   bool
		}{
			{"free lease is taken", s, "promises", "n1", 0, true},
			{"held by another", other, "promises", "n2", 0, false},
			{"another lease is independent", other, "reports", "n2", 0, true},
			{"holder renews", s, "promises", "n1", 300 * time.Millisecond, true},
			{"renewed lease outlives its first ttl", other, "promises", "n2", 300 * time.Millisecond, false},
			{"expired lease goes to the other", other, "promises", "n2", 600 * time.Millisecond, true},
			{"and the first holder lost it", s, "promises", "n1", 0, false},
		}
		for _, st := range steps {
			if st.wait > 0 {
				b.advance(st.wait)
			}
			got, err := st.store.Lease(ctx, st.lease, st.holder, ttl)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if got != st.want {
				t.Errorf("%s: Lease = %v; want %v", st.name, got, st.want)
			}
		}
		if _, err := s.Lease(ctx, "", "n1", ttl); !errors.Is(err, desk.ErrInvalid) {
			t.Errorf("Lease without name = %v; want ErrInvalid", err)
		}
	})
}
