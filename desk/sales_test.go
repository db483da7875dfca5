package desk_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
	"github.com/calldesk/desk/desk/yamlfile"
	"github.com/calldesk/desk/scripts"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// notes is a desk.Notifier that keeps what it heard.
type notes struct {
	mu    sync.Mutex
	kinds []string
	last  any
}

func (n *notes) Notify(kind string, payload any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.kinds = append(n.kinds, kind)
	n.last = payload
}

var (
	maria = &desk.User{Login: "maria", Name: "Мария", Role: desk.RoleOperator}
	oleg  = &desk.User{Login: "oleg", Name: "Олег", Role: desk.RoleOperator}
	sveta = &desk.User{Login: "sveta", Name: "Света", Role: desk.RoleSupervisor}
)

// salesEnv is the sales service on the real Redis under a private prefix, with the
// shipped script, the demo configuration and a fake clock in Moscow.
type salesEnv struct {
	t     *testing.T
	store *redisstore.Store
	pub   *recorder
	sales *desk.Sales
	clock *clock
	loc   *time.Location
	hook  *notes
	cfg   *yamlfile.Config
}

func newSalesEnv(t *testing.T, opts ...desk.SalesOption) *salesEnv {
	t.Helper()
	cfg := yamlfile.DefaultConfig()
	set, err := yamlfile.LoadScripts(scripts.FS)
	if err != nil {
		t.Fatal(err)
	}
	prefix := redistest.Prefix()
	admin := newRealClient(t)
	t.Cleanup(func() { redistest.DeletePrefix(context.Background(), admin, prefix) })
	e := &salesEnv{t: t, pub: &recorder{}, loc: cfg.Location, hook: &notes{}, cfg: cfg,
		clock: &clock{t: time.Date(2025, 1, 10, 14, 0, 0, 0, cfg.Location)}}
	e.store = redisstore.New(newRealClient(t), redisstore.WithPrefix(prefix), redisstore.WithClock(e.clock.Now))
	t.Cleanup(func() { _ = e.store.Close() })
	base := []desk.SalesOption{
		desk.WithSalesClock(e.clock.Now), desk.WithSalesScripts(cfg.Scripts(set)),
		desk.WithSalesLines(cfg.Lines, cfg.DefaultScript), desk.WithPriceList(cfg.DeskPrices()),
		desk.WithLocation(cfg.Location), desk.WithNotifier(e.hook),
	}
	e.sales = desk.NewSales(e.store, e.pub, append(base, opts...)...)
	ctx := context.Background()
	for _, u := range []*desk.User{maria, oleg, sveta} {
		cp := *u
		if err := e.store.CreateUser(ctx, &cp); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// call stores an answered call of maria's from caller on the "sales" line (preset
// source web_search) that lasted 90 s and has ended, with her claim held as in talk.
func (e *salesEnv) call(id, caller, contactID string) *desk.Call {
	e.t.Helper()
	return e.callFor("maria", id, caller, contactID)
}

func (e *salesEnv) callFor(op, id, caller, contactID string) *desk.Call {
	e.t.Helper()
	ans := e.clock.Now().Add(-2 * time.Minute)
	end := ans.Add(90 * time.Second)
	c := &desk.Call{ID: id, SIPCallID: "sip-" + id, From: caller, To: "sales", Line: "sales", Script: "default",
		Operator: op, State: desk.CallEnded, ContactID: contactID, Started: ans.Add(-5 * time.Second),
		Answered: &ans, Ended: &end}
	ctx := context.Background()
	if err := e.store.SaveCall(ctx, c); err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.Claim(ctx, op, id, desk.StatusTalking, time.Hour); err != nil {
		e.t.Fatal(err)
	}
	e.sales.CallEnded(ctx, c)
	return c
}

var opSeq int

func (e *salesEnv) answer(u *desk.User, callID, step string, kv ...string) (*desk.Record, error) {
	e.t.Helper()
	opSeq++
	f := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i]] = kv[i+1]
	}
	return e.sales.Answer(context.Background(), u, callID, desk.AnswerOp{Op: e.t.Name() + "-" + string(rune('a'+opSeq%26)) + time.Now().Format("150405.000000000"), Step: step, Fields: f})
}

func (e *salesEnv) mustAnswer(u *desk.User, callID, step string, kv ...string) *desk.Record {
	e.t.Helper()
	rec, err := e.answer(u, callID, step, kv...)
	if err != nil {
		e.t.Fatalf("answer %s %v: %v", step, kv, err)
	}
	return rec
}

// complete answers what a wrap-up needs.
func (e *salesEnv) complete(callID string) {
	e.t.Helper()
	e.mustAnswer(maria, callID, "contact", "name", "Анна Смирнова", "company", "ООО Ромашка")
	e.mustAnswer(maria, callID, "source", "source", "web_search")
}

