package phone

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNormalize: no input panics; an accepted number is E.164 (a plus and 8 to 15
// digits) and normalises to itself, in the same region and with none; Format never
// panics on it. The seed corpus is testdata/fuzz/FuzzNormalize plus the f.Add lines.
func FuzzNormalize(f *testing.F) {
	for _, s := range []struct{ raw, region string }{
		{"8 (916) 000-00-01", "RU"}, {"+7 916 000 00 01", "RU"}, {"79160000001", ""}, {"(415) 555-2671", "US"},
		{"14155552671", "RU"}, {"+44 20 7946 0958", "GB"}, {"0000001", "RU"}, {"anonymous", "RU"}, {"", ""},
		{"+", "RU"}, {"++79160000001", "RU"}, {"8-800-555-35-35", "ru"}, {"+7 (916) 000-00-01 доб. 12", "RU"},
		{"1001", "XX"}, {strings.Repeat("9", 64), "RU"}, {"+00000000000", "ZZ"}, {" 8 916 000 00 01\t", "RU"},
	} {
		f.Add(s.raw, s.region)
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		got, err := Normalize(raw, region)
		if err != nil {
			if got != "" {
				t.Fatalf("Normalize(%q, %q) = %q with error %v", raw, region, got, err)
			}
			return
		}
		if len(got) < 9 || len(got) > 16 || got[0] != '+' || !utf8.ValidString(got) {
			t.Fatalf("Normalize(%q, %q) = %q: not E.164", raw, region, got)
		}
		for _, r := range got[1:] {
			if r < '0' || r > '9' {
				t.Fatalf("Normalize(%q, %q) = %q: not E.164", raw, region, got)
			}
		}
		for _, rg := range []string{region, ""} {
			again, err := Normalize(got, rg)
			if err != nil || again != got {
				t.Fatalf("Normalize(%q, %q) = %q, but Normalize(%q, %q) = %q, %v", raw, region, got, got, rg, again, err)
			}
		}
		_ = Format(got)
	})
}
