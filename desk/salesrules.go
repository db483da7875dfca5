package desk

// The rules of the sales record as pure functions: field validation, quick
// deadlines, wrap-up completeness, qualification and the kept-rate. Sales applies
// them; they need no store, so their tests are plain tables.

import (
	"errors"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/calldesk/desk/desk/phone"
)

// FieldError is a value that fails its field's type. errors.Is(err, ErrInvalid) holds.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Is makes a FieldError an ErrInvalid for errors.Is.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// MissingError is a wrap-up refused because required items are missing. Missing
// holds bind names: "contact.name", "contact.company", "source", "promise.due",
// "refusal.reason", "outcome".
type MissingError struct {
	Missing []string `json:"missing"`
}

func (e *MissingError) Error() string {
	return "wrap-up incomplete: " + strings.Join(e.Missing, ", ")
}

// Is makes a MissingError an ErrInvalid for errors.Is.
func (e *MissingError) Is(target error) bool { return target == ErrInvalid }

// Length limits of free text, so one answer cannot bloat a record.
const (
	maxText     = 500
	maxTextarea = 5000
)

// fieldContext is what validating a value may need besides the field itself.
type fieldContext struct {
	now    time.Time
	loc    *time.Location
	region string
	prices []PriceRange
}

// validateField returns value normalised for storage, or a *FieldError naming key.
// An empty value is always valid: it clears the answer.
func validateField(f Field, key, value string, fc fieldContext) (string, error) {
	v := strings.TrimSpace(value)
	if v == "" {
		return "", nil
	}
	bad := func(format string, args ...any) (string, error) {
		return "", &FieldError{Field: key, Reason: fmt.Sprintf(format, args...)}
	}
	switch f.Type {
	case "", "text", "textarea":
		limit := maxText
		if f.Type == "textarea" {
			limit = maxTextarea
		}
		if n := len([]rune(v)); n > limit {
			return bad("too long: %d characters, at most %d", n, limit)
		}
		return v, nil
	case "email":
		a, err := mail.ParseAddress(v)
		if err != nil || a.Address != v || a.Name != "" {
			return bad("%q is not an e-mail address", v)
		}
		local, domain, _ := strings.Cut(a.Address, "@")
		if local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
			return bad("%q is not an e-mail address", v)
		}
		return local + "@" + strings.ToLower(domain), nil
	case "phone":
		e, err := phone.Normalize(v, fc.region)
		if err != nil {
			return bad("%q is not a phone number", v)
		}
		return e, nil
	case "url":
		raw := v
		// People type "romashka.ru"; the desk stores a link that opens.
		if !strings.Contains(raw, "://") {
			raw = "https://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			!strings.Contains(u.Hostname(), ".") || strings.ContainsAny(u.Host, " \t") {
			return bad("%q is not a web address", v)
		}
		return u.String(), nil
	case "number":
		n, err := strconv.ParseFloat(strings.ReplaceAll(strings.ReplaceAll(v, " ", ""), ",", "."), 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return bad("%q is not a number", v)
		}
		if n < 0 {
			return bad("%q must not be negative", v)
		}
		return strconv.FormatFloat(n, 'f', -1, 64), nil
	case "choice":
		choices := f.Choices
		if f.From == "price_list" && len(choices) == 0 {
			for _, p := range fc.prices {
				choices = append(choices, p.Product)
			}
		}
		// A from: field the configuration did not resolve has no list to check.
		if len(choices) > 0 && !slices.Contains(choices, v) {
			return bad("%q is not one of %s", v, strings.Join(choices, ", "))
		}
		return v, nil
	case "date":
		t, err := ParseWhen(v, fc.now, fc.loc)
		if err != nil {
			if d, derr := time.ParseInLocation(time.DateOnly, v, fc.loc); derr == nil {
				return d.Format(time.DateOnly), nil
			}
			return bad("%q is not a date (YYYY-MM-DD)", v)
		}
		return t.In(fc.loc).Format(time.DateOnly), nil
	case "datetime":
		t, err := ParseWhen(v, fc.now, fc.loc)
		if err != nil {
			return bad("%q is not a time: give RFC 3339, YYYY-MM-DDTHH:MM, or +1h, +2h, tomorrow 10:00", v)
		}
		// A deadline or a meeting already past is a slip of the finger.
		if (f.Bind == "promise.due" || f.Bind == "meeting.at") && t.Before(fc.now.Add(-time.Minute)) {
			return bad("%s is in the past", t.In(fc.loc).Format("2006-01-02 15:04"))
		}
		return t.In(fc.loc).Format(time.RFC3339), nil
	case "time":
		if _, err := time.Parse("15:04", v); err != nil {
			return bad("%q is not a time of day (HH:MM)", v)
		}
		return v, nil
	case "checkbox":
		switch strings.ToLower(v) {
		case "true", "on", "1", "yes":
			return "true", nil
		case "false", "off", "0", "no":
			return "false", nil
		}
		return bad("%q is not true or false", v)
	}
	return bad("unknown field type %q", f.Type)
}