// status is the operator's status, "free" when no call holds him (his page and
// phone are not open in these tests, so the store says offline).
func (e *salesEnv) status(login string) desk.Status {
	e.t.Helper()
	ops, err := e.store.Operators(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, o := range ops {
		if o.Login == login {
			if o.CallID == "" {
				return "free"
			}
			return o.Status
		}
	}
	e.t.Fatalf("no operator %s", login)
	return ""
}

func TestAnswerIdempotent(t *testing.T) {
	e := newSalesEnv(t)
	e.call("c1", "+79161234567", "")
	ctx := context.Background()
	op := desk.AnswerOp{Op: "op-1", Step: "contact", Fields: map[string]string{"name": " Анна ", "callback_phone": "8 916 000-00-02"}}
	rec, err := e.sales.Answer(ctx, maria, "c1", op)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Answers["contact.name"] != "Анна" || rec.Answers["contact.callback_phone"] != "+79160000002" || rec.Ops != 1 {
		t.Fatalf("record = %+v", rec)
	}
	if rec.Operator != "maria" || rec.Line != "sales" || rec.Script != "default" || rec.PresetSource != "web_search" || rec.Step != "contact" {
		t.Errorf("record metadata = %+v", rec)
	}
	// The page resends op-1 after a drop, even with other content: nothing changes.
	op.Fields = map[string]string{"name": "Someone else"}
	again, err := e.sales.Answer(ctx, maria, "c1", op)
	if err != nil {
		t.Fatal(err)
	}
	if again.Answers["contact.name"] != "Анна" || again.Ops != 1 {
		t.Errorf("replay changed the record: %+v", again)
	}
	if n := len(e.pub.of(desk.EventScriptProgress)); n != 1 {
		t.Errorf("%d script.progress; want 1 (none for the replay)", n)
	}
	ev := e.pub.of(desk.EventScriptProgress)[0]
	if p := ev.Payload.(desk.Progress); p.CallID != "c1" || p.Record.Answers["contact.name"] != "Анна" || !slices.Equal(ev.Operators, []string{"maria"}) {
		t.Errorf("progress = %+v to %v", p, ev.Operators)
	}
	// An empty value clears an answer.
	rec = e.mustAnswer(maria, "c1", "contact", "callback_phone", "")
	if _, ok := rec.Answers["contact.callback_phone"]; ok || rec.Ops != 2 {
		t.Errorf("cleared answer still there: %+v", rec)
	}
	got, err := e.sales.Record(ctx, maria, "c1")
	if err != nil || got.Answers["contact.name"] != "Анна" {
		t.Errorf("Record = %+v, %v", got, err)
	}
	e.callFor("oleg", "c2", "+79161234567", "")
	if empty, err := e.sales.Record(ctx, oleg, "c2"); err != nil || len(empty.Answers) != 0 || empty.CallID != "c2" {
		t.Errorf("Record of a call without answers = %+v, %v", empty, err)
	}
}

func TestAnswerRefused(t *testing.T) {
	e := newSalesEnv(t)
	e.call("c1", "+79161234567", "")
	tests := []struct {
		name     string
		u        *desk.User
		call     string
		step     string
		kv       []string
		field    string // want a FieldError on it
		sentinel error
	}{
		{"bad e-mail", maria, "c1", "company_details", []string{"email", "anna@"}, "email", desk.ErrInvalid},
		{"bad phone", maria, "c1", "company_details", []string{"mobile", "12"}, "mobile", desk.ErrInvalid},
		{"bad url", maria, "c1", "company_details", []string{"website", "not a site"}, "website", desk.ErrInvalid},
		{"bad number", maria, "c1", "need_product", []string{"quantity", "ten"}, "quantity", desk.ErrInvalid},
		{"bad choice", maria, "c1", "company_details", []string{"company_size", "7"}, "company_size", desk.ErrInvalid},
		{"source not configured", maria, "c1", "source", []string{"source", "radio"}, "source", desk.ErrInvalid},
		{"product not in the price list", maria, "c1", "price", []string{"product", "laser"}, "product", desk.ErrInvalid},
		{"bad datetime", maria, "c1", "promise", []string{"due", "soon"}, "due", desk.ErrInvalid},
		{"bad option", maria, "c1", "need", []string{"option", "maybe"}, "option", desk.ErrInvalid},
		{"unknown step", maria, "c1", "nope", []string{"x", "y"}, "step", desk.ErrInvalid},
		{"unknown field", maria, "c1", "contact", []string{"age", "40"}, "age", desk.ErrInvalid},
		{"another operator's call", oleg, "c1", "contact", []string{"name", "x"}, "", desk.ErrForbidden},
		{"unknown call", maria, "nope", "contact", []string{"name", "x"}, "", desk.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.answer(tt.u, tt.call, tt.step, tt.kv...)
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v; want %v", err, tt.sentinel)
			}
			var fe *desk.FieldError
			if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
				t.Fatalf("err = %#v; want a FieldError on %s", err, tt.field)
			}
		})
	}
	if _, err := e.sales.Answer(context.Background(), maria, "c1", desk.AnswerOp{Step: "contact", Fields: map[string]string{"name": "x"}}); !errors.Is(err, desk.ErrInvalid) {
		t.Errorf("an op without id: %v", err)
	}
	if rec, _ := e.sales.Record(context.Background(), maria, "c1"); len(rec.Answers) != 0 {
		t.Errorf("refused answers were stored: %v", rec.Answers)
	}
	// A supervisor may fill in an operator's record.
	if _, err := e.answer(sveta, "c1", "contact", "name", "Анна"); err != nil {
		t.Errorf("supervisor answer: %v", err)
	}
}

