package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
)

// forEachWith is forEach with options for the Store (a fake clock).
func forEachWith(t *testing.T, opts []redisstore.Option, f func(t *testing.T, b backend, s *redisstore.Store)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := redisstore.New(b.client(), append([]redisstore.Option{redisstore.WithPrefix(b.prefix)}, opts...)...)
			t.Cleanup(func() { _ = s.Close() })
			f(t, b, s)
		})
	}
}

func TestApplyAnswers(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
		base := &desk.Record{CallID: "c1", Operator: "alice", ContactID: "k1", Line: "sales", Script: "default", PresetSource: "yandex"}
		tests := []struct {
			name        string
			rec         *desk.Record
			op          desk.AnswerOp
			wantApplied bool
			wantAnswers map[string]string
			wantStep    string
			wantOps     int64
		}{
			{"first op creates the record", base,
				desk.AnswerOp{Op: "o1", Step: "greet", Fields: map[string]string{"contact.name": "Ivan", "source": "google"}, At: at},
				true, map[string]string{"contact.name": "Ivan", "source": "google"}, "greet", 1},
			{"replayed op changes nothing", base,
				desk.AnswerOp{Op: "o1", Step: "other", Fields: map[string]string{"contact.name": "Petr"}, At: at.Add(time.Minute)},
				false, map[string]string{"contact.name": "Ivan", "source": "google"}, "greet", 1},
			{"empty value deletes, others merge", base,
				desk.AnswerOp{Op: "o2", Step: "needs", Fields: map[string]string{"source": "", "needs.task": "crm"}, At: at.Add(2 * time.Minute)},
				true, map[string]string{"contact.name": "Ivan", "needs.task": "crm"}, "needs", 2},
			{"metadata is never overwritten", &desk.Record{CallID: "c1", Operator: "mallory", Line: "other"},
				desk.AnswerOp{Op: "o3", Step: "needs", Fields: map[string]string{"contact.company": "Acme"}, At: at.Add(3 * time.Minute)},
				true, map[string]string{"contact.name": "Ivan", "needs.task": "crm", "contact.company": "Acme"}, "needs", 3},
			{"replay of an older op still changes nothing", base,
				desk.AnswerOp{Op: "o2", Step: "greet", Fields: map[string]string{"source": "radio"}, At: at.Add(4 * time.Minute)},
				false, map[string]string{"contact.name": "Ivan", "needs.task": "crm", "contact.company": "Acme"}, "needs", 3},
		}
		for _, tt := range tests {
			got, applied, err := s.ApplyAnswers(ctx, tt.rec, tt.op)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if applied != tt.wantApplied {
				t.Errorf("%s: applied = %v; want %v", tt.name, applied, tt.wantApplied)
			}
			if !maps.Equal(got.Answers, tt.wantAnswers) || got.Step != tt.wantStep || got.Ops != tt.wantOps {
				t.Errorf("%s: record = answers %v step %q ops %d; want %v %q %d", tt.name, got.Answers, got.Step, got.Ops, tt.wantAnswers, tt.wantStep, tt.wantOps)
			}
			if got.Operator != "alice" || got.Line != "sales" || got.ContactID != "k1" || got.Script != "default" || got.PresetSource != "yandex" || got.CallID != "c1" {
				t.Errorf("%s: metadata = %+v", tt.name, got)
			}
			// The store reads back what the script returned.
			stored, err := s.Record(ctx, "c1")
			if err != nil {
				t.Fatalf("%s: Record: %v", tt.name, err)
			}
			if !maps.Equal(stored.Answers, got.Answers) || stored.Ops != got.Ops || !stored.Updated.Equal(got.Updated) {
				t.Errorf("%s: Record = %+v; ApplyAnswers returned %+v", tt.name, stored, got)
			}
		}
		last, _ := s.Record(ctx, "c1")
		if !last.Updated.Equal(at.Add(3 * time.Minute)) {
			t.Errorf("Updated = %v; want the last applied op's time", last.Updated)
		}

		if _, err := s.Record(ctx, "nothing"); !errors.Is(err, desk.ErrNotFound) {
			t.Errorf("Record(unknown) = %v; want ErrNotFound", err)
		}
		if _, _, err := s.ApplyAnswers(ctx, &desk.Record{}, desk.AnswerOp{Op: "x"}); !errors.Is(err, desk.ErrInvalid) {
			t.Errorf("ApplyAnswers without call ID = %v; want ErrInvalid", err)
		}
	})
}