// ParseQuickOffset parses the duration of a "+..." quick preset (without the +);
// it adds days (d) to time.ParseDuration's units because "+1d" is what people write.
func ParseQuickOffset(s string) (time.Duration, error) {
	var days int
	if d, rest, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 366 {
			return 0, strconv.ErrSyntax
		}
		days, s = n, rest
	}
	var dur time.Duration
	if s != "" {
		var err error
		if dur, err = time.ParseDuration(s); err != nil {
			return 0, err
		}
	}
	total := time.Duration(days)*24*time.Hour + dur
	if total <= 0 {
		return 0, strconv.ErrRange
	}
	return total, nil
}

var errNotATime = errors.New("not a time")

// ParseWhen reads a moment as the page sends it: RFC 3339; a browser's
// datetime-local "2006-01-02T15:04" (or with a space) in loc; or a quick preset,
// "+1h", "+2h", "+1d", "today 18:00", "tomorrow 10:00", resolved against now in loc.
// "tomorrow" is the next calendar day in loc, not in UTC: at 00:30 in Moscow it is
// the day after the UTC date's tomorrow.
func ParseWhen(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if loc == nil {
		loc = time.UTC
	}
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		d, err := ParseQuickOffset(rest)
		if err != nil {
			return time.Time{}, errNotATime
		}
		return now.Add(d).Truncate(time.Minute), nil
	}
	if day, clock, ok := strings.Cut(s, " "); ok && (day == "today" || day == "tomorrow") {
		hm, err := time.Parse("15:04", strings.TrimSpace(clock))
		if err != nil {
			return time.Time{}, errNotATime
		}
		local := now.In(loc)
		offset := 0
		if day == "tomorrow" {
			offset = 1
		}
		return time.Date(local.Year(), local.Month(), local.Day()+offset, hm.Hour(), hm.Minute(), 0, 0, loc), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errNotATime
}

// Required items of a wrap-up, in the order MissingError lists them.
const (
	MissingName    = "contact.name"
	MissingCompany = "contact.company"
	MissingSource  = "source"
	MissingDue     = "promise.due"
	MissingReason  = "refusal.reason"
	MissingOutcome = "outcome"
)

// wrapupMissing lists what keeps a wrap-up from closing. known is the contact the
// desk already has (nil for a new caller): his name and company count. The source
// must be answered on every call, even when the line presets one, because asking
// is the point: the preset only tells whether the answer differs.
func wrapupMissing(answers map[string]string, known *Contact, outcome, reason string) []string {
	has := func(k string) bool { return strings.TrimSpace(answers[k]) != "" }
	var out []string
	if !has("contact.name") && (known == nil || strings.TrimSpace(known.Name) == "") {
		out = append(out, MissingName)
	}
	if !has("contact.company") && (known == nil || strings.TrimSpace(known.Company) == "") {
		out = append(out, MissingCompany)
	}
	if !has("source") {
		out = append(out, MissingSource)
	}
	if has("promise.what") && !has("promise.due") {
		out = append(out, MissingDue)
	}
	if outcome == OutcomeRefusal && reason == "" {
		out = append(out, MissingReason)
	}
	if outcome == "" {
		out = append(out, MissingOutcome)
	}
	return out
}

// QualificationRule marks a lead not prospective: one in Industries (any when
// empty) whose company is smaller than SizeBelow staff (any size when 0).
type QualificationRule struct {
	Industries []string `json:"industries,omitempty" yaml:"industries"`
	SizeBelow  int      `json:"size_below,omitempty" yaml:"size_below"`
	Reason     string   `json:"reason" yaml:"reason"`
}

