package desk

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/calldesk/desk/desk/phone"
)

// Sales is the sales record service: it stores what the operator captures while
// walking the script, enforces the wrap-up, and keeps what outlives a call (the
// contact's history, interests, promises, meetings, notes).
//
// Every rule that needs no store is a pure function in salesrules.go; Sales reads,
// applies them and writes. Answers are idempotent by the page's operation id (the
// store applies each op once, atomically), so a page may resend freely.
type Sales struct {
	store         Store
	pub           Publisher
	log           *slog.Logger
	now           func() time.Time
	scripts       map[string]*Script
	lines         []Line
	defaultScript string
	prices        []PriceRange
	rules         []QualificationRule
	callbackDue   time.Duration
	loc           *time.Location
	region        string
	notifier      Notifier
	wrapupTTL     time.Duration
	unsaved       func(callID string) bool
	bridge        bridgeRef // the media bridge that dials callbacks; unset without media mode
	dialing       dialGuard // who pressed "call back" lately

	// locks serialise the wrap-up of one call on this node, so a double click does
	// not write the contact's history twice.
	locks [64]sync.Mutex
}

// Notifier hears of completed records, e.g. the CRM webhook. Notify must not block.
type Notifier interface {
	Notify(kind string, payload any)
}

// WrapupRequest closes a call's record. Empty fields fall back to the answers
// captured in the script's wrap-up step (bind outcome, refusal.reason, stage, note).
type WrapupRequest struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	Stage   string `json:"stage"`
	Note    string `json:"note"`
}

// WrapupResult is what a wrap-up wrote.
type WrapupResult struct {
	Record   *Record   `json:"record"`
	Contact  *Contact  `json:"contact"`
	Interest *Interest `json:"interest,omitempty"`
	Promise  *Promise  `json:"promise,omitempty"`
	Meeting  *Meeting  `json:"meeting,omitempty"`
}

// SalesOption configures Sales.
type SalesOption func(*Sales)

// WithSalesLogger sets the logger.
func WithSalesLogger(l *slog.Logger) SalesOption {
	return func(s *Sales) {
		if l != nil {
			s.log = l
		}
	}
}

// WithSalesClock replaces time.Now, for tests.
func WithSalesClock(now func() time.Time) SalesOption {
	return func(s *Sales) {
		if now != nil {
			s.now = now
		}
	}
}

// WithSalesScripts sets the scripts by id, in the language the desk runs in and
// with the configuration's choices resolved, as the pop sends them.
func WithSalesScripts(m map[string]*Script) SalesOption {
	return func(s *Sales) { s.scripts = m }
}

// WithSalesLines sets the lines (for their preset source and script) and the
// default script.
func WithSalesLines(lines []Line, defaultScript string) SalesOption {
	return func(s *Sales) { s.lines, s.defaultScript = slices.Clone(lines), defaultScript }
}

// WithPriceList sets the price ranges a price step names.
func WithPriceList(p []PriceRange) SalesOption {
	return func(s *Sales) { s.prices = slices.Clone(p) }
}

// WithQualification sets the rules that mark a lead not prospective.
func WithQualification(r []QualificationRule) SalesOption {
	return func(s *Sales) { s.rules = slices.Clone(r) }
}

// WithCallbackDue sets when the callback promise of a missed call is due (default 30m).
func WithCallbackDue(d time.Duration) SalesOption {
	return func(s *Sales) {
		if d > 0 {
			s.callbackDue = d
		}
	}
}

// WithLocation sets the desk's zone, in which "tomorrow 10:00" is read (default Europe/Moscow).
func WithLocation(loc *time.Location) SalesOption {
	return func(s *Sales) {
		if loc != nil {
			s.loc = loc
		}
	}
}

// WithSalesRegion sets the country assumed for phone answers without a country code (default RU).
func WithSalesRegion(r string) SalesOption { return func(s *Sales) { s.region = r } }

// WithUnsavedCalls tells Sales which calls exist but are not stored yet (routed
// during a Redis outage: Switchboard.Unsaved). A request about one is answered
// ErrUnavailable, which the page's outbox retries, instead of ErrNotFound, which
// it would drop.
func WithUnsavedCalls(f func(callID string) bool) SalesOption {
	return func(s *Sales) { s.unsaved = f }
}

// WithNotifier sets who hears of completed wrap-ups (the CRM webhook).
func WithNotifier(n Notifier) SalesOption { return func(s *Sales) { s.notifier = n } }

// WithWrapupTTL bounds how long an operator stays held in wrap-up when he never
// completes it (default 12h): past it he takes calls again, so a forgotten page
// cannot take him off the desk for days.
func WithWrapupTTL(d time.Duration) SalesOption {
	return func(s *Sales) {
		if d > 0 {
			s.wrapupTTL = d
		}
	}
}

// Defaults of Sales.
const (
	DefaultCallbackDue = 30 * time.Minute
	DefaultWrapupTTL   = 12 * time.Hour
	// leaseTTL is how long the scheduler's lease lasts; it is renewed every second.
	leaseTTL = 5 * time.Second
)