func TestQuickDeadlines(t *testing.T) {
	tests := []struct {
		name  string
		now   time.Time // Moscow
		quick string
		want  string
	}{
		{"+2h", time.Date(2025, 1, 10, 14, 5, 0, 0, time.UTC), "+2h", "2025-01-10T19:05:00+03:00"},
		{"+1h across midnight", time.Date(2025, 1, 10, 20, 30, 0, 0, time.UTC), "+1h", "2025-01-11T00:30:00+03:00"},
		{"tomorrow in the evening", time.Date(2025, 1, 10, 20, 30, 0, 0, time.UTC), "tomorrow 10:00", "2025-01-11T10:00:00+03:00"},
		// 00:30 in Moscow on the 11th is 21:30 UTC on the 10th: tomorrow is the 12th.
		{"tomorrow after midnight", time.Date(2025, 1, 10, 21, 30, 0, 0, time.UTC), "tomorrow 10:00", "2025-01-12T10:00:00+03:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSalesEnv(t)
			e.clock.Set(tt.now)
			e.call("c1", "+79161234567", "")
			rec := e.mustAnswer(maria, "c1", "promise", "what", "Проверить наличие", "due", tt.quick)
			if got := rec.Answers["promise.due"]; got != tt.want {
				t.Fatalf("promise.due = %s; want %s", got, tt.want)
			}
			// Stored as an absolute time: the clock moving on does not move the deadline.
			e.clock.Add(3 * time.Hour)
			if rec, _ := e.sales.Record(context.Background(), maria, "c1"); rec.Answers["promise.due"] != tt.want {
				t.Errorf("deadline moved to %s", rec.Answers["promise.due"])
			}
		})
	}
}

func TestSourceMismatchRangeAndOptions(t *testing.T) {
	e := newSalesEnv(t)
	e.call("c1", "+79161234567", "")
	rec := e.mustAnswer(maria, "c1", "source", "source", "web_search")
	if rec.SourceMismatch {
		t.Error("the preset source flagged as a mismatch")
	}
	rec = e.mustAnswer(maria, "c1", "source", "source", "exhibition")
	if !rec.SourceMismatch {
		t.Error("a source other than the line's preset is not flagged")
	}
	rec = e.mustAnswer(maria, "c1", "price", "product", "scanner")
	if rec.Range == nil || rec.Range.Product != "scanner" || rec.Range.Min != 18000 || rec.Range.Max != 42000 || rec.Range.Currency != "RUB" {
		t.Errorf("range = %+v; want the scanner's", rec.Range)
	}
	rec = e.mustAnswer(maria, "c1", "need", "option", "product")
	if rec.Answers["need"] != "product" || rec.Answers["interest.type"] != "deal" {
		t.Errorf("option product: %v", rec.Answers)
	}
	rec = e.mustAnswer(maria, "c1", "need", "option", "other") // sets nothing: the earlier type goes
	if rec.Answers["need"] != "other" || rec.Answers["interest.type"] != "" {
		t.Errorf("option other: %v", rec.Answers)
	}
	rec = e.mustAnswer(maria, "c1", "need", "option", "task")
	if rec.Answers["interest.type"] != "interest" {
		t.Errorf("option task: %v", rec.Answers)
	}
	// The flags survive the wrap-up in the stored record.
	e.mustAnswer(maria, "c1", "contact", "name", "Анна", "company", "Ромашка")
	if _, err := e.sales.Wrapup(context.Background(), maria, "c1", desk.WrapupRequest{Outcome: "interest"}); err != nil {
		t.Fatal(err)
	}
	stored, err := e.store.Record(context.Background(), "c1")
	if err != nil || !stored.SourceMismatch || stored.Range == nil || stored.Wrapup == nil {
		t.Errorf("stored record = %+v, %v", stored, err)
	}
}

