package desk

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func moscow(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestValidateField(t *testing.T) {
	loc := moscow(t)
	now := time.Date(2025, 3, 10, 14, 20, 0, 0, loc)
	fc := fieldContext{now: now, loc: loc, region: "RU", prices: []PriceRange{{Product: "scanner", Min: 1, Max: 2, Currency: "RUB"}}}
	tests := []struct {
		name    string
		f       Field
		in      string
		want    string
		wantErr bool
	}{
		{"empty clears", Field{Type: "email"}, "  ", "", false},
		{"text trimmed", Field{Type: "text"}, "  Анна  ", "Анна", false},
		{"text too long", Field{Type: "text"}, string(make([]rune, 501)), "", true},
		{"email", Field{Type: "email"}, "Anna@Romashka.RU", "Anna@romashka.ru", false},
		{"email without domain dot", Field{Type: "email"}, "anna@localhost", "", true},
		{"email with a name", Field{Type: "email"}, "Anna <anna@romashka.ru>", "", true},
		{"email garbage", Field{Type: "email"}, "anna at romashka", "", true},
		{"phone national", Field{Type: "phone"}, "8 (916) 123-45-67", "+79161234567", false},
		{"phone international", Field{Type: "phone"}, "+1 415 555 2671", "+14155552671", false},
		{"phone letters", Field{Type: "phone"}, "call me", "", true},
		{"url without scheme", Field{Type: "url"}, "romashka.ru", "https://romashka.ru", false},
		{"url http", Field{Type: "url"}, "http://romashka.ru/about", "http://romashka.ru/about", false},
		{"url javascript", Field{Type: "url"}, "javascript:alert(1)", "", true},
		{"url no dot", Field{Type: "url"}, "intranet", "", true},
		{"number", Field{Type: "number"}, "1 200,5", "1200.5", false},
		{"number negative", Field{Type: "number"}, "-3", "", true},
		{"number words", Field{Type: "number"}, "many", "", true},
		{"number NaN", Field{Type: "number"}, "NaN", "", true},
		{"choice listed", Field{Type: "choice", Choices: []string{"1-10", "11-50"}}, "11-50", "11-50", false},
		{"choice unlisted", Field{Type: "choice", Choices: []string{"1-10", "11-50"}}, "51-200", "", true},
		{"choice from price list", Field{Type: "choice", From: "price_list"}, "scanner", "scanner", false},
		{"choice not in price list", Field{Type: "choice", From: "price_list"}, "laser", "", true},
		{"choice from unresolved sources", Field{Type: "choice", From: "sources"}, "radio", "radio", false},
		{"date", Field{Type: "date"}, "2025-03-12", "2025-03-12", false},
		{"date quick", Field{Type: "date"}, "tomorrow 10:00", "2025-03-11", false},
		{"date bad", Field{Type: "date"}, "12.03.2025", "", true},
		{"datetime RFC3339", Field{Type: "datetime"}, "2025-03-10T12:00:00Z", "2025-03-10T15:00:00+03:00", false},
		{"datetime local", Field{Type: "datetime"}, "2025-03-11T09:30", "2025-03-11T09:30:00+03:00", false},
		{"datetime +2h", Field{Type: "datetime", Bind: "promise.due"}, "+2h", "2025-03-10T16:20:00+03:00", false},
		{"datetime past due", Field{Type: "datetime", Bind: "promise.due"}, "2025-03-10T10:00", "", true},
		{"datetime past, not a deadline", Field{Type: "datetime"}, "2025-03-10T10:00", "2025-03-10T10:00:00+03:00", false},
		{"datetime garbage", Field{Type: "datetime"}, "soon", "", true},
		{"time", Field{Type: "time"}, "09:30", "09:30", false},
		{"time bad", Field{Type: "time"}, "25:00", "", true},
		{"checkbox", Field{Type: "checkbox"}, "on", "true", false},
		{"checkbox bad", Field{Type: "checkbox"}, "maybe", "", true},
		{"unknown type", Field{Type: "colour"}, "red", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := validateField(tt.f, "f", tt.in, fc)
			if tt.wantErr {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != "f" || !errors.Is(err, ErrInvalid) {
					t.Fatalf("validateField(%q) = %q, %v; want a FieldError", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("validateField(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseWhen(t *testing.T) {
	loc := moscow(t)
	msk := func(d, h, m int) time.Time { return time.Date(2025, 1, d, h, m, 0, 0, loc) }
	tests := []struct {
		name string
		now  time.Time
		in   string
		want time.Time
	}{
		{"+1h", msk(10, 14, 20), "+1h", msk(10, 15, 20)},
		{"+2h truncates seconds", msk(10, 14, 20).Add(37 * time.Second), "+2h", msk(10, 16, 20)},
		{"+1d", msk(10, 14, 20), "+1d", msk(11, 14, 20)},
		{"+1d2h", msk(10, 14, 20), "+1d2h", msk(11, 16, 20)},
		{"tomorrow in the evening", msk(10, 23, 30), "tomorrow 10:00", msk(11, 10, 0)},
		// 00:30 in Moscow is still the 10th in UTC; tomorrow is the 12th, not the 11th.
		{"tomorrow after midnight in Moscow", msk(11, 0, 30), "tomorrow 10:00", msk(12, 10, 0)},
		{"tomorrow given in UTC now", time.Date(2025, 1, 10, 21, 30, 0, 0, time.UTC), "tomorrow 10:00", msk(12, 10, 0)},
		{"today", msk(10, 9, 0), "today 18:00", msk(10, 18, 0)},
		{"month end", time.Date(2025, 1, 31, 20, 0, 0, 0, loc), "tomorrow 10:00", time.Date(2025, 2, 1, 10, 0, 0, 0, loc)},
		{"RFC3339", msk(10, 9, 0), "2025-01-15T07:00:00Z", msk(15, 10, 0)},
		{"datetime-local", msk(10, 9, 0), "2025-01-15T10:00", msk(15, 10, 0)},
		{"with a space", msk(10, 9, 0), "2025-01-15 10:00", msk(15, 10, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWhen(tt.in, tt.now, loc)
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("ParseWhen(%q at %v) = %v, %v; want %v", tt.in, tt.now, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "+", "+0h", "+-1h", "+soon", "tomorrow", "tomorrow 25:00", "yesterday 10:00", "15/01/2025"} {
		if got, err := ParseWhen(bad, msk(10, 9, 0), loc); err == nil {
			t.Errorf("ParseWhen(%q) = %v; want an error", bad, got)
		}
	}
}

func TestWrapupMissing(t *testing.T) {
	full := map[string]string{"contact.name": "Анна", "contact.company": "Ромашка", "source": "web_search"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range full {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name            string
		answers         map[string]string
		known           *Contact
		outcome, reason string
		want            []string
	}{
		{"complete", full, nil, OutcomeDeal, "", nil},
		{"nothing at all", map[string]string{}, nil, "", "", []string{"contact.name", "contact.company", "source", "outcome"}},
		{"known contact fills name and company", map[string]string{"source": "x"}, &Contact{Name: "Анна", Company: "Ромашка"}, OutcomeInterest, "", nil},
		{"known contact without company", map[string]string{"source": "x"}, &Contact{Name: "Анна"}, OutcomeInterest, "", []string{"contact.company"}},
		{"blank answers count as missing", with("contact.name", "  "), nil, OutcomeDeal, "", []string{"contact.name"}},
		{"promise without due", with("promise.what", "send an offer"), nil, OutcomeDeal, "", []string{"promise.due"}},
		{"promise with due", with("promise.what", "send an offer", "promise.due", "2025-01-01T10:00:00+03:00"), nil, OutcomeDeal, "", nil},
		{"refusal without reason", full, nil, OutcomeRefusal, "", []string{"refusal.reason"}},
		{"refusal with reason", full, nil, OutcomeRefusal, ReasonCompetitor, nil},
		{"source is asked even with a preset", with("source", ""), nil, OutcomeDeal, "", []string{"source"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wrapupMissing(tt.answers, tt.known, tt.outcome, tt.reason)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("missing = %v; want %v", got, tt.want)
			}
		})
	}
	err := error(&MissingError{Missing: []string{"source", "outcome"}})
	if !errors.Is(err, ErrInvalid) || err.Error() != "wrap-up incomplete: source, outcome" {
		t.Errorf("MissingError = %v", err)
	}
}

func TestQualify(t *testing.T) {
	rules := []QualificationRule{
		{Industries: []string{"retail", "ecommerce"}, SizeBelow: 20, Reason: "small shop"},
		{SizeBelow: 3, Reason: "micro business"},
		{Industries: []string{"other"}, Reason: "not our market"},
		{Reason: "matches nothing"},
	}
	tests := []struct {
		size, industry, want string
	}{
		{"5-10", "retail", "small shop"},  // upper bound 10 < 20
		{"11-50", "retail", ""},           // upper bound 50
		{"1-10", "Retail", "small shop"},  // industry case-insensitive
		{"19", "ecommerce", "small shop"}, // a number
		{"20", "ecommerce", ""},           // not below
		{"1000+", "retail", ""},           // "N+" is N
		{"2", "manufacturing", "micro business"},
		{"", "retail", ""}, // no size: a size rule cannot say
		{"many", "retail", ""},
		{"", "other", "not our market"}, // industry alone
		{"51-200", "logistics", ""},
	}
	for _, tt := range tests {
		if got := qualify(rules, tt.size, tt.industry); got != tt.want {
			t.Errorf("qualify(%q, %q) = %q; want %q", tt.size, tt.industry, got, tt.want)
		}
	}
	sizes := map[string]int{"5-10": 10, "50+": 50, " 12 ": 12, "1 000+": 1000}
	for in, want := range sizes {
		if n, ok := CompanySize(in); !ok || n != want {
			t.Errorf("CompanySize(%q) = %d, %v; want %d", in, n, ok, want)
		}
	}
}

func TestKeptRates(t *testing.T) {
	base := time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return base.Add(time.Duration(h) * time.Hour) }
	kept := func(h int) *time.Time { t := at(h); return &t }
	ps := []*Promise{
		{Owner: "maria", Due: at(10), State: PromiseKept, KeptAt: kept(9)},  // on time
		{Owner: "maria", Due: at(10), State: PromiseKept, KeptAt: kept(10)}, // on time, to the minute
		{Owner: "maria", Due: at(10), State: PromiseKept, KeptAt: kept(12)}, // late
		{Owner: "maria", Due: at(11), State: PromiseOpen},                   // missed (now is 20)
		{Owner: "maria", Due: at(30), State: PromiseOpen},                   // open, not due
		{Owner: "oleg", Due: at(5), State: PromiseKept, KeptAt: kept(6)},    // late
		{Owner: "", Due: at(8), State: PromiseOpen},                         // the pool, missed
		{Owner: "oleg", Due: at(-1), State: PromiseOpen},                    // before the period
		{Owner: "oleg", Due: at(48), State: PromiseOpen},                    // at its end: excluded
	}
	got := keptRates(ps, base, at(48), at(20))
	want := []KeptRate{
		{Owner: "", Missed: 1, Rate: 0},
		{Owner: "maria", OnTime: 2, Late: 1, Missed: 1, Open: 1, Rate: 0.5},
		{Owner: "oleg", Late: 1, Rate: 0},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("keptRates = %+v\nwant %+v", got, want)
	}
	if got := keptRates(nil, base, at(1), at(2)); len(got) != 0 {
		t.Errorf("no promises: %+v", got)
	}
}

func TestDeriveFlags(t *testing.T) {
	prices := []PriceRange{{Product: "scanner", Min: 18000, Max: 42000, Currency: "RUB"}}
	tests := []struct {
		name     string
		preset   string
		answers  map[string]string
		mismatch bool
		rng      bool
	}{
		{"agrees with preset", "web_search", map[string]string{"source": "web_search"}, false, false},
		{"differs from preset", "web_search", map[string]string{"source": "exhibition"}, true, false},
		{"no preset", "", map[string]string{"source": "exhibition"}, false, false},
		{"not answered", "web_search", map[string]string{}, false, false},
		{"range given", "", map[string]string{"price.product": "scanner"}, false, true},
		{"product off the list", "", map[string]string{"price.product": "laser"}, false, false},
	}
	for _, tt := range tests {
		rec := &Record{PresetSource: tt.preset, Answers: tt.answers, SourceMismatch: true, Range: &PriceRange{}}
		deriveFlags(rec, prices)
		if rec.SourceMismatch != tt.mismatch || (rec.Range != nil) != tt.rng {
			t.Errorf("%s: mismatch %v range %+v", tt.name, rec.SourceMismatch, rec.Range)
		}
		if tt.rng && *rec.Range != prices[0] {
			t.Errorf("%s: range %+v", tt.name, rec.Range)
		}
	}
}

func TestMergePhones(t *testing.T) {
	got := mergePhones([]string{"+79160000001", "+79160000002"}, "+79160000002", "", "+74950000000")
	if !slices.Equal(got, []string{"+79160000001", "+79160000002", "+74950000000"}) {
		t.Errorf("mergePhones = %v", got)
	}
}
