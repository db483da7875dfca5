package desk_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
)

// saveCall stores a call started at start (relative to the env's clock) in state;
// an ended or answered call was answered 10 s after it started.
func (e *supEnv) saveCall(id string, start time.Duration, state desk.CallState, recorded bool) {
	e.t.Helper()
	started := e.clock.Now().Add(start)
	c := &desk.Call{ID: id, SIPCallID: "sip-" + id, From: "+79160000001", To: "sales", Line: "sales", Operator: "maria",
		State: state, Started: started, Media: recorded, Recorded: recorded}
	if state == desk.CallAnswered || state == desk.CallEnded {
		a := started.Add(10 * time.Second)
		c.Answered = &a
	}
	if state == desk.CallEnded || state == desk.CallMissed {
		end := started.Add(time.Minute)
		c.Ended = &end
	}
	if err := e.store.SaveCall(context.Background(), c); err != nil {
		e.t.Fatal(err)
	}
}

// TestRecentCalls: the calls of the last hours that are over, newest first;
// live calls are left out, an unanswered call on a recording line is not
// recorded, and only supervisors and admins may list them.
func TestRecentCalls(t *testing.T) {
	e := newSupEnv(t)
	ctx := context.Background()
	e.saveCall("ringing", -time.Minute, desk.CallRinging, true)
	e.saveCall("talking", -2*time.Minute, desk.CallAnswered, true)
	e.saveCall("skewed", 30*time.Second, desk.CallEnded, false) // another node's clock runs ahead
	e.saveCall("recorded", -2*time.Hour, desk.CallEnded, true)
	e.saveCall("missed", -5*time.Hour, desk.CallMissed, true)
	e.saveCall("yesterday", -30*time.Hour, desk.CallEnded, true)
	e.saveCall("last-week", -167*time.Hour, desk.CallEnded, false)
	e.saveCall("too-old", -200*time.Hour, desk.CallEnded, true)

	for _, tc := range []struct {
		name    string
		u       *desk.User
		hours   int
		want    []string // ids, newest first; each ":rec" when recorded
		wantErr error
	}{
		{"a day", sveta, 24, []string{"skewed", "recorded:rec", "missed"}, nil},
		{"two days", supAdmin, 48, []string{"skewed", "recorded:rec", "missed", "yesterday:rec"}, nil},
		{"a week", sveta, desk.MaxRecentHours, []string{"skewed", "recorded:rec", "missed", "yesterday:rec", "last-week"}, nil},
		{"an hour", sveta, 1, []string{"skewed"}, nil},
		{"an operator", maria, 24, nil, desk.ErrForbidden},
		{"nobody", nil, 24, nil, desk.ErrForbidden},
		{"no hours", sveta, 0, nil, desk.ErrInvalid},
		{"negative", sveta, -3, nil, desk.ErrInvalid},
		{"more than a week", sveta, desk.MaxRecentHours + 1, nil, desk.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, err := e.sup.RecentCalls(ctx, tc.u, tc.hours)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v; want %v", err, tc.wantErr)
				}
				var fe *desk.FieldError
				if errors.Is(tc.wantErr, desk.ErrInvalid) && (!errors.As(err, &fe) || fe.Field != "hours") {
					t.Errorf("err = %v; want a FieldError on hours", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range calls {
				id := c.ID
				if c.Recorded {
					id += ":rec"
				}
				got = append(got, id)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("recent calls %q; want %q", got, tc.want)
			}
		})
	}
}

// TestRecentCallsLimit: a busy desk returns its newest MaxRecentCalls, in order,
// across the windows the store is read in.
func TestRecentCallsLimit(t *testing.T) {
	e := newSupEnv(t)
	const n = desk.MaxRecentCalls + 30
	for i := range n {
		// One call every 4 minutes: the newest 100 span about 6.6 hours.
		e.saveCall(fmt.Sprintf("c%03d", i), -time.Duration(i)*4*time.Minute-time.Second, desk.CallEnded, i%2 == 0)
	}
	calls, err := e.sup.RecentCalls(context.Background(), sveta, desk.DefaultRecentHours)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != desk.MaxRecentCalls {
		t.Fatalf("%d calls; want %d", len(calls), desk.MaxRecentCalls)
	}
	for i, c := range calls {
		if want := fmt.Sprintf("c%03d", i); c.ID != want || c.Recorded != (i%2 == 0) {
			t.Fatalf("call %d is %s (recorded %v); want %s, newest first", i, c.ID, c.Recorded, want)
		}
	}
}

// TestHistoryMarksRecordings: the contact's history says which past calls were
// recorded (answered on a recording line), so the card can offer them to staff;
// a missed call on a recording line has no recording.
func TestHistoryMarksRecordings(t *testing.T) {
	e := newSalesEnv(t)
	ctx := context.Background()
	c1 := e.call("r1", "+79161234567", "")
	c1.Media, c1.Recorded = true, true
	if err := e.store.SaveCall(ctx, c1); err != nil {
		t.Fatal(err)
	}
	e.complete("r1")
	res, err := e.sales.Wrapup(ctx, maria, "r1", desk.WrapupRequest{Outcome: desk.OutcomeNotProspective})
	if err != nil {
		t.Fatal(err)
	}
	k := res.Contact

	e.clock.Add(time.Hour)
	e.call("r2", "+79161234567", k.ID) // a proxy-mode line: nothing recorded
	e.mustAnswer(maria, "r2", "source", "source", "web_search")
	if _, err := e.sales.Wrapup(ctx, maria, "r2", desk.WrapupRequest{Outcome: desk.OutcomeNotProspective}); err != nil {
		t.Fatal(err)
	}

	e.clock.Add(time.Hour)
	missed := &desk.Call{ID: "r3", SIPCallID: "sip-r3", From: "+79161234567", To: "sales", Line: "sales", ContactID: k.ID,
		State: desk.CallMissed, Started: e.clock.Now(), Media: true, Recorded: true}
	if err := e.store.SaveCall(ctx, missed); err != nil {
		t.Fatal(err)
	}
	e.sales.CallMissed(ctx, missed)

	card, err := e.sales.Card(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range card.Calls {
		got = append(got, fmt.Sprintf("%s:%s:%v", s.CallID, s.Outcome, s.Recorded))
	}
	if want := []string{"r3:missed:false", "r2:not_prospective:false", "r1:not_prospective:true"}; !slices.Equal(got, want) {
		t.Errorf("history %q; want %q", got, want)
	}
}