func TestWrapupRequiredThenWrites(t *testing.T) {
	e := newSalesEnv(t)
	ctx := context.Background()
	call := e.call("c1", "+79161234567", "")
	if got := e.status("maria"); got != desk.StatusWrapup {
		t.Fatalf("maria after the call = %s; want wrapup", got)
	}
	if pc, _, err := e.sales.Pending(ctx, "maria"); err != nil || pc == nil || pc.ID != "c1" {
		t.Fatalf("Pending = %+v, %v", pc, err)
	}

	steps := []struct {
		name    string
		answer  func()
		req     desk.WrapupRequest
		missing []string
	}{
		{"nothing", func() {}, desk.WrapupRequest{}, []string{"contact.name", "contact.company", "source", "outcome"}},
		{"name only", func() { e.mustAnswer(maria, "c1", "contact", "name", "Анна Смирнова") },
			desk.WrapupRequest{Outcome: "refusal"}, []string{"contact.company", "source", "refusal.reason"}},
		{"a promise without deadline", func() {
			e.mustAnswer(maria, "c1", "contact", "company", "ООО Ромашка")
			e.mustAnswer(maria, "c1", "promise", "what", "Отправить предложение")
		}, desk.WrapupRequest{Outcome: "deal"}, []string{"source", "promise.due"}},
		{"no source", func() { e.mustAnswer(maria, "c1", "promise", "due", "+2h") },
			desk.WrapupRequest{Outcome: "deal"}, []string{"source"}},
	}
	for _, st := range steps {
		st.answer()
		_, err := e.sales.Wrapup(ctx, maria, "c1", st.req)
		var me *desk.MissingError
		if !errors.As(err, &me) || !errors.Is(err, desk.ErrInvalid) || !slices.Equal(me.Missing, st.missing) {
			t.Fatalf("%s: err = %v; want missing %v", st.name, err, st.missing)
		}
	}
	if n := len(e.pub.of(desk.EventWrapupDone)); n != 0 {
		t.Fatalf("a refused wrap-up published %d wrapup.done", n)
	}
	if got := e.status("maria"); got != desk.StatusWrapup {
		t.Fatalf("maria left wrap-up while refused: %s", got)
	}
	if _, err := e.sales.Wrapup(ctx, oleg, "c1", desk.WrapupRequest{Outcome: "deal"}); !errors.Is(err, desk.ErrForbidden) {
		t.Errorf("oleg closing maria's call: %v", err)
	}

	e.mustAnswer(maria, "c1", "source", "source", "exhibition")
	e.mustAnswer(maria, "c1", "contact", "position", "Закупщик", "callback_phone", "8 (495) 111-22-33")
	e.mustAnswer(maria, "c1", "company_details", "email", "anna@romashka.ru", "mobile", "+7 903 000-00-09")
	e.mustAnswer(maria, "c1", "need_product", "product", "Сканер штрихкодов")
	e.mustAnswer(maria, "c1", "meeting", "at", "tomorrow 11:00", "format", "online")
	res, err := e.sales.Wrapup(ctx, maria, "c1", desk.WrapupRequest{Outcome: "deal", Stage: "needs_identified", Note: "Склад 2000 м², запуск в марте"})
	if err != nil {
		t.Fatal(err)
	}

	// The contact: created with the caller ID and every number given, maria as manager.
	c := res.Contact
	wantPhones := []string{"+79161234567", "+79030000009", "+74951112233"}
	if c == nil || c.ID == "" || c.Name != "Анна Смирнова" || c.Company != "ООО Ромашка" || c.Position != "Закупщик" ||
		c.Email != "anna@romashka.ru" || c.Manager != "maria" || !slices.Equal(c.Phones, wantPhones) {
		t.Fatalf("contact = %+v", c)
	}
	for _, p := range wantPhones {
		if found, err := e.store.ContactByPhone(ctx, p); err != nil || found.ID != c.ID {
			t.Errorf("ContactByPhone(%s) = %+v, %v", p, found, err)
		}
	}
	// The interest, the promise, the meeting, the note, the history.
	it := res.Interest
	if it == nil || it.Type != "deal" || it.Stage != "needs_identified" || it.State != "open" || it.Owner != "maria" ||
		it.Summary != "Сканер штрихкодов" || len(it.History) != 1 || it.History[0].CallID != "c1" {
		t.Errorf("interest = %+v", it)
	}
	p := res.Promise
	if p == nil || p.What != "Отправить предложение" || p.Owner != "maria" || p.ContactID != c.ID || p.Phone != "+74951112233" ||
		!p.Due.Equal(e.clock.Now().Add(2*time.Hour)) || p.State != desk.PromiseOpen {
		t.Errorf("promise = %+v", p)
	}
	if m := res.Meeting; m == nil || m.Format != "online" || !m.At.Equal(time.Date(2025, 1, 11, 11, 0, 0, 0, e.loc)) {
		t.Errorf("meeting = %+v", res.Meeting)
	}
	w := res.Record.Wrapup
	if w == nil || w.Outcome != "deal" || w.ClosedBy != "maria" || w.Forced || w.InterestID != it.ID || w.PromiseID != p.ID ||
		w.MeetingID != res.Meeting.ID || res.Record.ContactID != c.ID || !res.Record.SourceMismatch {
		t.Errorf("record = %+v wrapup %+v", res.Record, w)
	}
	card, err := e.sales.Card(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(card.Calls) != 1 || card.Calls[0].CallID != "c1" || card.Calls[0].Outcome != "deal" || card.Calls[0].Seconds != 90 ||
		card.Calls[0].Operator != "maria" {
		t.Errorf("card calls = %+v", card.Calls)
	}
	if card.Interest == nil || card.Interest.ID != it.ID || len(card.Promises) != 1 || card.Promises[0].ID != p.ID ||
		len(card.Notes) != 1 || card.Notes[0].Text != "Склад 2000 м², запуск в марте" {
		t.Errorf("card = %+v", card)
	}

	// maria takes calls again; the wrap-up is no longer pending; everyone heard.
	if got := e.status("maria"); got != "free" {
		t.Errorf("maria after the wrap-up = %s; want available", got)
	}
	if pc, _, err := e.sales.Pending(ctx, "maria"); pc != nil || err != nil {
		t.Errorf("Pending after the wrap-up = %+v, %v", pc, err)
	}
	if evs := e.pub.of(desk.EventWrapupDone); len(evs) != 1 || evs[0].Payload.(desk.Progress).Record.Wrapup == nil {
		t.Errorf("wrapup.done = %+v", evs)
	}
	if evs := e.pub.of(desk.EventPromiseUpdated); len(evs) != 1 || evs[0].Payload.(desk.PromiseUpdate).Promise.ID != p.ID {
		t.Errorf("promise.updated = %+v", evs)
	}
	if len(e.hook.kinds) != 1 || e.hook.kinds[0] != "wrapup" || e.hook.last.(*desk.WrapupResult).Contact.ID != c.ID {
		t.Errorf("notifier heard %v", e.hook.kinds)
	}
	// A resent wrap-up writes nothing twice; answers after it are refused.
	if again, err := e.sales.Wrapup(ctx, maria, "c1", desk.WrapupRequest{Outcome: "deal"}); err != nil || again.Record.Wrapup == nil {
		t.Errorf("resent wrap-up = %+v, %v", again, err)
	}
	if h, _ := e.store.History(ctx, c.ID, 10); len(h) != 1 {
		t.Errorf("history after a resend: %+v", h)
	}
	if _, err := e.answer(maria, "c1", "contact", "name", "x"); !errors.Is(err, desk.ErrInvalid) {
		t.Errorf("answer after the wrap-up: %v", err)
	}
	_ = call

	// The next call from Анна, from her mobile: known, phones merged, interest moved.
	e.clock.Add(24 * time.Hour)
	e.call("c2", "+79030000009", c.ID)
	e.mustAnswer(maria, "c2", "source", "source", "referral")
	e.mustAnswer(maria, "c2", "company_details", "phone", "+7 495 765-43-21", "email", "a.smirnova@romashka.ru")
	res2, err := e.sales.Wrapup(ctx, maria, "c2", desk.WrapupRequest{Outcome: "deal", Stage: "meeting"})
	if err != nil {
		t.Fatalf("second wrap-up (name and company known): %v", err)
	}
	c2 := res2.Contact
	if c2.ID != c.ID || c2.Name != "Анна Смирнова" || c2.Email != "a.smirnova@romashka.ru" ||
		!slices.Equal(c2.Phones, append(slices.Clone(wantPhones), "+74957654321")) {
		t.Errorf("merged contact = %+v", c2)
	}
	it2 := res2.Interest
	if it2.ID != it.ID || it2.Stage != "meeting" || len(it2.History) != 2 || it2.History[1].Stage != "meeting" ||
		it2.History[1].CallID != "c2" || !it2.History[1].At.After(it2.History[0].At) {
		t.Errorf("moved interest = %+v", it2)
	}
	if h, _ := e.store.History(ctx, c.ID, 10); len(h) != 2 || h[0].CallID != "c2" {
		t.Errorf("history = %+v", h)
	}
}

func TestWrapupInterestClosing(t *testing.T) {
	tests := []struct {
		name   string
		req    desk.WrapupRequest
		state  string
		reason string
	}{
		{"refusal closes lost with the reason", desk.WrapupRequest{Outcome: "refusal", Reason: "competitor"}, "lost", "competitor"},
		{"not prospective closes lost", desk.WrapupRequest{Outcome: "not_prospective"}, "lost", "not_prospective"},
		{"a deal at payment is won", desk.WrapupRequest{Outcome: "deal", Stage: "payment"}, "won", ""},
		{"an interest stays open", desk.WrapupRequest{Outcome: "interest", Stage: "contract"}, "open", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSalesEnv(t)
			ctx := context.Background()
			e.call("c1", "+79161234567", "")
			e.complete("c1")
			first, err := e.sales.Wrapup(ctx, maria, "c1", desk.WrapupRequest{Outcome: "interest"})
			if err != nil {
				t.Fatal(err)
			}
			e.call("c2", "+79161234567", first.Contact.ID)
			e.complete("c2")
			res, err := e.sales.Wrapup(ctx, maria, "c2", tt.req)
			if err != nil {
				t.Fatal(err)
			}
			it := res.Interest
			if it.ID != first.Interest.ID || it.State != tt.state || it.Reason != tt.reason || len(it.History) != 2 || it.History[1].State != tt.state {
				t.Fatalf("interest = %+v", it)
			}
			_, err = e.store.OpenInterest(ctx, first.Contact.ID)
			if open := err == nil; open != (tt.state == "open") {
				t.Errorf("open interest after %s: %v", tt.state, err)
			}
		})
	}
}

