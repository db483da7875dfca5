// Package phone turns the many ways people and trunks write a telephone number into
// E.164, so one contact is found whatever form its number arrives in.
//
// It wraps github.com/nyaruka/phonenumbers (a port of libphonenumber) and adds the
// one habit the library does not forgive: a country code written without the plus
// ("79160000001"), which trunks and CRMs export all the time.
package phone

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ErrNotANumber is returned (wrapped) when the input is not a valid telephone number:
// a SIP login, a short extension, "anonymous", or digits no numbering plan knows.
var ErrNotANumber = errors.New("not a phone number")

// maxLen bounds the input: nothing longer is a phone number, and the parser should
// not spend time on hostile headers.
const maxLen = 64

// Normalize returns raw in E.164 ("+79160000001"). region is the ISO 3166 country
// assumed for numbers written without a country code (e.g. "RU"); an empty region
// accepts international forms only.
func Normalize(raw, region string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" || len(s) > maxLen {
		return "", fmt.Errorf("normalize %q: %w", raw, ErrNotANumber)
	}
	// The library reads letters as vanity digits (1-800-FLOWERS), which would turn
	// SIP user parts like "alice7" into numbers. Callers here never dial letters.
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return "", fmt.Errorf("normalize %q: %w", raw, ErrNotANumber)
		}
	}
	if digits == 0 {
		return "", fmt.Errorf("normalize %q: %w", raw, ErrNotANumber)
	}
	region = strings.ToUpper(strings.TrimSpace(region))
	if region == "" {
		region = "ZZ"
	}
	if n, err := phonenumbers.Parse(s, region); err == nil && phonenumbers.IsValidNumber(n) {
		return phonenumbers.Format(n, phonenumbers.E164), nil
	}
	// "Country code without plus": the national reading failed, so try the digits
	// as an international number. This is what makes 79160000001 and 14155552671
	// resolve in any region.
	if s[0] != '+' {
		if n, err := phonenumbers.Parse("+"+phonenumbers.NormalizeDigitsOnly(s), "ZZ"); err == nil && phonenumbers.IsValidNumber(n) {
			return phonenumbers.Format(n, phonenumbers.E164), nil
		}
	}
	return "", fmt.Errorf("normalize %q in region %s: %w", raw, region, ErrNotANumber)
}

// Format renders an E.164 number for people: "+7 916 000-00-01". Anything that does
// not parse is returned unchanged, so a raw caller ID still shows.
func Format(e164 string) string {
	if !strings.HasPrefix(e164, "+") {
		return e164
	}
	n, err := phonenumbers.Parse(e164, "ZZ")
	if err != nil {
		return e164
	}
	return phonenumbers.Format(n, phonenumbers.INTERNATIONAL)
}
