package desk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Board is the supervisor's live board: every operator with his presence, phones
// and today's counts, the calls waiting for an answer, today's missed calls with
// their callbacks, overdue promises and whispers not yet acknowledged. It is read
// from the store in one go for the supervisor's snapshot; the page then keeps it
// live from websocket frames.
type Board struct {
	store Store
	log   *slog.Logger
	now   func() time.Time
	loc   *time.Location
	live  func(ctx context.Context) ([]*Call, error)
}

// BoardOption configures a Board.
type BoardOption func(*Board)

// WithBoardClock replaces time.Now, for tests.
func WithBoardClock(now func() time.Time) BoardOption {
	return func(b *Board) {
		if now != nil {
			b.now = now
		}
	}
}

// WithBoardLocation sets the zone whose midnight starts "today" (default Europe/Moscow).
func WithBoardLocation(loc *time.Location) BoardOption {
	return func(b *Board) {
		if loc != nil {
			b.loc = loc
		}
	}
}

// WithBoardLiveCalls replaces store.LiveCalls as the source of the queue, e.g. with
// the switchboard's view that also holds calls routed during a Redis outage.
func WithBoardLiveCalls(f func(ctx context.Context) ([]*Call, error)) BoardOption {
	return func(b *Board) {
		if f != nil {
			b.live = f
		}
	}
}

// WithBoardLogger sets the logger.
func WithBoardLogger(l *slog.Logger) BoardOption {
	return func(b *Board) {
		if l != nil {
			b.log = l
		}
	}
}

// NewBoard returns the board on store.
func NewBoard(store Store, opts ...BoardOption) *Board {
	b := &Board{store: store, log: slog.Default(), now: time.Now, live: store.LiveCalls}
	if loc, err := time.LoadLocation("Europe/Moscow"); err == nil {
		b.loc = loc
	} else {
		b.loc = time.UTC
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// BoardState is the board at one moment.
type BoardState struct {
	At time.Time `json:"at"`
	// Today is the local midnight the day's counts start from.
	Today     time.Time        `json:"today"`
	Operators []*BoardOperator `json:"operators"`
	// Queue are the calls ringing (or hunting for a free operator), oldest first.
	Queue []*QueuedCall `json:"queue"`
	// Records are the sales records of live calls, by call ID: the step each
	// operator is on and the fields captured so far, before the next
	// script.progress frame arrives.
	Records map[string]*Record `json:"records"`
	// MissedToday are the calls missed or abandoned since midnight, newest first.
	MissedToday []*MissedCall `json:"missed_today"`
	// Overdue are the open promises past due across the team, oldest due first.
	Overdue []*Promise `json:"overdue"`
	// Whispers are the whispers not yet acknowledged, oldest first.
	Whispers []*Whisper `json:"whispers"`
}

// BoardOperator is an operator on the board: his presence (with Since, when his
// current state started), his registered phones and his day so far.
type BoardOperator struct {
	*Operator
	Phones []Binding   `json:"phones"`
	Today  OperatorDay `json:"today"`
}

// OperatorDay counts an operator's calls started since local midnight and his
// promises.
type OperatorDay struct {
	// Answered are the calls he answered.
	Answered int `json:"answered"`
	// Missed are the calls that rang him and that he did not answer (he let it
	// ring out or rejected it, or the caller hung up while it rang him), each call
	// once.
	Missed int `json:"missed"`
	// AvgTalkSeconds is the mean talk time of his answered calls that have ended,
	// rounded to the second; 0 when none.
	AvgTalkSeconds int64 `json:"avg_talk_seconds"`
	// PromisesKept are his promises kept since midnight (on time or late).
	PromisesKept int `json:"promises_kept"`
	// PromisesOverdue are his open promises past due now.
	PromisesOverdue int `json:"promises_overdue"`
}

// QueuedCall is a call waiting for an answer: who is ringing and since when.
type QueuedCall struct {
	*Call
	// Ringing is the operator being rung now; "" while the call hunts for one.
	Ringing string `json:"ringing,omitempty"`
	// RingStarted is when the current ring started (the call's start while hunting).
	RingStarted time.Time `json:"ring_started"`
}

// MissedCall is a call missed today with its callback promise (nil when none: an
// anonymous caller).
type MissedCall struct {
	Call     *Call    `json:"call"`
	Callback *Promise `json:"callback"`
}

// State reads the board now.
func (b *Board) State(ctx context.Context) (*BoardState, error) {
	now := b.now()
	y, m, d := now.In(b.loc).Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, b.loc)
	st := &BoardState{At: now, Today: midnight, Operators: []*BoardOperator{}, Queue: []*QueuedCall{},
		Records: map[string]*Record{}, MissedToday: []*MissedCall{}, Overdue: []*Promise{}, Whispers: []*Whisper{}}

	ops, err := b.store.Operators(ctx)
	if err != nil {
		return nil, fmt.Errorf("board: operators: %w", err)
	}
	calls, err := b.store.CallsBetween(ctx, midnight, midnight.AddDate(0, 0, 1))
	if err != nil {
		return nil, fmt.Errorf("board: today's calls: %w", err)
	}
	// Every promise: open ones give the overdue list and the callbacks of missed
	// calls, kept ones the day's kept counts.
	promises, err := b.store.Promises(ctx, "*", "")
	if err != nil {
		return nil, fmt.Errorf("board: promises: %w", err)
	}
	live, err := b.live(ctx)
	if err != nil {
		return nil, fmt.Errorf("board: live calls: %w", err)
	}

	days := operatorDays(calls, promises, midnight, now)
	for _, o := range ops {
		bs, err := b.store.Bindings(ctx, o.Login)
		if err != nil {
			return nil, fmt.Errorf("board: phones of %s: %w", o.Login, err)
		}
		if bs == nil {
			bs = []Binding{}
		}
		st.Operators = append(st.Operators, &BoardOperator{Operator: o, Phones: bs, Today: days[o.Login]})
	}

	for _, c := range live {
		switch c.State {
		case CallRinging:
			st.Queue = append(st.Queue, queued(c))
		case CallAnswered:
			rec, err := b.store.Record(ctx, c.ID)
			if err == nil {
				st.Records[c.ID] = rec
			} else if !errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("board: record of %s: %w", c.ID, err)
			}
		}
	}
	slices.SortStableFunc(st.Queue, func(a, b *QueuedCall) int { return a.Started.Compare(b.Started) })

	for i := len(calls) - 1; i >= 0; i-- {
		if c := calls[i]; c.State == CallMissed {
			st.MissedToday = append(st.MissedToday, &MissedCall{Call: c, Callback: callbackOf(c, promises)})
		}
	}
	for _, p := range promises {
		if p.Overdue(now) {
			st.Overdue = append(st.Overdue, p)
		}
	}
	slices.SortStableFunc(st.Overdue, func(a, b *Promise) int { return a.Due.Compare(b.Due) })

	ws, err := b.store.Whispers(ctx, "", true)
	if err != nil {
		return nil, fmt.Errorf("board: whispers: %w", err)
	}
	if ws != nil {
		st.Whispers = ws
	}
	return st, nil
}