func TestQualificationMarksNotProspective(t *testing.T) {
	rules := []desk.QualificationRule{{Industries: []string{"retail"}, SizeBelow: 20, Reason: "WMS does not pay off below 20 staff"}}
	tests := []struct {
		size, industry, want string
	}{
		{"1-10", "retail", "WMS does not pay off below 20 staff"},
		{"51-200", "retail", ""},
		{"1-10", "manufacturing", ""},
	}
	for _, tt := range tests {
		t.Run(tt.size+" "+tt.industry, func(t *testing.T) {
			e := newSalesEnv(t, desk.WithQualification(rules))
			e.call("c1", "+79161234567", "")
			e.complete("c1")
			e.mustAnswer(maria, "c1", "company_details", "company_size", tt.size, "industry", tt.industry)
			res, err := e.sales.Wrapup(context.Background(), maria, "c1", desk.WrapupRequest{Outcome: "interest"})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Record.Wrapup.NotProspective; got != tt.want {
				t.Fatalf("not prospective = %q; want %q", got, tt.want)
			}
			wantState := "open"
			if tt.want != "" {
				wantState = "lost"
			}
			if res.Interest.State != wantState {
				t.Errorf("interest = %+v; want %s", res.Interest, wantState)
			}
			// Still a contact: he stays on the mailing list.
			if res.Contact == nil || res.Contact.Email != "" && res.Contact.ID == "" {
				t.Errorf("contact = %+v", res.Contact)
			}
		})
	}
}

