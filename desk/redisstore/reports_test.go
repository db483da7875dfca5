package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
)

// The batch readers of reports return what exists, by ID, and skip the rest; a
// batch larger than one pipeline is read whole.
func TestReportBatchReaders(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		t0 := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
		const n = 1203 // more than one pipeline batch
		ids := make([]string, 0, n+1)
		for i := range n {
			id := fmt.Sprintf("c%04d", i)
			ids = append(ids, id)
			if err := s.SaveCall(ctx, &desk.Call{ID: id, Line: "sales", State: desk.CallEnded, Started: t0.Add(time.Duration(i) * time.Second)}); err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 {
				rec := &desk.Record{CallID: id, Operator: "maria", Line: "sales", PresetSource: "web_search",
					Answers: map[string]string{"source": "exhibition"}, Wrapup: &desk.Wrapup{Outcome: desk.OutcomeInterest}}
				if err := s.SaveRecord(ctx, rec); err != nil {
					t.Fatal(err)
				}
			}
		}
		ids = append(ids, "gone")
		calls, err := s.CallsByID(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(calls) != n || calls["c1202"] == nil || calls["c1202"].Line != "sales" || calls["gone"] != nil {
			t.Errorf("CallsByID: %d calls", len(calls))
		}
		recs, err := s.Records(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		r := recs["c1202"]
		if len(recs) != (n+1)/2 || r == nil || r.Answers["source"] != "exhibition" || r.PresetSource != "web_search" ||
			r.Wrapup == nil || r.Wrapup.Outcome != desk.OutcomeInterest || recs["c0001"] != nil {
			t.Errorf("Records: %d records, c1202 = %+v", len(recs), r)
		}
		if got, err := s.Records(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("no ids: %v %v", got, err)
		}

		for i, o := range []string{"missed", "interest"} {
			if err := s.AddHistory(ctx, "k1", desk.CallSummary{CallID: fmt.Sprint("h", i), At: t0.Add(time.Duration(i) * time.Hour), Outcome: o}); err != nil {
				t.Fatal(err)
			}
		}
		h, err := s.Histories(ctx, []string{"k1", "k2"})
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 1 || len(h["k1"]) != 2 || h["k1"][0].Outcome != "interest" || h["k1"][1].CallID != "h0" {
			t.Errorf("Histories: %+v", h)
		}
	})
}

func TestChannelCosts(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		if c, err := s.ChannelCosts(ctx); c != nil || err != nil {
			t.Fatalf("none entered: %v %v", c, err)
		}
		at := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
		want := &desk.ChannelCosts{Currency: "RUB", Costs: map[string]float64{"exhibition": 120000, "web_search": 0.5}, By: "root", Updated: at}
		if err := s.SetChannelCosts(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.ChannelCosts(ctx)
		if err != nil || got == nil || got.Currency != "RUB" || len(got.Costs) != 2 || got.Costs["web_search"] != 0.5 ||
			got.By != "root" || !got.Updated.Equal(at) {
			t.Fatalf("read back: %+v %v", got, err)
		}
		if err := s.SetChannelCosts(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if c, err := s.ChannelCosts(ctx); c != nil || err != nil {
			t.Errorf("cleared: %v %v", c, err)
		}
	})
}
