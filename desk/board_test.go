package desk_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
)

// boardFixture writes a known day into a fresh store: the clock stands at 14:00
// Moscow on 10 January 2025.
type boardFixture struct {
	store *redisstore.Store
	clock *clock
	msk   *time.Location
	ids   map[string]string // name -> call ID
}

func newBoardFixture(t *testing.T) *boardFixture {
	t.Helper()
	msk, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	rdb, prefix := redistest.Client(t)
	f := &boardFixture{clock: &clock{t: time.Date(2025, 1, 10, 14, 0, 0, 0, msk)}, msk: msk, ids: map[string]string{}}
	f.store = redisstore.New(rdb, redisstore.WithPrefix(prefix), redisstore.WithClock(f.clock.Now))
	t.Cleanup(func() { _ = f.store.Close() })
	ctx := context.Background()
	for _, u := range []*desk.User{maria, oleg, sveta, {Login: "ivan", Name: "Иван", Role: desk.RoleOperator}} {
		if err := f.store.CreateUser(ctx, &desk.User{Login: u.Login, Name: u.Name, Role: u.Role}); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	now := f.clock.Now()
	must(f.store.PutBindings(ctx, "maria", []desk.Binding{{Login: "maria", Contact: "sip:maria@10.0.0.5:5060",
		Transport: "udp", Expires: now.Add(time.Hour), UserAgent: "Linphone"}}))
	must(f.store.PutBindings(ctx, "oleg", []desk.Binding{{Login: "oleg", Contact: "sip:oleg@10.0.0.6:5070;transport=tcp",
		Transport: "tcp", Expires: now.Add(30 * time.Minute)}}))
	must(f.store.PutBindings(ctx, "ivan", []desk.Binding{{Login: "ivan", Contact: "sip:ivan@10.0.0.7",
		Transport: "udp", Expires: now.Add(time.Hour)}}))

	at := func(day, h, m int) time.Time { return time.Date(2025, 1, day, h, m, 0, 0, msk) }
	ptr := func(t time.Time) *time.Time { return &t }
	att := func(op string, start time.Time, outcome string) desk.Attempt {
		return desk.Attempt{Operator: op, Started: start, Outcome: outcome}
	}
	answered := func(name, op string, start time.Time, talk time.Duration, attempts ...desk.Attempt) {
		c := &desk.Call{ID: name, From: "+79160000001", Line: "sales", Operator: op, State: desk.CallEnded,
			Started: start, Answered: ptr(start.Add(10 * time.Second)), Ended: ptr(start.Add(10*time.Second + talk)),
			Attempts: append(attempts, att(op, start.Add(time.Second), "answered"))}
		if talk < 0 { // still talking
			c.State, c.Ended = desk.CallAnswered, nil
		}
		must(f.store.SaveCall(ctx, c))
	}
	missed := func(name, from, reason string, start time.Time, attempts ...desk.Attempt) *desk.Call {
		c := &desk.Call{ID: name, From: from, Line: "sales", State: desk.CallMissed, Started: start,
			Ended: ptr(start.Add(20 * time.Second)), Reason: reason, Attempts: attempts}
		if len(attempts) > 0 {
			c.Operator = attempts[len(attempts)-1].Operator
		}
		must(f.store.SaveCall(ctx, c))
		return c
	}
	// Yesterday's late call does not count today.
	answered("yesterday", "maria", at(9, 23, 30), 10*time.Minute)
	// Midnight sharp counts.
	answered("midnight", "maria", at(10, 0, 0), 60*time.Second)
	answered("morning", "maria", at(10, 9, 0), 120*time.Second)
	// Maria let it ring out; Oleg answered it.
	answered("hunted", "oleg", at(10, 10, 0), 300*time.Second, att("maria", at(10, 10, 0), "timeout"))
	// The caller hung up while it rang Oleg: missed, with its own callback.
	missed("abandoned", "+79161112233", "cancelled", at(10, 11, 0), att("oleg", at(10, 11, 0), "cancelled"))
	must(f.store.SavePromise(ctx, &desk.Promise{ID: "cb-abandoned", Phone: "+79161112233", CallID: "abandoned",
		Kind: "callback", What: "call back", Due: at(10, 11, 30), Created: at(10, 11, 0).Add(20 * time.Second)}))
	// He rang again and nobody was free: no second callback, the first one stands.
	missed("again", "+79161112233", "no operator", at(10, 12, 0))
	// An anonymous caller gets no callback.
	missed("anonymous", "anonymous", "no operator", at(10, 12, 30))
	// Oleg is on a call now.
	answered("live-talk", "oleg", at(10, 13, 50), -1)
	must(f.store.SaveRecord(ctx, &desk.Record{CallID: "live-talk", Operator: "oleg", Step: "need",
		Answers: map[string]string{"interest.type": "deal"}}))
	// A call hunting: Oleg did not answer, nobody rings yet.
	must(f.store.SaveCall(ctx, &desk.Call{ID: "hunting", From: "+79165550000", Line: "sales", State: desk.CallRinging,
		Started: at(10, 13, 58), Attempts: []desk.Attempt{att("oleg", at(10, 13, 58), "timeout")}, Operator: "oleg"}))
	// Maria's phone is ringing now.
	must(f.store.SaveCall(ctx, &desk.Call{ID: "ringing", From: "+79164440000", Line: "expo", State: desk.CallRinging,
		Operator: "maria", Started: at(10, 13, 59), Attempts: []desk.Attempt{att("maria", at(10, 13, 59).Add(time.Second), "")}}))

	f.clock.Set(at(10, 13, 50).Add(10 * time.Second))
	must(f.store.Claim(ctx, "oleg", "live-talk", desk.StatusRinging, time.Hour))
	must(f.store.UpdateClaim(ctx, "oleg", "live-talk", desk.StatusTalking, time.Hour))
	f.clock.Set(at(10, 13, 59).Add(time.Second))
	must(f.store.Claim(ctx, "maria", "ringing", desk.StatusRinging, time.Hour))
	f.clock.Set(at(10, 13, 0))
	must(f.store.SetAway(ctx, "ivan", true))
	f.clock.Set(at(10, 14, 0))

	// Promises: kept today, kept yesterday, overdue, open.
	kept := func(id, owner string, due, keptAt time.Time) {
		must(f.store.SavePromise(ctx, &desk.Promise{ID: id, Owner: owner, Kind: "promise", What: "offer", Due: due,
			Created: due.Add(-2 * time.Hour), State: desk.PromiseKept, KeptAt: ptr(keptAt)}))
	}
	kept("maria-on-time", "maria", at(10, 10, 0), at(10, 9, 30))
	kept("maria-yesterday", "maria", at(9, 18, 0), at(9, 17, 0))
	kept("oleg-late", "oleg", at(10, 9, 0), at(10, 12, 0))
	must(f.store.SavePromise(ctx, &desk.Promise{ID: "maria-overdue", Owner: "maria", Kind: "promise", What: "stock",
		Due: at(10, 13, 0), Created: at(10, 11, 0)}))
	must(f.store.SavePromise(ctx, &desk.Promise{ID: "oleg-open", Owner: "oleg", Kind: "promise", What: "price",
		Due: at(10, 15, 0), Created: at(10, 12, 0)}))

	// Whispers: one to Maria still pinned, one Oleg acknowledged.
	must(f.store.SaveWhisper(ctx, &desk.Whisper{ID: "w1", Operator: "maria", By: "sveta", Text: "Предложи скидку", At: at(10, 13, 55)}))
	must(f.store.SaveWhisper(ctx, &desk.Whisper{ID: "w2", Operator: "oleg", By: "sveta", Text: "ok", At: at(10, 13, 0),
		AckedAt: ptr(at(10, 13, 1))}))
	return f
}

func TestBoardState(t *testing.T) {
	f := newBoardFixture(t)
	msk := f.msk
	at := func(h, m, s int) time.Time { return time.Date(2025, 1, 10, h, m, s, 0, msk) }
	tests := []struct {
		name string
		loc  *time.Location
		// want per operator
		today map[string]desk.OperatorDay
		// missed calls, newest first
		missed []string
	}{
		{
			name: "Moscow day",
			loc:  msk,
			today: map[string]desk.OperatorDay{
				"maria": {Answered: 2, Missed: 1, AvgTalkSeconds: 90, PromisesKept: 1, PromisesOverdue: 1},
				"oleg":  {Answered: 2, Missed: 2, AvgTalkSeconds: 300, PromisesKept: 1},
				"ivan":  {},
			},
			missed: []string{"anonymous", "again", "abandoned"},
		},
		{
			// Midnight UTC is 03:00 in Moscow: the call at Moscow midnight is yesterday's.
			name: "UTC day",
			loc:  time.UTC,
			today: map[string]desk.OperatorDay{
				"maria": {Answered: 1, Missed: 1, AvgTalkSeconds: 120, PromisesKept: 1, PromisesOverdue: 1},
				"oleg":  {Answered: 2, Missed: 2, AvgTalkSeconds: 300, PromisesKept: 1},
				"ivan":  {},
			},
			missed: []string{"anonymous", "again", "abandoned"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := desk.NewBoard(f.store, desk.WithBoardClock(f.clock.Now), desk.WithBoardLocation(tt.loc))
			st, err := b.State(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var logins []string
			for _, o := range st.Operators {
				logins = append(logins, o.Login)
				if got, want := o.Today, tt.today[o.Login]; got != want {
					t.Errorf("%s today = %+v; want %+v", o.Login, got, want)
				}
			}
			if !slices.Equal(logins, []string{"ivan", "maria", "oleg"}) {
				t.Errorf("operators = %v; want ivan, maria, oleg (no supervisor)", logins)
			}
			var missed []string
			for _, m := range st.MissedToday {
				missed = append(missed, m.Call.ID)
			}
			if !slices.Equal(missed, tt.missed) {
				t.Errorf("missed today = %v; want %v", missed, tt.missed)
			}
		})
	}

	// The rest does not depend on the zone.
	st, err := desk.NewBoard(f.store, desk.WithBoardClock(f.clock.Now), desk.WithBoardLocation(msk)).State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Today.Equal(at(0, 0, 0)) {
		t.Errorf("today starts %v; want Moscow midnight", st.Today)
	}
	ops := map[string]*desk.BoardOperator{}
	for _, o := range st.Operators {
		ops[o.Login] = o
	}
	presence := []struct {
		login     string
		status    desk.Status
		since     time.Time
		call      string
		transport string
	}{
		{"maria", desk.StatusRinging, at(13, 59, 1), "ringing", "udp"},
		{"oleg", desk.StatusTalking, at(13, 50, 10), "live-talk", "tcp"},
		{"ivan", desk.StatusAway, at(13, 0, 0), "", "udp"},
	}
	for _, p := range presence {
		o := ops[p.login]
		if o.Status != p.status || !o.Since.Equal(p.since) || o.CallID != p.call {
			t.Errorf("%s: %s since %v on %q; want %s since %v on %q", p.login, o.Status, o.Since, o.CallID, p.status, p.since, p.call)
		}
		if len(o.Phones) != 1 || o.Phones[0].Transport != p.transport || o.Phones[0].Expires.IsZero() {
			t.Errorf("%s phones = %+v; want one %s binding with its expiry", p.login, o.Phones, p.transport)
		}
	}

	// The queue: the hunting call (nobody rings it) and Maria's, oldest first.
	if len(st.Queue) != 2 {
		t.Fatalf("queue = %d calls; want 2", len(st.Queue))
	}
	if q := st.Queue[0]; q.ID != "hunting" || q.Ringing != "" || !q.RingStarted.Equal(at(13, 58, 0)) || len(q.Attempts) != 1 {
		t.Errorf("queue[0] = %s ringing %q since %v; want hunting, nobody, since 13:58", q.ID, q.Ringing, q.RingStarted)
	}
	if q := st.Queue[1]; q.ID != "ringing" || q.Ringing != "maria" || !q.RingStarted.Equal(at(13, 59, 1)) {
		t.Errorf("queue[1] = %s ringing %q since %v; want ringing, maria, since 13:59:01", q.ID, q.Ringing, q.RingStarted)
	}
	if rec := st.Records["live-talk"]; rec == nil || rec.Step != "need" || rec.Answers["interest.type"] != "deal" {
		t.Errorf("records = %v; want the live call's step and answers", st.Records)
	}

	// Callbacks: its own, the one still open for a repeat caller, none for anonymous.
	cb := map[string]string{}
	for _, m := range st.MissedToday {
		if m.Callback != nil {
			cb[m.Call.ID] = m.Callback.ID
		} else {
			cb[m.Call.ID] = ""
		}
	}
	if want := map[string]string{"abandoned": "cb-abandoned", "again": "cb-abandoned", "anonymous": ""}; !mapsEqual(cb, want) {
		t.Errorf("callbacks = %v; want %v", cb, want)
	}

	var overdue []string
	for _, p := range st.Overdue {
		overdue = append(overdue, p.ID)
	}
	if !slices.Equal(overdue, []string{"cb-abandoned", "maria-overdue"}) {
		t.Errorf("overdue = %v; want cb-abandoned, maria-overdue", overdue)
	}
	if len(st.Whispers) != 1 || st.Whispers[0].ID != "w1" {
		t.Errorf("whispers = %+v; want w1 only (w2 was acknowledged)", st.Whispers)
	}

	// The JSON the pages read.
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Operators []map[string]any `json:"operators"`
		Queue     []map[string]any `json:"queue"`
		Missed    []map[string]any `json:"missed_today"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"login", "name", "status", "since", "phones", "today", "call_id"} {
		if _, ok := doc.Operators[1][k]; !ok {
			t.Errorf("operator JSON lacks %q: %v", k, doc.Operators[1])
		}
	}
	if today, _ := doc.Operators[1]["today"].(map[string]any); today["avg_talk_seconds"] != float64(90) || today["promises_overdue"] != float64(1) {
		t.Errorf("maria's today JSON = %v", today)
	}
	for _, k := range []string{"id", "attempts", "ringing", "ring_started", "from"} {
		if _, ok := doc.Queue[1][k]; !ok {
			t.Errorf("queue JSON lacks %q: %v", k, doc.Queue[1])
		}
	}
	if _, ok := doc.Missed[0]["callback"]; !ok || doc.Missed[0]["callback"] != nil {
		t.Errorf("anonymous missed call JSON = %v; want callback null", doc.Missed[0])
	}
}

// An empty desk gives empty lists, never null, so the page need not guard.
func TestBoardEmpty(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	s := redisstore.New(rdb, redisstore.WithPrefix(prefix))
	t.Cleanup(func() { _ = s.Close() })
	st, err := desk.NewBoard(s).State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(st)
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	for _, k := range []string{"operators", "queue", "missed_today", "overdue", "whispers", "records"} {
		if doc[k] == nil {
			t.Errorf("%s is null in %s", k, raw)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
