package desk

// Reports are server-side aggregations over a date range, for supervisors and
// admins: calls, sources, funnel, promises and meetings. Each is a Report of
// tables (header and rows), so one value serves JSON, CSV and the charts.
//
// What each report counts, precisely:
//
//   - calls: the calls started in [From, To). "per_day" has a row for every day of
//     the range in the desk's zone, "per_hour" a row for every hour 0..23.
//     answered = calls talked (Call.Talked: answered, and not a callback whose
//     customer was never reached); missed = calls that ended unanswered;
//     abandoned_while_ringing = missed calls the caller gave up on while they rang
//     (Reason "cancelled", SIP 487); the rest of the missed found nobody to take them
//     (no operator, timeout). avg_answer_seconds = mean of Answered - Started.
//   - sources: calls in the range by channel. The channel is the source the caller
//     named (the record's answers["source"]), else the line's preset source (call
//     tracking), else "unknown". leads = distinct callers (contact, else number).
//     mismatches = calls whose named source differs from the line's preset. cost is
//     the channel's cost (config, overridden per channel by an admin) and
//     cost_per_lead = cost / leads; both are empty when no cost is set. The "lines"
//     table gives, per line, the calls where a source was named and the share of
//     those that disagreed with the preset.
//   - funnel: "open" = interests open at the end of the range, by manager and the
//     stage they were at then (from their history). "conversion" = among the
//     interests created in the range, how many reached each stage and the next (an
//     interest that reached a stage is counted at every stage before it). "loss" =
//     interests lost in the range, by the stage they were at; "reasons" = the same
//     by refusal reason.
//   - promises: the kept-rate of promises due in the range, per owner (the pool is
//     "pool"): on time, late, missed (open past due), open (not yet due), rate.
//   - meetings: meetings set (created) in the range per owner; first_calls = the
//     answered calls in the range whose caller had no earlier answered call (the
//     contact's history, else the same number earlier in the range);
//     meetings_on_first_call = meetings set on one of those calls; first_call_rate =
//     meetings_on_first_call / first_calls, the first-contact goal.
//
// The manager filter keeps what the manager handled or owns (calls he took, the
// interests, promises and meetings he owns); the line filter keeps calls on the
// line and the interests, promises and meetings made on such calls.

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Report names.
const (
	ReportCalls    = "calls"
	ReportSources  = "sources"
	ReportFunnel   = "funnel"
	ReportPromises = "promises"
	ReportMeetings = "meetings"
)

// ReportNames lists the reports in the order the page shows them.
var ReportNames = []string{ReportCalls, ReportSources, ReportFunnel, ReportPromises, ReportMeetings}

// MaxReportDays bounds a report's range, so one request cannot read years of calls.
const MaxReportDays = 400

// UnknownSource is the channel of calls where no source was named or preset.
const UnknownSource = "unknown"

// PoolOwner names the pool (promises owned by nobody) in reports and filters.
const PoolOwner = "pool"

// ChannelCosts is what each source channel costs, in one currency: from the
// configuration, or entered by an admin (By and Updated then say who and when).
type ChannelCosts struct {
	Currency string             `json:"currency"`
	Costs    map[string]float64 `json:"costs"`
	By       string             `json:"by,omitempty"`
	Updated  time.Time          `json:"updated,omitzero"`
}

// CostsView is what GET /api/config/costs shows: the costs in force (the config's,
// each channel overridden by the admin's), and both parts.
type CostsView struct {
	Currency  string             `json:"currency"`
	Costs     map[string]float64 `json:"costs"`
	Config    ChannelCosts       `json:"config"`
	Overrides *ChannelCosts      `json:"overrides"`
}

// Limits of admin-entered channel costs.
const (
	maxChannels = 100
	maxCost     = 1e12
)

