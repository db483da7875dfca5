package desk

import "time"

// Record is the sales record of one call: what the operator captured while walking
// the script. Answers are keyed by the field's bind ("contact.name", "source",
// "promise.due", see yamlfile.Binds), or "STEP.FIELD" for a field without one, so
// the wrap-up rules hold however a script is arranged.
type Record struct {
	CallID    string            `json:"call_id"`
	Operator  string            `json:"operator"`
	ContactID string            `json:"contact_id,omitempty"`
	Line      string            `json:"line,omitempty"`
	Script    string            `json:"script,omitempty"`
	Step      string            `json:"step,omitempty"` // the step the operator is on
	Answers   map[string]string `json:"answers"`
	// Ops counts the operations applied; a replayed op does not count.
	Ops     int64     `json:"ops"`
	Updated time.Time `json:"updated"`
	// PresetSource is the line's call-tracking source; SourceMismatch is set when the
	// source the caller named differs from it.
	PresetSource   string `json:"preset_source,omitempty"`
	SourceMismatch bool   `json:"source_mismatch,omitempty"`
	// Range is set once a price range was given for a product: the record notes that
	// a range, never a bare price, was named.
	Range  *PriceRange `json:"range,omitempty"`
	Wrapup *Wrapup     `json:"wrapup,omitempty"`
	// NoWrapup is set when the call owes no wrap-up and never will: a callback
	// whose customer was not reached (Call.Unreached). Derived from the call on
	// every read, so a page that missed the call's end learns it here.
	NoWrapup bool `json:"no_wrapup,omitempty"`
}

// PriceRange is what the operator may name for a product: min to max, in a currency.
type PriceRange struct {
	Product  string  `json:"product" yaml:"product"`
	Min      float64 `json:"min" yaml:"min"`
	Max      float64 `json:"max" yaml:"max"`
	Currency string  `json:"currency" yaml:"currency"`
}

// AnswerOp is one change the page sends: fields of a step, with an id the page
// generated so a resend after a drop is applied once.
type AnswerOp struct {
	Op     string            `json:"op"`
	Step   string            `json:"step"`
	Fields map[string]string `json:"fields"`
	By     string            `json:"by,omitempty"`
	At     time.Time         `json:"at"`
}

// Outcomes of a call's wrap-up.
const (
	OutcomeDeal           = "deal"     // a potential deal: the caller named an exact product
	OutcomeInterest       = "interest" // the caller described a task
	OutcomeNotProspective = "not_prospective"
	OutcomeRefusal        = "refusal"
)

// Refusal reasons: an interest closes only as a deal or as a refusal with one of these.
const (
	ReasonUnreachable    = "unreachable"
	ReasonCompetitor     = "competitor"
	ReasonNotProspective = "not_prospective"
)

// Stages of the sales funnel, in order.
var Stages = []string{"first_call", "needs_identified", "meeting", "contract", "payment"}

// Wrapup closes a call's record. The server refuses it while required items are
// missing; a supervisor may force it, and that is audited.
type Wrapup struct {
	Outcome  string    `json:"outcome"`
	Reason   string    `json:"reason,omitempty"` // refusal reason
	Stage    string    `json:"stage,omitempty"`
	Note     string    `json:"note,omitempty"`
	ClosedAt time.Time `json:"closed_at"`
	ClosedBy string    `json:"closed_by"`
	Forced   bool      `json:"forced,omitempty"`
	// What the wrap-up wrote.
	InterestID string `json:"interest_id,omitempty"`
	PromiseID  string `json:"promise_id,omitempty"`
	MeetingID  string `json:"meeting_id,omitempty"`
	// NotProspective is set when the qualification rules marked the lead, with why.
	NotProspective string `json:"not_prospective,omitempty"`
}

// Interest is what a contact wants: an interest (a task) or a potential deal (an
// exact product). It moves through the funnel and closes only as a deal (won) or as
// a refusal with a reason (lost).
type Interest struct {
	ID        string        `json:"id"`
	ContactID string        `json:"contact_id"`
	Type      string        `json:"type"` // "interest" or "deal"
	Summary   string        `json:"summary,omitempty"`
	Owner     string        `json:"owner"` // manager login
	Stage     string        `json:"stage"`
	State     string        `json:"state"` // "open", "won", "lost"
	Reason    string        `json:"reason,omitempty"`
	Created   time.Time     `json:"created"`
	Updated   time.Time     `json:"updated"`
	History   []StageChange `json:"history"`
}