// CompanySize reads a staff count as scripts capture it: "12", "5-10" (the upper
// bound, 10), "1000+" (1000). ok is false when s says no number.
func CompanySize(s string) (n int, ok bool) {
	s = strings.TrimSpace(strings.ReplaceAll(s, " ", ""))
	s = strings.TrimSuffix(s, "+")
	if _, hi, found := strings.Cut(s, "-"); found {
		s = hi
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// qualify returns the reason of the first rule that marks the lead, or "".
func qualify(rules []QualificationRule, size, industry string) string {
	n, sized := CompanySize(size)
	industry = strings.TrimSpace(industry)
	for _, r := range rules {
		if len(r.Industries) > 0 && !slices.ContainsFunc(r.Industries, func(i string) bool { return strings.EqualFold(i, industry) }) {
			continue
		}
		if r.SizeBelow > 0 && (!sized || n >= r.SizeBelow) {
			continue
		}
		if len(r.Industries) == 0 && r.SizeBelow == 0 {
			continue // a rule that says nothing marks nobody
		}
		reason := r.Reason
		if reason == "" {
			reason = "qualification rule"
		}
		return reason
	}
	return ""
}

// KeptRate is how one owner keeps promises due in a period: kept on time, kept
// late, missed (open past due) and still open (not yet due). Rate is on time over
// on time + late + missed, 0 when none of those.
type KeptRate struct {
	Owner  string  `json:"owner"`
	OnTime int     `json:"on_time"`
	Late   int     `json:"late"`
	Missed int     `json:"missed"`
	Open   int     `json:"open"`
	Rate   float64 `json:"rate"`
}

// keptRates counts promises due in [from, to) per owner ("" is the pool), by owner.
func keptRates(ps []*Promise, from, to, now time.Time) []KeptRate {
	by := map[string]*KeptRate{}
	for _, p := range ps {
		if p.Due.Before(from) || !p.Due.Before(to) {
			continue
		}
		k := by[p.Owner]
		if k == nil {
			k = &KeptRate{Owner: p.Owner}
			by[p.Owner] = k
		}
		switch {
		case p.State == PromiseKept && p.KeptAt != nil && !p.KeptAt.After(p.Due):
			k.OnTime++
		case p.State == PromiseKept:
			k.Late++
		case now.After(p.Due):
			k.Missed++
		default:
			k.Open++
		}
	}
	out := make([]KeptRate, 0, len(by))
	for _, k := range by {
		if d := k.OnTime + k.Late + k.Missed; d > 0 {
			k.Rate = float64(k.OnTime) / float64(d)
		}
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b KeptRate) int { return strings.Compare(a.Owner, b.Owner) })
	return out
}

// deriveFlags sets the record's flags from its answers: SourceMismatch when the
// source named differs from the line's preset, Range when a product of the price
// list was picked. They are derived on every read rather than stored per answer,
// so two tabs answering at once can never write a stale flag over newer answers.
func deriveFlags(rec *Record, prices []PriceRange) {
	src := rec.Answers["source"]
	rec.SourceMismatch = src != "" && rec.PresetSource != "" && src != rec.PresetSource
	rec.Range = nil
	if p := rec.Answers["price.product"]; p != "" {
		for _, r := range prices {
			if r.Product == p {
				rec.Range = &r
				break
			}
		}
	}
}

// mergePhones adds the new numbers to the existing ones, keeping order and never
// dropping one: a contact's numbers only grow.
func mergePhones(existing []string, add ...string) []string {
	out := slices.Clone(existing)
	for _, p := range add {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// validStage reports whether s is a funnel stage.
func validStage(s string) bool { return slices.Contains(Stages, s) }

// validOutcome reports whether s is a wrap-up outcome.
func validOutcome(s string) bool {
	return s == OutcomeDeal || s == OutcomeInterest || s == OutcomeNotProspective || s == OutcomeRefusal
}

// validReason reports whether s is a refusal reason.
func validReason(s string) bool {
	return s == ReasonUnreachable || s == ReasonCompetitor || s == ReasonNotProspective
}