func TestForceWrapup(t *testing.T) {
	e := newSalesEnv(t)
	ctx := context.Background()
	e.call("c1", "+79161234567", "")
	e.mustAnswer(maria, "c1", "promise", "what", "Перезвонить")
	if _, err := e.sales.ForceWrapup(ctx, maria, "c1", "I am done"); !errors.Is(err, desk.ErrForbidden) {
		t.Fatalf("operator forcing: %v", err)
	}
	if _, err := e.sales.ForceWrapup(ctx, sveta, "nope", "x"); !errors.Is(err, desk.ErrNotFound) {
		t.Fatalf("unknown call: %v", err)
	}
	res, err := e.sales.ForceWrapup(ctx, sveta, "c1", "operator went home")
	if err != nil {
		t.Fatal(err)
	}
	w := res.Record.Wrapup
	if w == nil || !w.Forced || w.ClosedBy != "sveta" {
		t.Fatalf("wrapup = %+v", w)
	}
	// The promise made is kept on record, due by the callback default.
	if res.Promise == nil || !res.Promise.Due.Equal(e.clock.Now().Add(desk.DefaultCallbackDue)) || res.Promise.Owner != "maria" {
		t.Errorf("promise = %+v", res.Promise)
	}
	if res.Contact == nil || !slices.Equal(res.Contact.Phones, []string{"+79161234567"}) {
		t.Errorf("contact = %+v", res.Contact)
	}
	if got := e.status("maria"); got != "free" {
		t.Errorf("maria after a forced wrap-up = %s", got)
	}
	log, err := e.sales.Audit(ctx, sveta, 10)
	if err != nil || len(log) != 1 || log[0].Action != "wrapup.force" || log[0].Who != "sveta" || log[0].Target != "c1" ||
		log[0].Detail != "operator went home; missing: contact.name, contact.company, source, promise.due, outcome" {
		t.Errorf("audit = %+v, %v", log, err)
	}
	if _, err := e.sales.Audit(ctx, maria, 10); !errors.Is(err, desk.ErrForbidden) {
		t.Errorf("operator reading the audit: %v", err)
	}
}

// promise saves a promise straight into the store.
func (e *salesEnv) promise(id, owner string, due time.Duration) *desk.Promise {
	e.t.Helper()
	p := &desk.Promise{ID: id, Owner: owner, Kind: "promise", What: "send an offer", Due: e.clock.Now().Add(due),
		Created: e.clock.Now(), State: desk.PromiseOpen}
	if err := e.store.SavePromise(context.Background(), p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func ids(ps []*desk.Promise) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func TestPromisesListing(t *testing.T) {
	e := newSalesEnv(t)
	ctx := context.Background()
	e.promise("m-late", "maria", -time.Hour)
	e.promise("m-soon", "maria", time.Hour)
	e.promise("o-soon", "oleg", 30*time.Minute)
	e.promise("pool", "", 2*time.Hour)
	kept := e.promise("m-kept", "maria", 3*time.Hour)
	if _, err := e.sales.KeepPromise(ctx, maria, kept.ID, "sent"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		u            *desk.User
		owner, state string
		want         []string
		err          error
	}{
		{"operator: own and pool, by deadline", maria, "", "", []string{"m-late", "m-soon", "pool", "m-kept"}, nil},
		{"operator: open includes overdue", maria, "", "open", []string{"m-late", "m-soon", "pool"}, nil},
		{"operator: overdue", maria, "maria", "overdue", []string{"m-late"}, nil},
		{"operator: kept", maria, "", "kept", []string{"m-kept"}, nil},
		{"operator: the pool", maria, "pool", "open", []string{"pool"}, nil},
		{"operator: someone else's", maria, "oleg", "", nil, desk.ErrForbidden},
		{"supervisor: everyone", sveta, "", "open", []string{"m-late", "o-soon", "m-soon", "pool"}, nil},
		{"supervisor: one owner", sveta, "oleg", "", []string{"o-soon"}, nil},
		{"supervisor: the pool", sveta, "pool", "", []string{"pool"}, nil},
		{"bad state", sveta, "", "late", nil, desk.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.sales.Promises(ctx, tt.u, tt.owner, tt.state)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v; want %v", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(ids(got), tt.want) {
				t.Fatalf("Promises = %v, %v; want %v", ids(got), err, tt.want)
			}
		})
	}
	// Keeping: the owner, anyone for the pool, not another operator.
	if _, err := e.sales.KeepPromise(ctx, oleg, "m-soon", "x"); !errors.Is(err, desk.ErrForbidden) {
		t.Errorf("oleg keeping maria's promise: %v", err)
	}
	p, err := e.sales.KeepPromise(ctx, oleg, "pool", "called back")
	if err != nil || p.State != desk.PromiseKept || p.Owner != "oleg" || p.Result != "called back" || p.KeptAt == nil {
		t.Errorf("pool promise kept = %+v, %v", p, err)
	}
	if _, err := e.sales.KeepPromise(ctx, sveta, "o-soon", "done for him"); err != nil {
		t.Errorf("supervisor keeping: %v", err)
	}
	if _, err := e.sales.KeepPromise(ctx, maria, "nope", ""); !errors.Is(err, desk.ErrNotFound) {
		t.Errorf("unknown promise: %v", err)
	}
	if n := len(e.pub.of(desk.EventPromiseUpdated)); n != 3 {
		t.Errorf("%d promise.updated; want 3", n)
	}
}