// NewSales returns the sales service on store, publishing through pub.
func NewSales(store Store, pub Publisher, opts ...SalesOption) *Sales {
	s := &Sales{
		store:       store,
		pub:         pub,
		log:         slog.Default(),
		now:         time.Now,
		scripts:     map[string]*Script{},
		callbackDue: DefaultCallbackDue,
		region:      "RU",
		wrapupTTL:   DefaultWrapupTTL,
	}
	if loc, err := time.LoadLocation("Europe/Moscow"); err == nil {
		s.loc = loc
	} else {
		s.loc = time.UTC
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func isSupervisor(u *User) bool {
	return u != nil && (u.Role == RoleSupervisor || u.Role == RoleAdmin)
}

// mayWork reports whether u may capture and close the call's record: its operator,
// or a supervisor or admin.
func mayWork(u *User, c *Call) error {
	if u == nil {
		return fmt.Errorf("call %s: %w", c.ID, ErrUnauthorized)
	}
	if isSupervisor(u) || (u.Login != "" && u.Login == c.Operator) {
		return nil
	}
	return fmt.Errorf("call %s belongs to %q: %w", c.ID, c.Operator, ErrForbidden)
}

func (s *Sales) call(ctx context.Context, id string) (*Call, error) {
	if id == "" {
		return nil, fmt.Errorf("call: empty id: %w", ErrNotFound)
	}
	c, err := s.store.Call(ctx, id)
	if errors.Is(err, ErrNotFound) && s.unsaved != nil {
		if s.unsaved(id) {
			return nil, fmt.Errorf("call %s is not stored yet: %w", id, ErrUnavailable)
		}
		// The switchboard writes a call back before it stops calling it unsaved, so
		// if it was written between our two looks, a second read finds it.
		c, err = s.store.Call(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", id, err)
	}
	return c, nil
}

func (s *Sales) line(number string) (Line, bool) {
	for _, l := range s.lines {
		if l.Number == number {
			return l, true
		}
	}
	return Line{}, false
}

// scriptFor returns the call's script: the one it popped with, else its line's,
// else the default.
func (s *Sales) scriptFor(c *Call) *Script {
	id := c.Script
	if id == "" {
		if l, ok := s.line(c.Line); ok {
			id = l.Script
		}
	}
	if sc := s.scripts[id]; sc != nil {
		return sc
	}
	return s.scripts[s.defaultScript]
}

// newRecord is the record a call's first answer creates.
func (s *Sales) newRecord(c *Call) *Record {
	r := &Record{CallID: c.ID, Operator: c.Operator, ContactID: c.ContactID, Line: c.Line, Answers: map[string]string{}}
	if sc := s.scriptFor(c); sc != nil {
		r.Script = sc.ID
	}
	if l, ok := s.line(c.Line); ok {
		r.PresetSource = l.Source
	}
	return r
}

// recordOf returns the call's stored record, or a new empty one.
func (s *Sales) recordOf(ctx context.Context, c *Call) (*Record, error) {
	rec, err := s.store.Record(ctx, c.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		rec = s.newRecord(c)
	case err != nil:
		return nil, fmt.Errorf("record of call %s: %w", c.ID, err)
	}
	if rec.Answers == nil {
		rec.Answers = map[string]string{}
	}
	deriveFlags(rec, s.prices)
	rec.NoWrapup = c.Unreached != 0
	return rec, nil
}

func (s *Sales) fieldContext() fieldContext {
	return fieldContext{now: s.now(), loc: s.loc, region: s.region, prices: s.prices}
}

// normalise turns the page's op (field ids of one step) into record answers keyed
// by bind, validated and normalised; an empty value clears the answer.
func (s *Sales) normalise(script *Script, op AnswerOp) (map[string]string, error) {
	if script == nil {
		return nil, &FieldError{Field: "step", Reason: "the call has no script"}
	}
	var step *Step
	for i := range script.Steps {
		if script.Steps[i].ID == op.Step {
			step = &script.Steps[i]
		}
	}
	if step == nil {
		return nil, &FieldError{Field: "step", Reason: fmt.Sprintf("no step %q in script %s", op.Step, script.ID)}
	}
	fc := s.fieldContext()
	out := map[string]string{}
	ids := make([]string, 0, len(op.Fields))
	for id := range op.Fields {
		ids = append(ids, id)
	}
	sort.Strings(ids) // the first bad field reported is always the same one
	for _, id := range ids {
		v := strings.TrimSpace(op.Fields[id])
		if id == "option" && len(step.Options) > 0 {
			if err := chooseOption(step, v, out); err != nil {
				return nil, err
			}
			continue
		}
		var f *Field
		for i := range step.Fields {
			if step.Fields[i].ID == id {
				f = &step.Fields[i]
			}
		}
		if f == nil {
			return nil, &FieldError{Field: id, Reason: fmt.Sprintf("no field %q in step %s", id, step.ID)}
		}
		key := f.Bind
		if key == "" {
			key = step.ID + "." + f.ID
		}
		nv, err := validateField(*f, f.ID, v, fc)
		if err != nil {
			return nil, err
		}
		out[key] = nv
	}
	return out, nil
}

// chooseOption records a question's option under the step id and applies its Set;
// what other options of the step set is cleared, so changing one's mind leaves no trace.
func chooseOption(step *Step, v string, out map[string]string) error {
	var chosen *Option
	for i := range step.Options {
		if step.Options[i].ID == v {
			chosen = &step.Options[i]
		}
	}
	if v != "" && chosen == nil {
		ids := make([]string, len(step.Options))
		for i, o := range step.Options {
			ids[i] = o.ID
		}
		return &FieldError{Field: "option", Reason: fmt.Sprintf("%q is not one of %s", v, strings.Join(ids, ", "))}
	}
	out[step.ID] = v
	for _, o := range step.Options {
		for k := range o.Set {
			out[k] = ""
		}
	}
	if chosen != nil {
		for k, val := range chosen.Set {
			out[k] = val
		}
	}
	return nil
}

// Answer applies one change the page sent. Fields are keyed by field id of
// op.Step ("option" for a question's choice); they are stored under the field's
// bind, or "STEP.FIELD", validated by type (a *FieldError when not). A replayed op
// changes nothing and publishes nothing. Only the call's operator, a supervisor or
// an admin may answer; once the wrap-up closed, answers are refused (ErrInvalid).
func (s *Sales) Answer(ctx context.Context, u *User, callID string, op AnswerOp) (*Record, error) {
	op.Op = strings.TrimSpace(op.Op)
	if op.Op == "" || len(op.Op) > 128 {
		return nil, &FieldError{Field: "op", Reason: "an operation id of 1 to 128 characters is required"}
	}
	call, err := s.call(ctx, callID)
	if err != nil {
		return nil, err
	}
	if err := mayWork(u, call); err != nil {
		return nil, err
	}
	rec, err := s.recordOf(ctx, call)
	if err != nil {
		return nil, err
	}
	if rec.Wrapup != nil {
		return nil, fmt.Errorf("answer call %s: the wrap-up is closed: %w", callID, ErrInvalid)
	}
	fields, err := s.normalise(s.scriptFor(call), op)
	if err != nil {
		return nil, err
	}
	base := s.newRecord(call)
	base.Step = op.Step
	out, applied, err := s.store.ApplyAnswers(ctx, base, AnswerOp{Op: op.Op, Step: op.Step, Fields: fields, By: u.Login, At: s.now()})
	if err != nil {
		return nil, fmt.Errorf("answer call %s: %w", callID, err)
	}
	if out.Answers == nil {
		out.Answers = map[string]string{}
	}
	deriveFlags(out, s.prices)
	if applied {
		s.pub.Publish(Event{Type: EventScriptProgress, Operators: audience(call.Operator),
			Payload: Progress{CallID: call.ID, Operator: call.Operator, Record: out}})
	}
	return out, nil
}

func audience(logins ...string) []string {
	var out []string
	for _, l := range logins {
		if l != "" && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// Record returns the call's record: an empty one, not an error, when nothing was
// captured yet.
func (s *Sales) Record(ctx context.Context, u *User, callID string) (*Record, error) {
	call, err := s.call(ctx, callID)
	if err != nil {
		return nil, err
	}
	if err := mayWork(u, call); err != nil {
		return nil, err
	}
	return s.recordOf(ctx, call)
}

// Wrapup closes the call's record; see docs/sales-record.md for what it writes.
// While required items are missing it returns a *MissingError and writes nothing.
// A wrap-up already closed returns what it wrote, so a resent request is harmless.
func (s *Sales) Wrapup(ctx context.Context, u *User, callID string, req WrapupRequest) (*WrapupResult, error) {
	call, err := s.call(ctx, callID)
	if err != nil {
		return nil, err
	}
	if err := mayWork(u, call); err != nil {
		return nil, err
	}
	res, _, err := s.wrapup(ctx, u, call, req, false)
	if err == nil && isSupervisor(u) && u.Login != call.Operator {
		if err := s.store.Audit(ctx, AuditEntry{At: s.now(), Who: u.Login, Action: "wrapup.close", Target: callID,
			Detail: "wrap-up of " + call.Operator + "'s call closed by " + string(u.Role)}); err != nil {
			s.log.Error("sales: audit of a wrap-up closed for an operator failed", "call", callID, "err", err)
		}
	}
	return res, err
}

// ForceWrapup closes the record whatever is missing; only a supervisor or an
// admin may, and it is audited with the reason and what was missing.
func (s *Sales) ForceWrapup(ctx context.Context, u *User, callID, reason string) (*WrapupResult, error) {
	if !isSupervisor(u) {
		return nil, fmt.Errorf("force wrap-up of %s: %w", callID, ErrForbidden)
	}
	call, err := s.call(ctx, callID)
	if err != nil {
		return nil, err
	}
	res, missing, err := s.wrapup(ctx, u, call, WrapupRequest{}, true)
	if err != nil {
		return nil, err
	}
	detail := strings.TrimSpace(reason)
	if len(missing) > 0 {
		detail = strings.TrimSpace(detail + "; missing: " + strings.Join(missing, ", "))
	}
	if err := s.store.Audit(ctx, AuditEntry{At: s.now(), Who: u.Login, Action: "wrapup.force", Target: callID, Detail: detail}); err != nil {
		s.log.Error("sales: audit of a forced wrap-up failed", "call", callID, "err", err)
	}
	return res, nil
}

func (s *Sales) lock(id string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

func first(vals ...string) string {
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// wrapup does the work of Wrapup and ForceWrapup; it returns what was missing.
func (s *Sales) wrapup(ctx context.Context, u *User, call *Call, req WrapupRequest, forced bool) (*WrapupResult, []string, error) {
	if call.Unreached != 0 {
		// Nobody talked: the attempt is in the history already, and a wrap-up
		// would add a second row with the ringback counted as talk.
		return nil, nil, fmt.Errorf("wrap-up of %s: the customer of this callback was not reached (%s): %w", call.ID, call.Reason, ErrInvalid)
	}
	defer s.lock(call.ID)()
	rec, err := s.recordOf(ctx, call)
	if err != nil {
		return nil, nil, err
	}
	if rec.Wrapup != nil {
		res := &WrapupResult{Record: rec}
		if rec.ContactID != "" {
			res.Contact, _ = s.store.Contact(ctx, rec.ContactID)
		}
		return res, nil, nil
	}
	a := rec.Answers
	outcome := first(req.Outcome, a["outcome"])
	reason := first(req.Reason, a["refusal.reason"])
	stage := first(req.Stage, a["stage"])
	note := first(req.Note, a["note"])
	switch {
	case outcome != "" && !validOutcome(outcome):
		return nil, nil, &FieldError{Field: "outcome", Reason: fmt.Sprintf("%q is not deal, interest, not_prospective or refusal", outcome)}
	case reason != "" && !validReason(reason):
		return nil, nil, &FieldError{Field: "reason", Reason: fmt.Sprintf("%q is not unreachable, competitor or not_prospective", reason)}
	case stage != "" && !validStage(stage):
		return nil, nil, &FieldError{Field: "stage", Reason: fmt.Sprintf("%q is not one of %s", stage, strings.Join(Stages, ", "))}
	case len([]rune(note)) > maxTextarea:
		return nil, nil, &FieldError{Field: "note", Reason: "too long"}
	}
	if outcome != OutcomeRefusal {
		reason = "" // a reason only means something for a refusal
	}

	now := s.now()
	phones := s.callerPhones(call, a)
	known, err := s.findContact(ctx, call, rec, phones)
	if err != nil {
		return nil, nil, err
	}
	missing := wrapupMissing(a, known, outcome, reason)
	if len(missing) > 0 && !forced {
		return nil, nil, &MissingError{Missing: missing}
	}

	res := &WrapupResult{Record: rec}
	w := &Wrapup{Outcome: outcome, Reason: reason, Stage: stage, Note: note, ClosedAt: now, ClosedBy: u.Login, Forced: forced}
	w.NotProspective = qualify(s.rules, a["contact.company_size"], a["contact.industry"])

	contact, err := s.saveContact(ctx, call, known, a, phones, now)
	if err != nil {
		return nil, nil, err
	}
	res.Contact = contact
	if contact != nil {
		rec.ContactID = contact.ID
		histOutcome := outcome
		if histOutcome == "" {
			histOutcome = "forced"
		}
		if err := s.store.AddHistory(ctx, contact.ID, CallSummary{CallID: call.ID, At: call.Started, Operator: call.Operator,
			Outcome: histOutcome, Seconds: talkSeconds(call, now), Recorded: call.Recorded && call.Talked()}); err != nil {
			return nil, nil, fmt.Errorf("wrap-up %s: history: %w", call.ID, err)
		}
		if res.Interest, err = s.moveInterest(ctx, u, call, contact, a, w, now); err != nil {
			return nil, nil, err
		}
		if res.Interest != nil {
			w.InterestID = res.Interest.ID
		}
	}
	if what := a["promise.what"]; what != "" {
		due, err := time.Parse(time.RFC3339, a["promise.due"])
		if err != nil { // only a forced wrap-up gets here without a due time
			due = now.Add(s.callbackDue)
		}
		p := &Promise{ID: newID(), Phone: first(a["contact.callback_phone"], e164Or(call.From)), CallID: call.ID,
			Owner: first(call.Operator, u.Login), Kind: "promise", What: what, Due: due, Created: now, State: PromiseOpen}
		if contact != nil {
			p.ContactID = contact.ID
		}
		if err := s.store.SavePromise(ctx, p); err != nil {
			return nil, nil, fmt.Errorf("wrap-up %s: promise: %w", call.ID, err)
		}
		res.Promise, w.PromiseID = p, p.ID
	}
	if at, err := time.Parse(time.RFC3339, a["meeting.at"]); err == nil && contact != nil {
		m := &Meeting{ID: newID(), ContactID: contact.ID, CallID: call.ID, Owner: first(call.Operator, u.Login),
			At: at, Format: a["meeting.format"], Created: now}
		if err := s.store.SaveMeeting(ctx, m); err != nil {
			return nil, nil, fmt.Errorf("wrap-up %s: meeting: %w", call.ID, err)
		}
		res.Meeting, w.MeetingID = m, m.ID
	}
	if note != "" && contact != nil {
		n := &Note{ID: newID(), ContactID: contact.ID, Text: note, By: u.Login, CallID: call.ID, At: now}
		if err := s.store.AddNote(ctx, n); err != nil {
			return nil, nil, fmt.Errorf("wrap-up %s: note: %w", call.ID, err)
		}
	}
	rec.Wrapup = w
	deriveFlags(rec, s.prices)
	if err := s.store.SaveRecord(ctx, rec); err != nil {
		return nil, nil, fmt.Errorf("wrap-up %s: record: %w", call.ID, err)
	}
	s.finishWrapup(ctx, call)

	s.pub.Publish(Event{Type: EventWrapupDone, Operators: audience(call.Operator, u.Login),
		Payload: Progress{CallID: call.ID, Operator: call.Operator, Record: rec}})
	if res.Promise != nil {
		s.pub.Publish(Event{Type: EventPromiseUpdated, Operators: audience(res.Promise.Owner), Payload: PromiseUpdate{Promise: res.Promise}})
	}
	if s.notifier != nil {
		s.notifier.Notify("wrapup", res)
	}
	s.log.Info("sales: wrap-up", "call", call.ID, "operator", call.Operator, "by", u.Login, "outcome", outcome,
		"forced", forced, "missing", missing, "not_prospective", w.NotProspective)
	return res, missing, nil
}

// finishWrapup clears the operator's pending wrap-up and, once the call is over,
// frees him for the next call. A wrap-up closed during the talk keeps him claimed
// as talking; CallEnded then sees the closed record and releases him.
func (s *Sales) finishWrapup(ctx context.Context, call *Call) {
	if call.Operator == "" {
		return
	}
	if cur, err := s.store.PendingWrapup(ctx, call.Operator); err == nil && cur == call.ID {
		if err := s.store.SetPendingWrapup(ctx, call.Operator, ""); err != nil {
			s.log.Warn("sales: clearing the pending wrap-up failed", "operator", call.Operator, "err", err)
		}
	}
	if call.Live() {
		return
	}
	if err := s.store.Release(ctx, call.Operator, call.ID); err != nil {
		s.log.Warn("sales: releasing the operator after wrap-up failed", "operator", call.Operator, "err", err)
	}
}

func e164Or(s string) string {
	if isE164(s) {
		return s
	}
	return ""
}

// callerPhones are the numbers the call taught: the caller ID (when it is a
// number) and the phones captured, all E.164 (answers are normalised on entry).
func (s *Sales) callerPhones(call *Call, a map[string]string) []string {
	var out []string
	for _, p := range []string{e164Or(call.From), a["contact.phone"], a["contact.mobile"], a["contact.callback_phone"]} {
		if p == "" {
			continue
		}
		if e, err := phone.Normalize(p, s.region); err == nil && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// findContact returns the contact the call is about: the one it popped with, else
// one that owns a number the caller gave (a colleague's phone, a second line).
func (s *Sales) findContact(ctx context.Context, call *Call, rec *Record, phones []string) (*Contact, error) {
	for _, id := range []string{rec.ContactID, call.ContactID} {
		if id == "" {
			continue
		}
		c, err := s.store.Contact(ctx, id)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("wrap-up %s: contact: %w", call.ID, err)
		}
	}
	for _, p := range phones {
		c, err := s.store.ContactByPhone(ctx, p)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("wrap-up %s: contact by phone: %w", call.ID, err)
		}
	}
	return nil, nil
}

// saveContact creates the caller's contact or updates the known one: answered
// fields win (the operator just confirmed them), phones are only ever added, and
// the operator becomes the manager of a contact that has none. A number that
// belongs to another contact is left with him. It returns nil only when a forced
// wrap-up has neither a name nor a number to create a contact from.
func (s *Sales) saveContact(ctx context.Context, call *Call, known *Contact, a map[string]string, phones []string, now time.Time) (*Contact, error) {
	var own []string
	for _, p := range phones {
		other, err := s.store.ContactByPhone(ctx, p)
		switch {
		case err == nil && (known == nil || other.ID != known.ID):
			s.log.Info("sales: number belongs to another contact, not merged", "phone", p, "contact", other.ID)
			continue
		case err != nil && !errors.Is(err, ErrNotFound):
			return nil, fmt.Errorf("wrap-up %s: phone %s: %w", call.ID, p, err)
		}
		own = append(own, p)
	}
	c := known
	if c == nil {
		if a["contact.name"] == "" && len(own) == 0 {
			return nil, nil
		}
		c = &Contact{Name: first(a["contact.name"], phone.Format(firstOf(own)))}
	} else {
		cp := *c
		cp.Phones = slices.Clone(c.Phones)
		c = &cp
	}
	for k, dst := range map[string]*string{"contact.name": &c.Name, "contact.company": &c.Company,
		"contact.position": &c.Position, "contact.email": &c.Email} {
		if v := a[k]; v != "" {
			*dst = v
		}
	}
	c.Phones = mergePhones(c.Phones, own...)
	if c.Manager == "" {
		c.Manager = call.Operator
	}
	c.Updated = now
	if known == nil {
		c.Created = now
		if err := s.store.CreateContact(ctx, c); err != nil {
			return nil, fmt.Errorf("wrap-up %s: create contact: %w", call.ID, err)
		}
		return c, nil
	}
	if err := s.store.UpdateContact(ctx, c); err != nil {
		return nil, fmt.Errorf("wrap-up %s: update contact %s: %w", call.ID, c.ID, err)
	}
	return c, nil
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func talkSeconds(c *Call, now time.Time) int64 {
	if c.Answered == nil {
		return 0
	}
	end := now
	if c.Ended != nil {
		end = *c.Ended
	}
	if d := end.Sub(*c.Answered); d > 0 {
		return int64(d / time.Second)
	}
	return 0
}

// moveInterest creates or moves the contact's open interest by the wrap-up:
//   - deal or interest: created at the stage (first_call by default) or moved to it;
//     its type is the outcome. A deal that reaches "payment" closes as won.
//   - refusal or not_prospective, or a lead the qualification rules marked: closed
//     as lost with the reason (one is created to be closed, so the loss is counted
//     at its stage).
//
// Every change appends a history entry. Without an outcome (a forced wrap-up)
// nothing moves.
func (s *Sales) moveInterest(ctx context.Context, u *User, call *Call, c *Contact, a map[string]string, w *Wrapup, now time.Time) (*Interest, error) {
	if w.Outcome == "" {
		return nil, nil
	}
	open, err := s.store.OpenInterest(ctx, c.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("wrap-up %s: open interest: %w", call.ID, err)
	}
	it := open
	if it == nil {
		typ := first(a["interest.type"], OutcomeInterest)
		it = &Interest{ID: newID(), ContactID: c.ID, Type: typ, Owner: first(c.Manager, call.Operator),
			Stage: Stages[0], State: "open", Created: now}
	} else {
		cp := *open
		cp.History = slices.Clone(open.History)
		it = &cp
	}
	if sum := first(a["need.product"], a["need.task"]); sum != "" {
		it.Summary = sum
	}
	changed := open == nil
	set := func(dst *string, v string) {
		if v != "" && *dst != v {
			*dst, changed = v, true
		}
	}
	switch w.Outcome {
	case OutcomeDeal, OutcomeInterest:
		set(&it.Type, w.Outcome)
	}
	set(&it.Stage, w.Stage)
	switch {
	case w.Outcome == OutcomeRefusal:
		set(&it.State, "lost")
		set(&it.Reason, first(w.Reason, "unspecified"))
	case w.Outcome == OutcomeNotProspective || w.NotProspective != "":
		set(&it.State, "lost")
		set(&it.Reason, ReasonNotProspective)
	case w.Outcome == OutcomeDeal && it.Stage == "payment":
		set(&it.State, "won")
	}
	if !changed {
		return it, nil
	}
	it.Updated = now
	it.History = append(it.History, StageChange{Stage: it.Stage, State: it.State, At: now, By: u.Login, CallID: call.ID})
	if err := s.store.SaveInterest(ctx, it); err != nil {
		return nil, fmt.Errorf("wrap-up %s: interest: %w", call.ID, err)
	}
	return it, nil
}

// Promises lists promises by deadline. state is open (every promise not kept,
// overdue included), overdue, kept or "" for all. For an operator owner "" means
// his own and the pool's, his login his own, "pool" the pool's, and any other
// owner is ErrForbidden; for a supervisor "" means everyone's and "pool" the pool's.
func (s *Sales) Promises(ctx context.Context, u *User, owner, state string) ([]*Promise, error) {
	if u == nil {
		return nil, ErrUnauthorized
	}
	storeState := state
	switch state {
	case PromiseOpen, PromiseKept, "":
	case PromiseOverdue:
		storeState = PromiseOpen
	default:
		return nil, &FieldError{Field: "state", Reason: fmt.Sprintf("%q is not open, overdue or kept", state)}
	}
	var owners []string
	switch {
	case isSupervisor(u) && owner == "":
		owners = []string{"*"}
	case isSupervisor(u) && owner == "pool":
		owners = []string{""}
	case isSupervisor(u):
		owners = []string{owner}
	case owner == "":
		owners = []string{u.Login, ""}
	case owner == u.Login:
		owners = []string{u.Login}
	case owner == "pool":
		owners = []string{""}
	default:
		return nil, fmt.Errorf("promises of %s: %w", owner, ErrForbidden)
	}
	now := s.now()
	var out []*Promise
	for _, o := range owners {
		ps, err := s.store.Promises(ctx, o, storeState)
		if err != nil {
			return nil, fmt.Errorf("promises: %w", err)
		}
		for _, p := range ps {
			if state == PromiseOverdue && !p.Overdue(now) {
				continue
			}
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b *Promise) int { return a.Due.Compare(b.Due) })
	return out, nil
}

// KeepPromise marks a promise kept with its result. Its owner may, anyone may
// keep a pool promise, and a supervisor or admin any. Keeping a kept promise
// again changes nothing.
func (s *Sales) KeepPromise(ctx context.Context, u *User, id, result string) (*Promise, error) {
	if u == nil {
		return nil, ErrUnauthorized
	}
	p, err := s.store.Promise(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("promise %s: %w", id, err)
	}
	if p.Owner != "" && p.Owner != u.Login && !isSupervisor(u) {
		return nil, fmt.Errorf("promise %s belongs to %s: %w", id, p.Owner, ErrForbidden)
	}
	result = strings.TrimSpace(result)
	if len([]rune(result)) > maxTextarea {
		return nil, &FieldError{Field: "result", Reason: "too long"}
	}
	if p.State == PromiseKept {
		return p, nil
	}
	now := s.now()
	p.State, p.KeptAt, p.Result = PromiseKept, &now, result
	if p.Owner == "" {
		p.Owner = u.Login // whoever takes a pool promise answers for it
	}
	if err := s.store.SavePromise(ctx, p); err != nil {
		return nil, fmt.Errorf("keep promise %s: %w", id, err)
	}
	s.pub.Publish(Event{Type: EventPromiseUpdated, Operators: audience(p.Owner, u.Login), Payload: PromiseUpdate{Promise: p}})
	return p, nil
}

// KeptRate reports, per owner, how the promises due in [from, to) were kept.
func (s *Sales) KeptRate(ctx context.Context, from, to time.Time) ([]KeptRate, error) {
	if !to.After(from) {
		return nil, &FieldError{Field: "to", Reason: "must be after from"}
	}
	ps, err := s.store.Promises(ctx, "*", "")
	if err != nil {
		return nil, fmt.Errorf("kept rate: %w", err)
	}
	return keptRates(ps, from, to, s.now()), nil
}

// AddNote keeps a notable detail with the contact.
func (s *Sales) AddNote(ctx context.Context, u *User, contactID, text, callID string) (*Note, error) {
	if u == nil {
		return nil, ErrUnauthorized
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, &FieldError{Field: "text", Reason: "a note needs text"}
	}
	if len([]rune(text)) > maxTextarea {
		return nil, &FieldError{Field: "text", Reason: "too long"}
	}
	if _, err := s.store.Contact(ctx, contactID); err != nil {
		return nil, fmt.Errorf("note on %s: %w", contactID, err)
	}
	n := &Note{ID: newID(), ContactID: contactID, Text: text, By: u.Login, CallID: callID, At: s.now()}
	if err := s.store.AddNote(ctx, n); err != nil {
		return nil, fmt.Errorf("note on %s: %w", contactID, err)
	}
	return n, nil
}

// SetManager sets (or with "" clears) the contact's personal manager, who must be
// an operator. Operators may do it on the card; a supervisor's or admin's change is
// audited.
func (s *Sales) SetManager(ctx context.Context, u *User, contactID, manager string) (*Contact, error) {
	if u == nil {
		return nil, ErrUnauthorized
	}
	manager = strings.TrimSpace(manager)
	if manager != "" {
		m, err := s.store.User(ctx, manager)
		if errors.Is(err, ErrNotFound) || (err == nil && m.Role != RoleOperator) {
			return nil, &FieldError{Field: "manager", Reason: fmt.Sprintf("%q is not an operator", manager)}
		}
		if err != nil {
			return nil, fmt.Errorf("manager %s: %w", manager, err)
		}
	}
	c, err := s.store.Contact(ctx, contactID)
	if err != nil {
		return nil, fmt.Errorf("contact %s: %w", contactID, err)
	}
	if c.Manager == manager {
		return c, nil
	}
	old := c.Manager
	c.Manager, c.Updated = manager, s.now()
	if err := s.store.UpdateContact(ctx, c); err != nil {
		return nil, fmt.Errorf("contact %s: %w", contactID, err)
	}
	if isSupervisor(u) {
		if err := s.store.Audit(ctx, AuditEntry{At: s.now(), Who: u.Login, Action: "contact.manager", Target: contactID,
			Detail: fmt.Sprintf("%q -> %q", old, manager)}); err != nil {
			s.log.Error("sales: audit of a manager change failed", "contact", contactID, "err", err)
		}
	}
	return c, nil
}

// Card is what the desk shows about a known contact: the last calls, the open
// interest, open promises and notes.
func (s *Sales) Card(ctx context.Context, contactID string) (*Card, error) {
	// The four reads are independent, and the card is on the pop's path: read them
	// at once, so the pop waits for the slowest, not for their sum.
	var (
		wg                               sync.WaitGroup
		calls                            []CallSummary
		it                               *Interest
		ps                               []*Promise
		notes                            []Note
		errCalls, errIt, errPs, errNotes error
	)
	wg.Go(func() { calls, errCalls = s.store.History(ctx, contactID, 10) })
	wg.Go(func() { it, errIt = s.store.OpenInterest(ctx, contactID) })
	wg.Go(func() { ps, errPs = s.store.ContactPromises(ctx, contactID) })
	wg.Go(func() { notes, errNotes = s.store.Notes(ctx, contactID, 20) })
	wg.Wait()
	switch {
	case errCalls != nil:
		return nil, fmt.Errorf("card %s: history: %w", contactID, errCalls)
	case errIt != nil && !errors.Is(errIt, ErrNotFound):
		return nil, fmt.Errorf("card %s: interest: %w", contactID, errIt)
	case errPs != nil:
		return nil, fmt.Errorf("card %s: promises: %w", contactID, errPs)
	case errNotes != nil:
		return nil, fmt.Errorf("card %s: notes: %w", contactID, errNotes)
	}
	card := &Card{Calls: calls, Promises: []*Promise{}, Notes: []Note{}}
	if card.Calls == nil {
		card.Calls = []CallSummary{}
	}
	if errIt == nil {
		card.Interest = it
	}
	if ps != nil {
		card.Promises = ps
	}
	if notes != nil {
		card.Notes = notes
	}
	return card, nil
}

// Audit returns the newest audit entries; supervisors and admins only.
func (s *Sales) Audit(ctx context.Context, u *User, limit int) ([]AuditEntry, error) {
	if !isSupervisor(u) {
		return nil, fmt.Errorf("audit: %w", ErrForbidden)
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.store.AuditLog(ctx, limit)
}

// CallEnded holds the operator of an answered call in wrap-up: the call is his
// pending wrap-up and his claim stays, as StatusWrapup for WrapupTTL, so no call
// rings him until he closes it (or a supervisor does). A record already closed
// during the talk frees him at once.
func (s *Sales) CallEnded(ctx context.Context, c *Call) {
	if c == nil || c.Operator == "" {
		return
	}
	if rec, err := s.store.Record(ctx, c.ID); err == nil && rec.Wrapup != nil {
		if err := s.store.Release(ctx, c.Operator, c.ID); err != nil {
			s.log.Warn("sales: release after an early wrap-up failed", "operator", c.Operator, "err", err)
		}
		return
	}
	if err := s.store.SetPendingWrapup(ctx, c.Operator, c.ID); err != nil {
		s.log.Error("sales: pending wrap-up not stored", "operator", c.Operator, "call", c.ID, "err", err)
	}
	err := s.store.UpdateClaim(ctx, c.Operator, c.ID, StatusWrapup, s.wrapupTTL)
	if errors.Is(err, ErrNotFound) {
		err = s.store.Claim(ctx, c.Operator, c.ID, StatusWrapup, s.wrapupTTL)
	}
	if err != nil {
		s.log.Warn("sales: holding the operator in wrap-up failed", "operator", c.Operator, "call", c.ID, "err", err)
	}
}

// CallMissed turns a missed or abandoned call into a "callback" promise due in
// CallbackDue, owned by the contact's personal manager or else by the pool (""),
// and adds the call to a known contact's history. A caller who rings again while
// his callback is open gets no second one; an anonymous caller none at all.
//
// A callback whose customer did not answer (Call.Unreached) comes here too: it
// goes into the contact's history as "unreached" and into the audit log, and the
// promise it dialled for stays open.
func (s *Sales) CallMissed(ctx context.Context, c *Call) {
	if c == nil || c.Direction == DirectionCallback && c.Unreached == 0 {
		// A callback the operator could not take was never the customer's call:
		// it leaves no missed call in his history and no new callback promise.
		return
	}
	now := s.now()
	var contact *Contact
	if c.ContactID != "" {
		contact, _ = s.store.Contact(ctx, c.ContactID)
	} else if isE164(c.From) {
		contact, _ = s.store.ContactByPhone(ctx, c.From)
	}
	outcome := "missed"
	if c.Unreached != 0 {
		outcome = OutcomeUnreached
	}
	if contact != nil {
		if err := s.store.AddHistory(ctx, contact.ID, CallSummary{CallID: c.ID, At: c.Started, Operator: c.Operator, Outcome: outcome,
			Recorded: c.Recorded && c.Talked()}); err != nil {
			s.log.Warn("sales: history of a missed call not stored", "call", c.ID, "err", err)
		}
	}
	if c.Unreached != 0 {
		target := "call " + c.ID
		if c.PromiseID != "" {
			target = "promise " + c.PromiseID
		}
		if err := s.store.Audit(ctx, AuditEntry{At: now, Who: c.Operator, Action: "callback.unreached", Target: target,
			Detail: fmt.Sprintf("call %s: %s (%d)", c.ID, c.Reason, c.Unreached)}); err != nil {
			s.log.Error("sales: audit of an unreached callback failed", "call", c.ID, "err", err)
		}
		return
	}
	if !isE164(c.From) {
		return
	}
	owner := ""
	if contact != nil {
		owner = contact.Manager
	}
	existing, err := s.store.Promises(ctx, owner, PromiseOpen)
	if err != nil {
		s.log.Error("sales: callback promise not created", "call", c.ID, "err", err)
		return
	}
	for _, p := range existing {
		if p.Kind == "callback" && p.Phone == c.From {
			return
		}
	}
	p := &Promise{ID: "cb-" + c.ID, Phone: c.From, CallID: c.ID, Owner: owner, Kind: "callback", What: "call back",
		Due: now.Add(s.callbackDue), Created: now, State: PromiseOpen}
	if contact != nil {
		p.ContactID = contact.ID
	}
	if err := s.store.SavePromise(ctx, p); err != nil {
		s.log.Error("sales: callback promise not saved", "call", c.ID, "err", err)
		return
	}
	s.pub.Publish(Event{Type: EventPromiseUpdated, Operators: audience(owner), Payload: PromiseUpdate{Promise: p}})
}

// Pending returns the call the operator still has to wrap up, with its record;
// nil when none.
func (s *Sales) Pending(ctx context.Context, login string) (*Call, *Record, error) {
	id, err := s.store.PendingWrapup(ctx, login)
	if err != nil || id == "" {
		return nil, nil, err
	}
	call, err := s.call(ctx, id)
	if errors.Is(err, ErrNotFound) {
		_ = s.store.SetPendingWrapup(ctx, login, "")
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	rec, err := s.recordOf(ctx, call)
	if err != nil {
		return nil, nil, err
	}
	if rec.Wrapup != nil { // closed, but the clearing was lost
		_ = s.store.SetPendingWrapup(ctx, login, "")
		return nil, nil, nil
	}
	return call, rec, nil
}

// RunScheduler raises overdue promises every second while this node holds the
// "promises" lease, until ctx ends.
func (s *Sales) RunScheduler(ctx context.Context, node string) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		ok, err := s.store.Lease(ctx, "promises", node, leaseTTL)
		if err != nil {
			s.log.Debug("sales: scheduler lease failed", "err", err)
			continue
		}
		if !ok {
			continue
		}
		if _, err := s.CheckOverdue(ctx); err != nil {
			s.log.Warn("sales: overdue check failed", "err", err)
		}
	}
}

// CheckOverdue raises promise.overdue, to the owner and supervisors, once for each
// promise now past due, and returns how many it raised.
func (s *Sales) CheckOverdue(ctx context.Context) (int, error) {
	now := s.now()
	due, err := s.store.DuePromises(ctx, now)
	if err != nil {
		return 0, fmt.Errorf("due promises: %w", err)
	}
	n := 0
	for _, p := range due {
		if p.State != PromiseOpen || p.Notified {
			continue
		}
		p.Notified = true
		if err := s.store.SavePromise(ctx, p); err != nil {
			return n, fmt.Errorf("promise %s: %w", p.ID, err)
		}
		s.pub.Publish(Event{Type: EventPromiseOverdue, Operators: audience(p.Owner), Payload: PromiseUpdate{Promise: p}})
		n++
	}
	return n, nil
}
