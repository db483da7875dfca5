package desk

import "time"

// Whisper is a text message a supervisor pins on an operator's page during (or
// between) calls. The operator acknowledges it and the supervisor sees that.
type Whisper struct {
	ID       string     `json:"id"`
	Operator string     `json:"operator"`
	By       string     `json:"by"`
	Text     string     `json:"text"`
	CallID   string     `json:"call_id,omitempty"` // the call he was on, if any; the whisper is kept with it
	At       time.Time  `json:"at"`
	AckedAt  *time.Time `json:"acked_at,omitempty"`
}

// Event types of the supervisor's desk.
const (
	EventWhisper    = "whisper"     // payload WhisperUpdate, to the operator and supervisors
	EventWhisperAck = "whisper.ack" // payload WhisperUpdate, to the operator and supervisors
)

// WhisperUpdate is the payload of whisper and whisper.ack frames.
type WhisperUpdate struct {
	Whisper *Whisper `json:"whisper"`
}

// Reassignment moves what a manager owns to another: a contact (personal manager),
// an interest (owner) or a promise (owner). With IDs empty it moves all of From's
// open items of that kind ("all of Ivan's open promises to Maria").
type Reassignment struct {
	Kind string   `json:"kind"` // "contact", "interest" or "promise"
	IDs  []string `json:"ids,omitempty"`
	From string   `json:"from,omitempty"`
	To   string   `json:"to"`
}

// ReassignResult says how many items moved, by kind.
type ReassignResult struct {
	Contacts  int `json:"contacts"`
	Interests int `json:"interests"`
	Promises  int `json:"promises"`
}

// ReportQuery selects what a report aggregates: [From, To), optionally one manager
// (operator login) or one line. Days and hours are counted in Location.
type ReportQuery struct {
	From     time.Time      `json:"from"`
	To       time.Time      `json:"to"`
	Manager  string         `json:"manager,omitempty"`
	Line     string         `json:"line,omitempty"`
	Location *time.Location `json:"-"`
}

// Report is a server-side aggregation: one or more tables, each a header and rows,
// so the same value serves JSON, CSV and the charts.
type Report struct {
	Name   string    `json:"name"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Tables []Table   `json:"tables"`
}

// Table is one table of a report. Cells are strings or numbers.
type Table struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}