func TestOverdueRaisedOnce(t *testing.T) {
	e := newSalesEnv(t)
	ctx := context.Background()
	e.promise("p1", "maria", 30*time.Minute)
	e.promise("p2", "", 2*time.Hour)
	check := func(want int) {
		t.Helper()
		n, err := e.sales.CheckOverdue(ctx)
		if err != nil || n != want {
			t.Fatalf("CheckOverdue = %d, %v; want %d", n, err, want)
		}
	}
	check(0)
	e.clock.Add(31 * time.Minute)
	check(1)
	check(0) // raised once
	evs := e.pub.of(desk.EventPromiseOverdue)
	if len(evs) != 1 || evs[0].Payload.(desk.PromiseUpdate).Promise.ID != "p1" || !slices.Equal(evs[0].Operators, []string{"maria"}) {
		t.Fatalf("promise.overdue = %+v", evs)
	}
	if got, _ := e.sales.Promises(ctx, maria, "", "overdue"); !slices.Equal(ids(got), []string{"p1"}) {
		t.Errorf("overdue list = %v", ids(got))
	}
	e.clock.Add(2 * time.Hour)
	check(1) // the pool's, to supervisors only
	if evs := e.pub.of(desk.EventPromiseOverdue); len(evs) != 2 || len(evs[1].Operators) != 0 {
		t.Errorf("pool overdue = %+v", evs)
	}
	// A promise kept before its deadline is never raised.
	e.promise("p3", "maria", time.Hour)
	if _, err := e.sales.KeepPromise(ctx, maria, "p3", "done"); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(2 * time.Hour)
	check(0)
}

func TestRunSchedulerTakesLease(t *testing.T) {
	e := newSalesEnv(t)
	e.promise("p1", "maria", -time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.sales.RunScheduler(ctx, "node-a") }()
	// The scheduler ticks on the wall clock (every second); the fake clock already
	// has p1 overdue, so the first tick raises it.
	e.pub.wait(t, desk.EventPromiseOverdue, 1)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunScheduler = %v", err)
	}
	if ok, _ := e.store.Lease(context.Background(), "promises", "node-b", time.Second); ok {
		t.Error("another node got the lease while node-a held it")
	}
}