var (
	channelPattern  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// Reports computes the reports from the store.
type Reports struct {
	store    Store
	now      func() time.Time
	loc      *time.Location
	costs    ChannelCosts
	sources  []string
	presets  map[string]string // line number → preset source
	maxRange time.Duration
}

// ReportsOption configures Reports.
type ReportsOption func(*Reports)

// WithReportsClock replaces time.Now, for tests.
func WithReportsClock(now func() time.Time) ReportsOption {
	return func(r *Reports) {
		if now != nil {
			r.now = now
		}
	}
}

// WithReportsLocation sets the zone days and hours are counted in (default Europe/Moscow).
func WithReportsLocation(loc *time.Location) ReportsOption {
	return func(r *Reports) {
		if loc != nil {
			r.loc = loc
		}
	}
}

// WithChannelCosts sets the configured cost of each source channel and their
// currency; an admin's entries (stored) override them channel by channel.
func WithChannelCosts(costs map[string]float64, currency string) ReportsOption {
	return func(r *Reports) { r.costs = ChannelCosts{Currency: currency, Costs: maps.Clone(costs)} }
}

// WithReportsSources sets the known source channels in the order the sources
// report lists them (each gets a row, even with no calls). Admin-entered costs
// must name one of them.
func WithReportsSources(ids []string) ReportsOption {
	return func(r *Reports) { r.sources = slices.Clone(ids) }
}

// WithReportsLines sets the lines, whose preset source a call without a named
// source is counted under.
func WithReportsLines(lines []Line) ReportsOption {
	return func(r *Reports) {
		r.presets = map[string]string{}
		for _, l := range lines {
			if l.Source != "" {
				r.presets[l.Number] = l.Source
			}
		}
	}
}

// NewReports returns the reports on store.
func NewReports(store Store, opts ...ReportsOption) *Reports {
	r := &Reports{store: store, now: time.Now, presets: map[string]string{}, maxRange: MaxReportDays * 24 * time.Hour}
	if loc, err := time.LoadLocation("Europe/Moscow"); err == nil {
		r.loc = loc
	} else {
		r.loc = time.UTC
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Run computes the named report over q. Supervisors and admins only.
func (r *Reports) Run(ctx context.Context, u *User, name string, q ReportQuery) (*Report, error) {
	if u == nil {
		return nil, ErrUnauthorized
	}
	if !isSupervisor(u) {
		return nil, fmt.Errorf("report %s: %w", name, ErrForbidden)
	}
	if !slices.Contains(ReportNames, name) {
		return nil, fmt.Errorf("report %q: %w", name, ErrNotFound)
	}
	switch {
	case q.From.IsZero():
		return nil, &FieldError{Field: "from", Reason: "required"}
	case q.To.IsZero():
		return nil, &FieldError{Field: "to", Reason: "required"}
	case !q.To.After(q.From):
		return nil, &FieldError{Field: "to", Reason: "must be after from"}
	case q.To.Sub(q.From) > r.maxRange:
		return nil, &FieldError{Field: "to", Reason: fmt.Sprintf("a report covers at most %d days", MaxReportDays)}
	}
	if q.Location == nil {
		q.Location = r.loc
	}
	rep := &Report{Name: name, From: q.From, To: q.To}
	var err error
	switch name {
	case ReportCalls:
		rep.Tables, err = r.calls(ctx, q)
	case ReportSources:
		rep.Tables, err = r.sourcesReport(ctx, q)
	case ReportFunnel:
		rep.Tables, err = r.funnel(ctx, q)
	case ReportPromises:
		rep.Tables, err = r.promises(ctx, q)
	case ReportMeetings:
		rep.Tables, err = r.meetings(ctx, q)
	}
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", name, err)
	}
	return rep, nil
}

// callsIn returns the calls started in the range that pass the filters.
func (r *Reports) callsIn(ctx context.Context, q ReportQuery) ([]*Call, error) {
	all, err := r.store.CallsBetween(ctx, q.From, q.To)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, c := range all {
		if (q.Manager == "" || c.Operator == q.Manager) && (q.Line == "" || c.Line == q.Line) {
			out = append(out, c)
		}
	}
	return out, nil
}

// abandoned reports whether the caller gave up while the call rang.
func abandoned(c *Call) bool { return c.State == CallMissed && c.Reason == "cancelled" }

type callCounts struct {
	calls, answered, missed, abandoned int
	answerSum                          time.Duration
}

func (k *callCounts) add(c *Call) {
	k.calls++
	if c.Talked() {
		k.answered++
		if d := c.Answered.Sub(c.Started); d > 0 {
			k.answerSum += d
		}
	}
	if c.State == CallMissed {
		k.missed++
		if abandoned(c) {
			k.abandoned++
		}
	}
}

func (k *callCounts) avgAnswer() float64 {
	if k.answered == 0 {
		return 0
	}
	return round(k.answerSum.Seconds()/float64(k.answered), 1)
}

func (r *Reports) calls(ctx context.Context, q ReportQuery) ([]Table, error) {
	calls, err := r.callsIn(ctx, q)
	if err != nil {
		return nil, err
	}
	loc := q.Location
	days := map[string]*callCounts{}
	var hours [24]callCounts
	for _, c := range calls {
		t := c.Started.In(loc)
		d := t.Format(time.DateOnly)
		if days[d] == nil {
			days[d] = &callCounts{}
		}
		days[d].add(c)
		hours[t.Hour()].add(c)
	}
	perDay := Table{Name: "per_day", Columns: []string{"date", "calls", "answered", "missed", "abandoned_while_ringing", "avg_answer_seconds"}, Rows: [][]any{}}
	first := q.From.In(loc)
	for d := time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, loc); d.Before(q.To); d = d.AddDate(0, 0, 1) {
		k := days[d.Format(time.DateOnly)]
		if k == nil {
			k = &callCounts{}
		}
		perDay.Rows = append(perDay.Rows, []any{d.Format(time.DateOnly), k.calls, k.answered, k.missed, k.abandoned, k.avgAnswer()})
	}
	perHour := Table{Name: "per_hour", Columns: []string{"hour", "calls", "answered", "missed", "abandoned_while_ringing", "avg_answer_seconds"}, Rows: [][]any{}}
	for h := range hours {
		k := &hours[h]
		perHour.Rows = append(perHour.Rows, []any{h, k.calls, k.answered, k.missed, k.abandoned, k.avgAnswer()})
	}
	return []Table{perDay, perHour}, nil
}

// callerKey identifies the caller of a call: his contact, else his number, else
// the call itself (an anonymous caller is one of a kind).
func callerKey(c *Call, rec *Record) string {
	switch {
	case c.ContactID != "":
		return "contact:" + c.ContactID
	case rec != nil && rec.ContactID != "":
		return "contact:" + rec.ContactID
	case isE164(c.From):
		return "phone:" + c.From
	}
	return "call:" + c.ID
}

func callIDs(calls []*Call) []string {
	ids := make([]string, len(calls))
	for i, c := range calls {
		ids[i] = c.ID
	}
	return ids
}

// effectiveCosts merges the config's costs with the admin's overrides.
func (r *Reports) effectiveCosts(ctx context.Context) (*CostsView, error) {
	over, err := r.store.ChannelCosts(ctx)
	if err != nil {
		return nil, err
	}
	v := &CostsView{Currency: r.costs.Currency, Costs: map[string]float64{}, Config: r.costs, Overrides: over}
	if v.Config.Costs == nil {
		v.Config.Costs = map[string]float64{}
	}
	maps.Copy(v.Costs, r.costs.Costs)
	if over != nil {
		maps.Copy(v.Costs, over.Costs)
		if over.Currency != "" {
			v.Currency = over.Currency
		}
	}
	return v, nil
}

type sourceCounts struct {
	calls, mismatches int
	leads             map[string]bool
}

type lineCounts struct {
	preset                 string
	calls, named, mismatch int
}

func (r *Reports) sourcesReport(ctx context.Context, q ReportQuery) ([]Table, error) {
	calls, err := r.callsIn(ctx, q)
	if err != nil {
		return nil, err
	}
	recs, err := r.store.Records(ctx, callIDs(calls))
	if err != nil {
		return nil, err
	}
	costs, err := r.effectiveCosts(ctx)
	if err != nil {
		return nil, err
	}
	by := map[string]*sourceCounts{}
	lines := map[string]*lineCounts{}
	for _, c := range calls {
		rec := recs[c.ID]
		named, preset := "", r.presets[c.Line]
		if rec != nil {
			named = strings.TrimSpace(rec.Answers["source"])
			if rec.PresetSource != "" {
				preset = rec.PresetSource
			}
		}
		src := first(named, preset, UnknownSource)
		mismatch := named != "" && preset != "" && named != preset
		k := by[src]
		if k == nil {
			k = &sourceCounts{leads: map[string]bool{}}
			by[src] = k
		}
		k.calls++
		k.leads[callerKey(c, rec)] = true
		if mismatch {
			k.mismatches++
		}
		lc := lines[c.Line]
		if lc == nil {
			lc = &lineCounts{preset: r.presets[c.Line]}
			lines[c.Line] = lc
		}
		if lc.preset == "" {
			lc.preset = preset
		}
		lc.calls++
		if named != "" {
			lc.named++
		}
		if mismatch {
			lc.mismatch++
		}
	}
	order := slices.Clone(r.sources)
	var extra []string
	for s := range by {
		if !slices.Contains(order, s) && s != UnknownSource {
			extra = append(extra, s)
		}
	}
	sort.Strings(extra)
	order = append(order, extra...)
	if by[UnknownSource] != nil {
		order = append(order, UnknownSource)
	}
	channels := Table{Name: "channels", Columns: []string{"source", "calls", "leads", "mismatches", "mismatch_share", "cost", "cost_per_lead", "currency"}, Rows: [][]any{}}
	for _, s := range order {
		k := by[s]
		if k == nil {
			k = &sourceCounts{}
		}
		var cost, perLead any
		currency := ""
		if v, ok := costs.Costs[s]; ok {
			cost, currency = v, costs.Currency
			if len(k.leads) > 0 {
				perLead = round(v/float64(len(k.leads)), 2)
			}
		}
		channels.Rows = append(channels.Rows, []any{s, k.calls, len(k.leads), k.mismatches, share(k.mismatches, k.calls), cost, perLead, currency})
	}
	byLine := Table{Name: "lines", Columns: []string{"line", "preset_source", "calls", "source_named", "mismatches", "mismatch_share"}, Rows: [][]any{}}
	for _, l := range slices.Sorted(maps.Keys(lines)) {
		k := lines[l]
		byLine.Rows = append(byLine.Rows, []any{l, k.preset, k.calls, k.named, k.mismatch, share(k.mismatch, k.named)})
	}
	return []Table{channels, byLine}, nil
}

// creatingCall is the call an interest was created on, "" when unknown.
func creatingCall(it *Interest) string {
	for _, h := range it.History {
		if h.CallID != "" {
			return h.CallID
		}
	}
	return ""
}

// lineFilter returns whether a thing made on callID passes the line filter; it
// reads the calls it needs in one round trip.
func (r *Reports) lineFilter(ctx context.Context, q ReportQuery, ids []string) (func(callID string) bool, error) {
	if q.Line == "" {
		return func(string) bool { return true }, nil
	}
	calls, err := r.store.CallsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	return func(id string) bool {
		c := calls[id]
		return c != nil && c.Line == q.Line
	}, nil
}

// stageAt is where the interest stood just before t: its last history entry
// before t. ok is false when it did not exist yet.
func stageAt(it *Interest, t time.Time) (stage, state string, ok bool) {
	for _, h := range it.History {
		if h.At.Before(t) {
			stage, state, ok = h.Stage, h.State, true
		}
	}
	if !ok && len(it.History) == 0 && it.Created.Before(t) {
		return it.Stage, it.State, true
	}
	return stage, state, ok
}

// furthest is the index of the furthest stage the interest ever reached, -1 when none.
func furthest(it *Interest) int {
	best := slices.Index(Stages, it.Stage)
	for _, h := range it.History {
		best = max(best, slices.Index(Stages, h.Stage))
	}
	return best
}

// lostIn returns the stage the interest was lost at, when that happened in [from, to).
func lostIn(it *Interest, from, to time.Time) (string, bool) {
	for _, h := range it.History {
		if h.State == "lost" {
			if !h.At.Before(from) && h.At.Before(to) {
				return h.Stage, true
			}
			return "", false
		}
	}
	if len(it.History) == 0 && it.State == "lost" && !it.Updated.Before(from) && it.Updated.Before(to) {
		return it.Stage, true
	}
	return "", false
}

func (r *Reports) funnel(ctx context.Context, q ReportQuery) ([]Table, error) {
	all, err := r.store.Interests(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, it := range all {
		if id := creatingCall(it); id != "" {
			ids = append(ids, id)
		}
	}
	onLine, err := r.lineFilter(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	var its []*Interest
	for _, it := range all {
		if (q.Manager == "" || it.Owner == q.Manager) && onLine(creatingCall(it)) {
			its = append(its, it)
		}
	}

	open := map[string][]int{}
	reached := make([]int, len(Stages))
	lost := map[string]int{}
	reasons := map[string]int{}
	for _, it := range its {
		if stage, state, ok := stageAt(it, q.To); ok && state == "open" {
			if i := slices.Index(Stages, stage); i >= 0 {
				if open[it.Owner] == nil {
					open[it.Owner] = make([]int, len(Stages))
				}
				open[it.Owner][i]++
			}
		}
		if !it.Created.Before(q.From) && it.Created.Before(q.To) {
			for i := 0; i <= furthest(it); i++ {
				reached[i]++
			}
		}
		if stage, ok := lostIn(it, q.From, q.To); ok {
			lost[stage]++
			reasons[first(it.Reason, "unspecified")]++
		}
	}

	openT := Table{Name: "open", Columns: append(append([]string{"manager"}, Stages...), "total"), Rows: [][]any{}}
	for _, m := range slices.Sorted(maps.Keys(open)) {
		row := []any{ownerName(m)}
		total := 0
		for _, n := range open[m] {
			row = append(row, n)
			total += n
		}
		openT.Rows = append(openT.Rows, append(row, total))
	}
	conv := Table{Name: "conversion", Columns: []string{"from_stage", "to_stage", "reached_from", "reached_to", "rate"}, Rows: [][]any{}}
	for i := 0; i+1 < len(Stages); i++ {
		conv.Rows = append(conv.Rows, []any{Stages[i], Stages[i+1], reached[i], reached[i+1], share(reached[i+1], reached[i])})
	}
	loss := Table{Name: "loss", Columns: []string{"stage", "lost"}, Rows: [][]any{}}
	for _, s := range Stages {
		loss.Rows = append(loss.Rows, []any{s, lost[s]})
	}
	for _, s := range slices.Sorted(maps.Keys(lost)) {
		if !slices.Contains(Stages, s) {
			loss.Rows = append(loss.Rows, []any{s, lost[s]})
		}
	}
	reasonT := Table{Name: "reasons", Columns: []string{"reason", "count"}, Rows: [][]any{}}
	known := []string{ReasonUnreachable, ReasonCompetitor, ReasonNotProspective}
	for _, k := range known {
		reasonT.Rows = append(reasonT.Rows, []any{k, reasons[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(reasons)) {
		if !slices.Contains(known, k) {
			reasonT.Rows = append(reasonT.Rows, []any{k, reasons[k]})
		}
	}
	return []Table{openT, conv, loss, reasonT}, nil
}

// ownerName shows the pool as "pool".
func ownerName(login string) string {
	if login == "" {
		return PoolOwner
	}
	return login
}

func (r *Reports) promises(ctx context.Context, q ReportQuery) ([]Table, error) {
	all, err := r.store.Promises(ctx, "*", "")
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, p := range all {
		if p.CallID != "" {
			ids = append(ids, p.CallID)
		}
	}
	onLine, err := r.lineFilter(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	var ps []*Promise
	for _, p := range all {
		if (q.Manager == "" || ownerName(p.Owner) == q.Manager) && onLine(p.CallID) {
			ps = append(ps, p)
		}
	}
	t := Table{Name: "kept", Columns: []string{"manager", "on_time", "late", "missed", "open", "rate"}, Rows: [][]any{}}
	for _, k := range keptRates(ps, q.From, q.To, r.now()) {
		t.Rows = append(t.Rows, []any{ownerName(k.Owner), k.OnTime, k.Late, k.Missed, k.Open, round(k.Rate, 4)})
	}
	return []Table{t}, nil
}

type meetingCounts struct {
	meetings, firstCalls, onFirst int
}

func (r *Reports) meetings(ctx context.Context, q ReportQuery) ([]Table, error) {
	ms, err := r.store.MeetingsBetween(ctx, q.From, q.To)
	if err != nil {
		return nil, err
	}
	calls, err := r.callsIn(ctx, ReportQuery{From: q.From, To: q.To, Line: q.Line})
	if err != nil {
		return nil, err
	}
	first, err := r.firstCalls(ctx, calls)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, m := range ms {
		if m.CallID != "" {
			ids = append(ids, m.CallID)
		}
	}
	onLine, err := r.lineFilter(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	by := map[string]*meetingCounts{}
	get := func(m string) *meetingCounts {
		if by[m] == nil {
			by[m] = &meetingCounts{}
		}
		return by[m]
	}
	for _, c := range calls {
		if first[c.ID] && c.Operator != "" && (q.Manager == "" || c.Operator == q.Manager) {
			get(c.Operator).firstCalls++
		}
	}
	for _, m := range ms {
		if (q.Manager != "" && m.Owner != q.Manager) || !onLine(m.CallID) {
			continue
		}
		k := get(ownerName(m.Owner))
		k.meetings++
		if first[m.CallID] {
			k.onFirst++
		}
	}
	t := Table{Name: "per_manager", Columns: []string{"manager", "meetings", "first_calls", "meetings_on_first_call", "first_call_rate"}, Rows: [][]any{}}
	for _, m := range slices.Sorted(maps.Keys(by)) {
		k := by[m]
		t.Rows = append(t.Rows, []any{m, k.meetings, k.firstCalls, k.onFirst, share(k.onFirst, k.firstCalls)})
	}
	return []Table{t}, nil
}

// firstCalls marks the answered calls whose caller had no earlier answered call:
// none in the contact's history, and none earlier among calls.
func (r *Reports) firstCalls(ctx context.Context, calls []*Call) (map[string]bool, error) {
	recs, err := r.store.Records(ctx, callIDs(calls))
	if err != nil {
		return nil, err
	}
	var contacts []string
	seen := map[string]bool{}
	keys := make(map[string]string, len(calls))
	for _, c := range calls {
		k := callerKey(c, recs[c.ID])
		keys[c.ID] = k
		if id, ok := strings.CutPrefix(k, "contact:"); ok && !seen[id] {
			seen[id] = true
			contacts = append(contacts, id)
		}
	}
	hist, err := r.store.Histories(ctx, contacts)
	if err != nil {
		return nil, err
	}
	// earliest answered call per caller, from history and from the calls themselves
	earliest := map[string]time.Time{}
	note := func(k string, t time.Time) {
		if e, ok := earliest[k]; !ok || t.Before(e) {
			earliest[k] = t
		}
	}
	for id, hs := range hist {
		for _, h := range hs {
			if h.Outcome != "missed" && h.Outcome != OutcomeUnreached {
				note("contact:"+id, h.At)
			}
		}
	}
	for _, c := range calls {
		if c.Talked() {
			note(keys[c.ID], c.Started)
		}
	}
	out := map[string]bool{}
	for _, c := range calls {
		if !c.Talked() {
			continue
		}
		if e := earliest[keys[c.ID]]; !e.Before(c.Started) {
			out[c.ID] = true
		}
	}
	return out, nil
}

func share(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return round(float64(n)/float64(d), 4)
}

func round(f float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(f*p) / p
}

// Costs returns the channel costs in force; supervisors and admins.
func (r *Reports) Costs(ctx context.Context, u *User) (*CostsView, error) {
	if u == nil {
		return nil, ErrUnauthorized
	}
	if !isSupervisor(u) {
		return nil, fmt.Errorf("channel costs: %w", ErrForbidden)
	}
	v, err := r.effectiveCosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("channel costs: %w", err)
	}
	return v, nil
}

// SetCosts replaces the admin's channel costs (empty costs clear them, leaving the
// config's), audited. Admins only. Each channel must be a known source; each cost
// 0..1e12; the currency an ISO 4217 code, or empty for the config's.
func (r *Reports) SetCosts(ctx context.Context, u *User, c ChannelCosts) (*CostsView, error) {
	if u == nil {
		return nil, ErrUnauthorized
	}
	if u.Role != RoleAdmin {
		return nil, fmt.Errorf("channel costs: %w", ErrForbidden)
	}
	c.Currency = strings.TrimSpace(c.Currency)
	if c.Currency != "" && !currencyPattern.MatchString(c.Currency) {
		return nil, &FieldError{Field: "currency", Reason: fmt.Sprintf("%q is not an ISO 4217 code such as RUB", c.Currency)}
	}
	if len(c.Costs) > maxChannels {
		return nil, &FieldError{Field: "costs", Reason: fmt.Sprintf("at most %d channels", maxChannels)}
	}
	keys := slices.Sorted(maps.Keys(c.Costs))
	for _, k := range keys {
		v := c.Costs[k]
		switch {
		case !channelPattern.MatchString(k):
			return nil, &FieldError{Field: "costs", Reason: fmt.Sprintf("%q is not a channel id", k)}
		case len(r.sources) > 0 && !slices.Contains(r.sources, k):
			return nil, &FieldError{Field: "costs." + k, Reason: fmt.Sprintf("not a source channel (%s)", strings.Join(r.sources, ", "))}
		case math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > maxCost:
			return nil, &FieldError{Field: "costs." + k, Reason: "must be a number from 0 to 1e12"}
		}
	}
	var detail []string
	if len(c.Costs) == 0 {
		if err := r.store.SetChannelCosts(ctx, nil); err != nil {
			return nil, fmt.Errorf("channel costs: %w", err)
		}
		detail = append(detail, "cleared")
	} else {
		cur := c.Currency
		if cur == "" {
			cur = r.costs.Currency
		}
		if cur == "" {
			return nil, &FieldError{Field: "currency", Reason: "required: the config names none"}
		}
		save := &ChannelCosts{Currency: c.Currency, Costs: maps.Clone(c.Costs), By: u.Login, Updated: r.now().UTC()}
		if err := r.store.SetChannelCosts(ctx, save); err != nil {
			return nil, fmt.Errorf("channel costs: %w", err)
		}
		detail = append(detail, "currency "+first(c.Currency, "(config)"))
		for _, k := range keys {
			detail = append(detail, k+"="+strconv.FormatFloat(c.Costs[k], 'f', -1, 64))
		}
	}
	if err := r.store.Audit(ctx, AuditEntry{At: r.now(), Who: u.Login, Action: "config.costs", Target: "channel_costs",
		Detail: strings.Join(detail, " ")}); err != nil {
		return nil, fmt.Errorf("channel costs: audit: %w", err)
	}
	return r.Costs(ctx, u)
}

// ErrNoTable is returned by WriteCSV for a table the report does not have.
var ErrNoTable = errors.New("no such table")

// WriteCSV writes one table of rep as CSV with a header row: table "" is the first.
// Numbers are written as Go formats them (no thousands separators, "." decimals),
// an empty cell for a value not set. A text cell that a spreadsheet would take
// for a formula (= + - @) is prefixed with ' so opening the file runs nothing.
func WriteCSV(w io.Writer, rep *Report, table string) error {
	if rep == nil || len(rep.Tables) == 0 {
		return fmt.Errorf("csv: empty report: %w", ErrNoTable)
	}
	t := &rep.Tables[0]
	if table != "" {
		i := slices.IndexFunc(rep.Tables, func(t Table) bool { return t.Name == table })
		if i < 0 {
			names := make([]string, len(rep.Tables))
			for j, t := range rep.Tables {
				names[j] = t.Name
			}
			return &FieldError{Field: "table", Reason: fmt.Sprintf("%q is not a table of %s (%s)", table, rep.Name, strings.Join(names, ", "))}
		}
		t = &rep.Tables[i]
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(t.Columns); err != nil {
		return err
	}
	rec := make([]string, 0, len(t.Columns))
	for _, row := range t.Rows {
		rec = rec[:0]
		for _, v := range row {
			rec = append(rec, csvCell(v))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvCell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		if x != "" && strings.ContainsRune("=+-@\t\r", rune(x[0])) {
			return "'" + x
		}
		return x
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}