// operatorDays counts each operator's day: calls started since midnight and
// promises kept since midnight or overdue at now.
func operatorDays(calls []*Call, promises []*Promise, midnight, now time.Time) map[string]OperatorDay {
	days := map[string]OperatorDay{}
	talk := map[string][2]int64{} // login -> total seconds, ended answered calls
	for _, c := range calls {
		if c.Talked() && c.Operator != "" {
			d := days[c.Operator]
			d.Answered++
			days[c.Operator] = d
			if c.Ended != nil {
				t := talk[c.Operator]
				t[0] += int64(max(c.Ended.Sub(*c.Answered), 0) / time.Millisecond)
				t[1]++
				talk[c.Operator] = t
			}
		}
		var missedBy []string
		for _, a := range c.Attempts {
			if a.Operator == "" || a.Outcome == "" || a.Outcome == "answered" || slices.Contains(missedBy, a.Operator) {
				continue
			}
			if c.Answered != nil && c.Operator == a.Operator {
				continue // he answered it after all
			}
			missedBy = append(missedBy, a.Operator)
			d := days[a.Operator]
			d.Missed++
			days[a.Operator] = d
		}
	}
	for login, t := range talk {
		d := days[login]
		d.AvgTalkSeconds = (t[0]/t[1] + 500) / 1000
		days[login] = d
	}
	for _, p := range promises {
		if p.Owner == "" {
			continue
		}
		switch {
		case p.State == PromiseKept && p.KeptAt != nil && !p.KeptAt.Before(midnight):
			d := days[p.Owner]
			d.PromisesKept++
			days[p.Owner] = d
		case p.Overdue(now):
			d := days[p.Owner]
			d.PromisesOverdue++
			days[p.Owner] = d
		}
	}
	return days
}

// queued is the queue entry of a ringing call: the operator of its open attempt.
func queued(c *Call) *QueuedCall {
	q := &QueuedCall{Call: c, RingStarted: c.Started}
	if n := len(c.Attempts); n > 0 && c.Attempts[n-1].Outcome == "" {
		q.Ringing, q.RingStarted = c.Attempts[n-1].Operator, c.Attempts[n-1].Started
	}
	return q
}

// callbackOf finds the callback promise of a missed call: the one made for it
// (Sales.CallMissed makes one per missed call), else, when the caller rang again
// while his callback was open and got no second one, the callback for his number
// that was open when the call came: made before it and not kept before it.
func callbackOf(c *Call, promises []*Promise) *Promise {
	var best *Promise
	for _, p := range promises {
		if p.Kind != "callback" {
			continue
		}
		if p.CallID == c.ID {
			return p
		}
		if c.From == "" || p.Phone != c.From || p.Created.After(c.Started) ||
			(p.KeptAt != nil && p.KeptAt.Before(c.Started)) {
			continue
		}
		if best == nil || p.Created.After(best.Created) {
			best = p
		}
	}
	return best
}
