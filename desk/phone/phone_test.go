package phone

import (
	"errors"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, raw, region, want string
		wantErr                 bool
	}{
		{name: "national trunk prefix 8", raw: "8 (916) 000-00-01", region: "RU", want: "+79160000001"},
		{name: "international spaced", raw: "+7 916 000 00 01", region: "RU", want: "+79160000001"},
		{name: "country code without plus", raw: "79160000001", region: "RU", want: "+79160000001"},
		{name: "national ten digits", raw: "9160000001", region: "RU", want: "+79160000001"},
		{name: "already e164", raw: "+79160000001", region: "RU", want: "+79160000001"},
		{name: "moscow landline dashes", raw: "8-495-123-45-67", region: "RU", want: "+74951234567"},
		{name: "surrounding spaces", raw: "  +7 (495) 123-45-67 ", region: "RU", want: "+74951234567"},
		{name: "lower-case region", raw: "8 916 000 00 01", region: "ru", want: "+79160000001"},
		{name: "foreign number in RU region", raw: "+1 415 555 2671", region: "RU", want: "+14155552671"},
		{name: "foreign cc without plus in RU region", raw: "14155552671", region: "RU", want: "+14155552671"},
		{name: "US national", raw: "(415) 555-2671", region: "US", want: "+14155552671"},
		{name: "no region international", raw: "+79160000001", region: "", want: "+79160000001"},
		{name: "no region cc without plus", raw: "79160000001", region: "", want: "+79160000001"},
		{name: "short id", raw: "0000001", region: "RU", wantErr: true},
		{name: "extension", raw: "1001", region: "RU", wantErr: true},
		{name: "empty", raw: "", region: "RU", wantErr: true},
		{name: "spaces only", raw: "   ", region: "RU", wantErr: true},
		{name: "anonymous", raw: "anonymous", region: "RU", wantErr: true},
		{name: "login with digits", raw: "alice7", region: "RU", wantErr: true},
		{name: "vanity letters", raw: "+1-800-FLOWERS", region: "US", wantErr: true},
		{name: "plus in the middle", raw: "7+9160000001", region: "RU", wantErr: true},
		{name: "national without region", raw: "9160000001", region: "", wantErr: true},
		{name: "too long", raw: "+7916000000100000000000000000000000000000000000000000000000000000001", region: "RU", wantErr: true},
		{name: "invalid range", raw: "+7 000 000 00 00", region: "RU", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.raw, tt.region)
			if tt.wantErr {
				if !errors.Is(err, ErrNotANumber) {
					t.Fatalf("Normalize(%q, %q) = %q, %v; want ErrNotANumber", tt.raw, tt.region, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Normalize(%q, %q) = %q, %v; want %q", tt.raw, tt.region, got, err, tt.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+79160000001", "+7 916 000-00-01"},
		{"+14155552671", "+1 415-555-2671"},
		{"alice", "alice"},
		{"79160000001", "79160000001"},
		{"+", "+"},
	}
	for _, tt := range tests {
		if got := Format(tt.in); got != tt.want {
			t.Errorf("Format(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	inputs := []string{"8 (916) 000-00-01", "+7 916 000 00 01", "79160000001", "0000001"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, _ = Normalize(inputs[i%len(inputs)], "RU")
	}
}
