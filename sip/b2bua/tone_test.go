package b2bua_test

import (
	"math"
	"testing"

	"github.com/calldesk/desk/sip/b2bua/b2buatest"
)

func TestGoertzel(t *testing.T) {
	sine := func(freqs ...float64) []int16 {
		out := make([]int16, 1600)
		for i := range out {
			var v float64
			for _, f := range freqs {
				v += 6000 * math.Sin(2*math.Pi*f*float64(i)/8000)
			}
			out[i] = int16(v)
		}
		return out
	}
	tests := []struct {
		name     string
		in       []int16
		freq     float64
		min, max float64
	}{
		{"pure tone", sine(440), 440, 0.9, 1.1},
		{"other tone", sine(1000), 440, 0, 0.02},
		{"two tones, first", sine(440, 2000), 440, 0.4, 0.6},
		{"two tones, second", sine(440, 2000), 2000, 0.4, 0.6},
		{"silence", make([]int16, 1600), 440, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if g := b2buatest.Goertzel(tc.in, tc.freq); g < tc.min || g > tc.max {
				t.Fatalf("goertzel = %.3f, want [%.2f, %.2f]", g, tc.min, tc.max)
			}
		})
	}
}