func TestKeptRate(t *testing.T) {
	e := newSalesEnv(t)
	ctx := context.Background()
	from := e.clock.Now()
	e.promise("on-time", "maria", time.Hour)
	e.promise("late", "maria", time.Hour)
	e.promise("missed", "maria", time.Hour)
	e.promise("not-due", "maria", 10*time.Hour)
	e.promise("oleg-on-time", "oleg", 2*time.Hour)
	e.clock.Add(50 * time.Minute)
	for _, id := range []string{"on-time", "oleg-on-time"} {
		if _, err := e.sales.KeepPromise(ctx, sveta, id, "ok"); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Add(20 * time.Minute) // past the hour
	if _, err := e.sales.KeepPromise(ctx, maria, "late", "sorry"); err != nil {
		t.Fatal(err)
	}
	got, err := e.sales.KeptRate(ctx, from, from.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []desk.KeptRate{
		{Owner: "maria", OnTime: 1, Late: 1, Missed: 1, Open: 1, Rate: 1.0 / 3},
		{Owner: "oleg", OnTime: 1, Rate: 1},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("KeptRate = %+v; want %+v", got, want)
	}
	if got, _ := e.sales.KeptRate(ctx, from.Add(5*time.Hour), from.Add(24*time.Hour)); len(got) != 1 || got[0].Open != 1 {
		t.Errorf("a later period = %+v", got)
	}
	if _, err := e.sales.KeptRate(ctx, from, from); !errors.Is(err, desk.ErrInvalid) {
		t.Errorf("empty period: %v", err)
	}
}

func TestCallMissedBecomesCallback(t *testing.T) {
	e := newSalesEnv(t)
	ctx := context.Background()
	managed := &desk.Contact{Name: "Анна", Company: "Ромашка", Manager: "oleg", Phones: []string{"+79161234567"}}
	if err := e.store.CreateContact(ctx, managed); err != nil {
		t.Fatal(err)
	}
	missed := func(id, from, contactID string) *desk.Call {
		return &desk.Call{ID: id, From: from, Line: "sales", State: desk.CallMissed, ContactID: contactID, Started: e.clock.Now()}
	}
	e.sales.CallMissed(ctx, missed("m1", "+79161234567", managed.ID))
	e.sales.CallMissed(ctx, missed("m2", "+79990001122", ""))
	e.sales.CallMissed(ctx, missed("m3", "anonymous", ""))
	e.sales.CallMissed(ctx, missed("m4", "+79990001122", "")) // rings again: no second callback

	olegs, _ := e.sales.Promises(ctx, oleg, "oleg", "open")
	if len(olegs) != 1 || olegs[0].Kind != "callback" || olegs[0].Phone != "+79161234567" || olegs[0].ContactID != managed.ID ||
		!olegs[0].Due.Equal(e.clock.Now().Add(30*time.Minute)) {
		t.Fatalf("oleg's callbacks = %+v", olegs)
	}
	pool, _ := e.sales.Promises(ctx, sveta, "pool", "open")
	if len(pool) != 1 || pool[0].Phone != "+79990001122" || pool[0].CallID != "m2" || pool[0].What != "call back" {
		t.Fatalf("pool callbacks = %+v", pool)
	}
	if h, _ := e.store.History(ctx, managed.ID, 10); len(h) != 1 || h[0].Outcome != "missed" {
		t.Errorf("history = %+v", h)
	}
	if n := len(e.pub.of(desk.EventPromiseUpdated)); n != 2 {
		t.Errorf("%d promise.updated; want 2", n)
	}
	// The callback default is configurable.
	e2 := newSalesEnv(t, desk.WithCallbackDue(10*time.Minute))
	e2.sales.CallMissed(ctx, missed("m5", "+79990001133", ""))
	if ps, _ := e2.sales.Promises(ctx, sveta, "", ""); len(ps) != 1 || !ps[0].Due.Equal(e2.clock.Now().Add(10*time.Minute)) {
		t.Errorf("callback due = %+v", ps)
	}
}

func TestNotesAndManager(t *testing.T) {
	e := newSalesEnv(t)
	ctx := context.Background()
	c := &desk.Contact{Name: "Анна", Phones: []string{"+79161234567"}}
	if err := e.store.CreateContact(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sales.AddNote(ctx, maria, c.ID, "   ", ""); !errors.Is(err, desk.ErrInvalid) {
		t.Errorf("empty note: %v", err)
	}
	if _, err := e.sales.AddNote(ctx, maria, "nope", "x", ""); !errors.Is(err, desk.ErrNotFound) {
		t.Errorf("note on an unknown contact: %v", err)
	}
	n, err := e.sales.AddNote(ctx, maria, c.ID, "Любит звонки после обеда", "c1")
	if err != nil || n.By != "maria" || n.CallID != "c1" {
		t.Fatalf("AddNote = %+v, %v", n, err)
	}
	tests := []struct {
		name    string
		u       *desk.User
		manager string
		err     error
		audited bool
	}{
		{"operator sets himself", maria, "maria", nil, false},
		{"not an operator", maria, "sveta", desk.ErrInvalid, false},
		{"unknown login", maria, "ghost", desk.ErrInvalid, false},
		{"supervisor reassigns", sveta, "oleg", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := e.store.AuditLog(ctx, 100)
			got, err := e.sales.SetManager(ctx, tt.u, c.ID, tt.manager)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v; want %v", err, tt.err)
				}
				return
			}
			if err != nil || got.Manager != tt.manager {
				t.Fatalf("SetManager = %+v, %v", got, err)
			}
			after, _ := e.store.AuditLog(ctx, 100)
			if audited := len(after) == len(before)+1; audited != tt.audited {
				t.Errorf("audited = %v; want %v", audited, tt.audited)
			}
			if tt.audited && (after[0].Action != "contact.manager" || !strings.Contains(after[0].Detail, "oleg")) {
				t.Errorf("audit = %+v", after[0])
			}
		})
	}
}

// An operator whose call ended stays in wrap-up across a page reload: the pending
// call comes back with its record until it is closed.
func TestPendingSurvivesAndEarlyWrapup(t *testing.T) {
	e := newSalesEnv(t)
	ctx := context.Background()
	e.call("c1", "+79161234567", "")
	e.mustAnswer(maria, "c1", "contact", "name", "Анна")
	pc, rec, err := e.sales.Pending(ctx, "maria")
	if err != nil || pc == nil || pc.ID != "c1" || rec.Answers["contact.name"] != "Анна" {
		t.Fatalf("Pending = %+v %+v %v", pc, rec, err)
	}
	if pc, _, _ := e.sales.Pending(ctx, "oleg"); pc != nil {
		t.Errorf("oleg owes %+v", pc)
	}

	// A wrap-up closed while the call is still live keeps maria talking; the end
	// of the call then frees her instead of holding her in wrap-up.
	ans := e.clock.Now()
	live := &desk.Call{ID: "c2", From: "+79161234567", Line: "sales", Script: "default", Operator: "oleg",
		State: desk.CallAnswered, Started: ans, Answered: &ans}
	if err := e.store.SaveCall(ctx, live); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Claim(ctx, "oleg", "c2", desk.StatusTalking, time.Hour); err != nil {
		t.Fatal(err)
	}
	e.mustAnswer(oleg, "c2", "contact", "name", "Анна", "company", "Ромашка")
	e.mustAnswer(oleg, "c2", "source", "source", "web_search")
	if _, err := e.sales.Wrapup(ctx, oleg, "c2", desk.WrapupRequest{Outcome: "interest"}); err != nil {
		t.Fatal(err)
	}
	if got := e.status("oleg"); got != desk.StatusTalking {
		t.Errorf("oleg after an early wrap-up = %s; want still talking", got)
	}
	end := e.clock.Now()
	live.State, live.Ended = desk.CallEnded, &end
	e.sales.CallEnded(ctx, live)
	if got := e.status("oleg"); got != "free" {
		t.Errorf("oleg after the call = %s; want available", got)
	}
	if pc, _, _ := e.sales.Pending(ctx, "oleg"); pc != nil {
		t.Errorf("oleg owes %+v", pc)
	}
}