func TestApplyAnswersConcurrent(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		const n = 20
		run := func(callID string, op func(i int) desk.AnswerOp) (applied int, errs []error) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					_, ok, err := s.ApplyAnswers(ctx, &desk.Record{CallID: callID, Operator: "alice"}, op(i))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
					}
					if ok {
						applied++
					}
				})
			}
			wg.Wait()
			return applied, errs
		}

		applied, errs := run("same", func(i int) desk.AnswerOp {
			return desk.AnswerOp{Op: "one", Step: "s", Fields: map[string]string{"f": fmt.Sprint(i)}}
		})
		if len(errs) > 0 || applied != 1 {
			t.Errorf("same op from %d goroutines: applied %d times, errors %v; want once", n, applied, errs)
		}
		if r, _ := s.Record(ctx, "same"); r == nil || r.Ops != 1 || len(r.Answers) != 1 {
			t.Errorf("record after one op = %+v", r)
		}

		applied, errs = run("many", func(i int) desk.AnswerOp {
			return desk.AnswerOp{Op: fmt.Sprint("op", i), Step: "s", Fields: map[string]string{fmt.Sprint("f", i): "v"}}
		})
		if len(errs) > 0 || applied != n {
			t.Errorf("%d different ops: applied %d, errors %v", n, applied, errs)
		}
		r, err := s.Record(ctx, "many")
		if err != nil {
			t.Fatal(err)
		}
		if r.Ops != n || len(r.Answers) != n {
			t.Errorf("record after %d ops: ops %d, %d answers; want all", n, r.Ops, len(r.Answers))
		}
	})
}

func TestSaveRecord(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
		full := &desk.Record{
			CallID: "c2", Operator: "bob", ContactID: "k2", Line: "+74950000000", Script: "default", Step: "wrap",
			Answers: map[string]string{"contact.name": "Olga", "price.product": "crm"},
			Ops:     4, Updated: at, PresetSource: "yandex", SourceMismatch: true,
			Range: &desk.PriceRange{Product: "crm", Min: 100, Max: 200, Currency: "RUB"},
			Wrapup: &desk.Wrapup{Outcome: desk.OutcomeDeal, Stage: "first_call", ClosedAt: at, ClosedBy: "bob",
				InterestID: "i1", PromiseID: "p1", MeetingID: "m1", NotProspective: "too small", Forced: true},
		}
		if err := s.SaveRecord(ctx, full); err != nil {
			t.Fatal(err)
		}
		got, err := s.Record(ctx, "c2")
		if err != nil {
			t.Fatal(err)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(full)
		if string(gj) != string(wj) {
			t.Errorf("round trip:\n got %s\nwant %s", gj, wj)
		}

		// A save from a record read before an answer keeps that answer, and clears
		// flags the saved record no longer has.
		stale := *got
		if _, _, err := s.ApplyAnswers(ctx, &desk.Record{CallID: "c2"}, desk.AnswerOp{Op: "late", Step: "s9", Fields: map[string]string{"contact.email": "o@x.io"}, At: at.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		stale.SourceMismatch, stale.Range, stale.Wrapup = false, nil, nil
		if err := s.SaveRecord(ctx, &stale); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Record(ctx, "c2")
		if got.Answers["contact.email"] != "o@x.io" || got.Ops != 5 || got.Step != "s9" {
			t.Errorf("save undid a later answer: %+v", got)
		}
		if got.SourceMismatch || got.Range != nil || got.Wrapup != nil {
			t.Errorf("flags not cleared: %+v", got)
		}
		if err := s.SaveRecord(ctx, &desk.Record{}); !errors.Is(err, desk.ErrInvalid) {
			t.Errorf("SaveRecord without call ID = %v; want ErrInvalid", err)
		}
	})
}

// TestBetween checks the time indexes reports read: calls by start and meetings by
// when they were set, half-open [from, to).
func TestBetween(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := redisstore.New(b.client(), redisstore.WithPrefix(b.prefix))
			day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
			for i, h := range []int{-1, 0, 9, 23, 24} {
				c := &desk.Call{ID: fmt.Sprintf("c%d", i), State: desk.CallEnded, Started: day.Add(time.Duration(h) * time.Hour)}
				if err := st.SaveCall(ctx, c); err != nil {
					t.Fatal(err)
				}
				m := &desk.Meeting{ID: fmt.Sprintf("m%d", i), ContactID: "k", Created: c.Started, At: c.Started.Add(48 * time.Hour)}
				if err := st.SaveMeeting(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			calls, err := st.CallsBetween(ctx, day, day.Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range calls {
				ids = append(ids, c.ID)
			}
			if strings.Join(ids, ",") != "c1,c2,c3" {
				t.Errorf("calls of the day = %v, want c1,c2,c3", ids)
			}
			ms, err := st.MeetingsBetween(ctx, day, day.Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 3 || ms[0].ID != "m1" || ms[2].ID != "m3" {
				t.Errorf("meetings of the day = %+v", ms)
			}
		})
	}
}
