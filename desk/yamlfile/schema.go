package yamlfile

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/calldesk/desk/desk"
)

// Step kinds. Issue 3's engine gives each its behaviour; the loader only checks that
// a step of each kind carries what that behaviour will need.
const (
	KindSay      = "say"      // a spoken line
	KindQuestion = "question" // a question, branching on its options
	KindContact  = "contact"  // contact capture
	KindSource   = "source"   // where the caller heard of us
	KindPrice    = "price"    // a price range from the price list, never a bare price
	KindPromise  = "promise"  // a callback promise: what and by when
	KindMeeting  = "meeting"  // a meeting or demo invitation
	KindWrapup   = "wrapup"   // the outcome; ends the script
)

// Kinds lists every step kind in script order.
var Kinds = []string{KindSay, KindQuestion, KindContact, KindSource, KindPrice, KindPromise, KindMeeting, KindWrapup}

// needsFields are the kinds whose whole point is to capture something.
var needsFields = map[string]bool{
	KindContact: true, KindSource: true, KindPrice: true,
	KindPromise: true, KindMeeting: true, KindWrapup: true,
}

// FieldTypes lists the types a field may have. The page picks an input by type and
// the engine validates the value by it (e-mail, E.164 phone, URL, number, choice).
var FieldTypes = []string{"text", "textarea", "email", "phone", "url", "number", "choice", "date", "datetime", "time", "checkbox"}

// Choice sources a field may take its choices from instead of listing them: they
// come from the desk configuration at pop time (Config.Resolve).
const (
	FromSources   = "sources"
	FromPriceList = "price_list"
)

// Binds is the record vocabulary: a field's bind says which attribute of the sales
// record it fills, an option's set says which attribute choosing it sets. Issue 3's
// wrap-up rules key on these names, not on step or field ids, so scripts can be
// rearranged freely. A bind with values only takes those values.
var Binds = map[string][]string{
	"contact.name":           nil,
	"contact.company":        nil,
	"contact.position":       nil,
	"contact.email":          nil,
	"contact.phone":          nil,
	"contact.mobile":         nil,
	"contact.callback_phone": nil,
	"contact.messenger":      nil,
	"contact.website":        nil,
	"contact.company_size":   nil,
	"contact.industry":       nil,
	"need.product":           nil,
	"need.task":              nil,
	"need.quantity":          nil,
	"interest.type":          {"deal", "interest"},
	"source":                 nil,
	"price.product":          nil,
	"promise.what":           nil,
	"promise.due":            nil,
	"meeting.at":             nil,
	"meeting.format":         {"office", "client_site", "online"},
	"outcome":                {"deal", "interest", "not_prospective", "refusal"},
	"refusal.reason":         {"unreachable", "competitor", "not_prospective"},
	"stage":                  {"first_call", "needs_identified", "meeting", "contract", "payment"},
	"note":                   nil,
}

// PlaceholderRoots are the objects a text may substitute, as {{contact.name}} or
// {{contact.name|fallback}}.
var PlaceholderRoots = []string{"contact", "call", "line", "operator", "price", "promise", "meeting", "answers"}

var (
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	langPattern = regexp.MustCompile(`^[a-z]{2,3}$`)
	placeholder = regexp.MustCompile(`^([a-z_]+)(\.[a-z0-9_]+)*$`)
	clockSpec   = regexp.MustCompile(`^(today|tomorrow) ([01]?\d|2[0-3]):([0-5]\d)$`)
)

// checkPlaceholders returns why a text's {{...}} substitutions are malformed, or "".
func checkPlaceholders(s string) string {
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			if strings.Contains(s, "}}") {
				return `"}}" without "{{"`
			}
			return ""
		}
		if strings.Contains(s[:i], "}}") {
			return `"}}" without "{{"`
		}
		s = s[i+2:]
		j := strings.Index(s, "}}")
		if j < 0 {
			return `"{{" is not closed with "}}"`
		}
		expr := s[:j]
		s = s[j+2:]
		path, _, _ := strings.Cut(expr, "|")
		path = strings.TrimSpace(path)
		m := placeholder.FindStringSubmatch(path)
		if m == nil || !strings.Contains(path, ".") {
			return "placeholder {{" + expr + "}} must be object.field, e.g. {{contact.name|fallback}}"
		}
		if !contains(PlaceholderRoots, m[1]) {
			return "placeholder {{" + expr + "}}: unknown object " + strconv.Quote(m[1]) + " (known: " + strings.Join(PlaceholderRoots, ", ") + ")"
		}
	}
}

// checkQuick returns why a quick deadline preset is malformed, or "". A preset is
// "+DURATION" (+1h, +30m, +1h30m, +2d) or "today|tomorrow HH:MM" in the desk's zone.
func checkQuick(s string) string {
	if clockSpec.MatchString(s) {
		return ""
	}
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		if _, err := desk.ParseQuickOffset(rest); err == nil {
			return ""
		}
	}
	return "quick preset " + strconv.Quote(s) + " must be +DURATION (+1h, +2d) or \"today|tomorrow HH:MM\""
}

// Substitute replaces every {{object.field|fallback}} of a validated text. lookup
// gives a value and true when it is known; an unknown or empty value gives the
// fallback (empty when none is written). The page may do the same on its side as
// answers arrive; the syntax is small on purpose.
func Substitute(text string, lookup func(path string) (string, bool)) string {
	var b strings.Builder
	for {
		i := strings.Index(text, "{{")
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		j := strings.Index(text[i+2:], "}}")
		if j < 0 {
			b.WriteString(text)
			return b.String()
		}
		b.WriteString(text[:i])
		expr := text[i+2 : i+2+j]
		text = text[i+2+j+2:]
		path, fallback, _ := strings.Cut(expr, "|")
		if v, ok := lookup(strings.TrimSpace(path)); ok && v != "" {
			b.WriteString(v)
		} else {
			b.WriteString(fallback)
		}
	}
}