// StageChange is one move of an interest along the funnel.
type StageChange struct {
	Stage  string    `json:"stage"`
	State  string    `json:"state"`
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	CallID string    `json:"call_id,omitempty"`
}

// Promise states. Overdue is not stored: an open promise past its due time is overdue.
const (
	PromiseOpen    = "open"
	PromiseKept    = "kept"
	PromiseOverdue = "overdue"
)

// Promise is what an operator promised a caller (check stock, send an offer, call
// back) and by when. A missed call becomes a "callback" promise by itself.
type Promise struct {
	ID        string     `json:"id"`
	ContactID string     `json:"contact_id,omitempty"`
	Phone     string     `json:"phone,omitempty"` // whom to call back, E.164
	CallID    string     `json:"call_id,omitempty"`
	Owner     string     `json:"owner"` // login; "" is the pool
	Kind      string     `json:"kind"`  // "promise" or "callback"
	What      string     `json:"what"`
	Due       time.Time  `json:"due"`
	Created   time.Time  `json:"created"`
	State     string     `json:"state"` // open or kept; see Overdue
	KeptAt    *time.Time `json:"kept_at,omitempty"`
	Result    string     `json:"result,omitempty"`
	// Notified is set once promise.overdue was raised, so it is raised once.
	Notified bool `json:"notified,omitempty"`
}

// Overdue reports whether p is open past its due time.
func (p *Promise) Overdue(now time.Time) bool { return p.State == PromiseOpen && now.After(p.Due) }

// Meeting is the first-contact goal: a meeting or demo with a date and a format.
type Meeting struct {
	ID        string    `json:"id"`
	ContactID string    `json:"contact_id"`
	CallID    string    `json:"call_id,omitempty"`
	Owner     string    `json:"owner"`
	At        time.Time `json:"at"`
	Format    string    `json:"format"` // office, client_site, online
	Created   time.Time `json:"created"`
}

// Note is a notable detail learnt about a contact, kept with the contact whoever
// his manager is.
type Note struct {
	ID        string    `json:"id"`
	ContactID string    `json:"contact_id"`
	Text      string    `json:"text"`
	By        string    `json:"by"`
	CallID    string    `json:"call_id,omitempty"`
	At        time.Time `json:"at"`
}

// OutcomeUnreached is the history outcome of a callback whose customer did not
// answer (Call.Unreached).
const OutcomeUnreached = "unreached"

// CallSummary is one past call on a contact's card.
type CallSummary struct {
	CallID   string    `json:"call_id"`
	At       time.Time `json:"at"`
	Operator string    `json:"operator"`
	Outcome  string    `json:"outcome"` // the wrap-up outcome, "missed", or OutcomeUnreached
	Seconds  int64     `json:"seconds"` // talk time
	// Recorded is set when the call was answered on a recording line: the card
	// offers its recording (GET /api/calls/{call_id}/recording) to the roles
	// allowed to play it.
	Recorded bool `json:"recorded,omitempty"`
}

// Card is what the desk shows about a known contact on the next call.
type Card struct {
	Calls    []CallSummary `json:"calls"`              // newest first, at most 10
	Interest *Interest     `json:"interest,omitempty"` // the open one
	Promises []*Promise    `json:"promises"`           // open, by due time
	Notes    []Note        `json:"notes"`              // newest first, at most 20
}

// AuditEntry records an action of an admin or supervisor.
type AuditEntry struct {
	At     time.Time `json:"at"`
	Who    string    `json:"who"`
	Action string    `json:"action"` // e.g. "wrapup.force", "contact.manager"
	Target string    `json:"target"`
	Detail string    `json:"detail,omitempty"`
}

// Event types of the sales record.
const (
	EventScriptProgress = "script.progress" // payload Progress
	EventPromiseOverdue = "promise.overdue" // payload PromiseUpdate
	EventPromiseUpdated = "promise.updated" // payload PromiseUpdate: created or kept
	EventWrapupDone     = "wrapup.done"     // payload Progress with the closed record
)

// Progress is the payload of script.progress: the step and the captured fields, so
// supervisors watch answers appear.
type Progress struct {
	CallID   string  `json:"call_id"`
	Operator string  `json:"operator"`
	Record   *Record `json:"record"`
}

// PromiseUpdate is the payload of promise.overdue and promise.updated.
type PromiseUpdate struct {
	Promise *Promise `json:"promise"`
}
