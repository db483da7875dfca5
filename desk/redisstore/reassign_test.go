package redisstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
)

func TestReassignStore(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		var contacts []*desk.Contact
		for i, m := range []string{"ivan", "maria", "ivan", ""} {
			c := &desk.Contact{Name: "c" + string(rune('a'+i)), Manager: m, Phones: []string{"+7916000000" + string(rune('1'+i))}}
			if err := s.CreateContact(ctx, c); err != nil {
				t.Fatal(err)
			}
			contacts = append(contacts, c)
		}
		got, err := s.ContactsOf(ctx, "ivan")
		if err != nil || len(got) != 2 || got[0].ID != contacts[0].ID || got[1].ID != contacts[2].ID {
			t.Fatalf("ContactsOf(ivan) = %+v, %v", got, err)
		}
		if _, err := s.ContactsOf(ctx, ""); !errors.Is(err, desk.ErrInvalid) {
			t.Errorf("ContactsOf(\"\") = %v; want ErrInvalid", err)
		}

		steps := []struct {
			name      string
			id        string
			from, to  string
			wantMoved bool
			wantOwner string
			wantErr   error
		}{
			{"moves from its manager", contacts[0].ID, "ivan", "oleg", true, "oleg", nil},
			{"stale from: left alone", contacts[0].ID, "ivan", "maria", false, "oleg", nil},
			{"no manager to someone", contacts[3].ID, "", "oleg", true, "oleg", nil},
			{"same from and to", contacts[1].ID, "maria", "maria", false, "maria", nil},
			{"unknown contact", "nope", "ivan", "oleg", false, "", desk.ErrNotFound},
		}
		for _, st := range steps {
			c, moved, err := s.ReassignContact(ctx, st.id, st.from, st.to)
			if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
				t.Errorf("%s: err %v; want %v", st.name, err, st.wantErr)
				continue
			}
			if st.wantErr != nil {
				continue
			}
			stored, _ := s.Contact(ctx, st.id)
			if moved != st.wantMoved || c.Manager != st.wantOwner || stored.Manager != st.wantOwner {
				t.Errorf("%s: moved %v, %q (stored %q); want %v, %q", st.name, moved, c.Manager, stored.Manager, st.wantMoved, st.wantOwner)
			}
		}
		// Phones stay indexed to the contact.
		if c, err := s.ContactByPhone(ctx, contacts[0].Phones[0]); err != nil || c.ID != contacts[0].ID || c.Manager != "oleg" {
			t.Errorf("ContactByPhone after the move = %+v, %v", c, err)
		}

		t0 := time.Date(2025, 2, 3, 11, 0, 0, 0, time.UTC)
		open := &desk.Interest{ContactID: contacts[0].ID, Owner: "ivan", Stage: "first_call", State: "open", Created: t0}
		lost := &desk.Interest{ContactID: contacts[2].ID, Owner: "ivan", Stage: "meeting", State: "lost", Created: t0.Add(time.Hour)}
		for _, i := range []*desk.Interest{open, lost} {
			if err := s.SaveInterest(ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		if is, err := s.InterestsOf(ctx, "ivan"); err != nil || len(is) != 2 {
			t.Fatalf("InterestsOf(ivan) = %+v, %v", is, err)
		}
		if _, moved, err := s.ReassignInterest(ctx, lost.ID, "ivan", "maria", true); err != nil || moved {
			t.Errorf("open-only move of a lost interest: moved %v, %v", moved, err)
		}
		if i, moved, err := s.ReassignInterest(ctx, lost.ID, "ivan", "maria", false); err != nil || !moved || i.Owner != "maria" || i.State != "lost" {
			t.Errorf("move of a named lost interest: %+v, %v, %v", i, moved, err)
		}
		if i, moved, err := s.ReassignInterest(ctx, open.ID, "ivan", "maria", true); err != nil || !moved || i.Owner != "maria" {
			t.Errorf("move of an open interest: %+v, %v, %v", i, moved, err)
		}
		if oi, err := s.OpenInterest(ctx, contacts[0].ID); err != nil || oi.ID != open.ID || oi.Owner != "maria" {
			t.Errorf("the contact's open interest after the move = %+v, %v", oi, err)
		}
		if is, err := s.InterestsOf(ctx, "ivan"); err != nil || len(is) != 0 {
			t.Errorf("InterestsOf(ivan) after = %+v, %v", is, err)
		}

		p := &desk.Promise{ID: "p1", Owner: "", ContactID: contacts[0].ID, Kind: "callback", What: "call back", Due: t0, Created: t0, State: desk.PromiseOpen}
		if err := s.SavePromise(ctx, p); err != nil {
			t.Fatal(err)
		}
		if got, moved, err := s.ReassignPromise(ctx, "p1", "", "oleg", true); err != nil || !moved || got.Owner != "oleg" {
			t.Fatalf("pool promise to oleg: %+v, %v, %v", got, moved, err)
		}
		for _, c := range []struct {
			owner, state string
			want         []string
		}{{"", "", nil}, {"", desk.PromiseOpen, nil}, {"oleg", "", []string{"p1"}}, {"oleg", desk.PromiseOpen, []string{"p1"}}} {
			ps, err := s.Promises(ctx, c.owner, c.state)
			var ids []string
			for _, p := range ps {
				ids = append(ids, p.ID)
			}
			if err != nil || !slices.Equal(ids, c.want) {
				t.Errorf("Promises(%q, %q) = %v, %v; want %v", c.owner, c.state, ids, err, c.want)
			}
		}
		// Still due and on the contact's card.
		if due, err := s.DuePromises(ctx, t0); err != nil || len(due) != 1 || due[0].Owner != "oleg" {
			t.Errorf("DuePromises = %+v, %v", due, err)
		}
		if cps, err := s.ContactPromises(ctx, contacts[0].ID); err != nil || len(cps) != 1 || cps[0].Owner != "oleg" {
			t.Errorf("ContactPromises = %+v, %v", cps, err)
		}
	})
}
