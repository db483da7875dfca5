package hub

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
)

func TestSplitFrame(t *testing.T) {
	// Not UTC, with nanoseconds: the frame has it in UTC, to the microsecond.
	at := time.Date(2026, 11, 27, 0, 0, 0, 123456789, time.FixedZone("MSK", 3*3600))
	cases := []struct {
		name    string
		typ     string
		payload any
		want    string
		wantErr error
	}{
		{"object", "call.ringing", map[string]int{"a": 1}, `{"type":"call.ringing","seq":7,"at":"2026-11-26T21:00:00.123456Z","a":1}`, nil},
		{"nil payload", "x", nil, `{"type":"x","seq":7,"at":"2026-11-26T21:00:00.123456Z"}`, nil},
		{"empty object", "x", struct{}{}, `{"type":"x","seq":7,"at":"2026-11-26T21:00:00.123456Z"}`, nil},
		{"raw object with spaces", "x", json.RawMessage(` { "b" : [1] } `), `{"type":"x","seq":7,"at":"2026-11-26T21:00:00.123456Z","b" : [1]}`, nil},
		{"type is escaped", `a"b`, nil, `{"type":"a\"b","seq":7,"at":"2026-11-26T21:00:00.123456Z"}`, nil},
		{"array refused", "x", []int{1}, "", errPayload},
		{"string refused", "x", "s", "", errPayload},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := splitFrame(tc.typ, at, tc.payload)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			got := p.appendFrame(nil, 7)
			if string(got) != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Fatalf("not JSON: %s", got)
			}
			if s, ok := frameSeq(got); !ok || s != 7 {
				t.Fatalf("frameSeq = %d %v", s, ok)
			}
		})
	}
}

func TestEncodeObject(t *testing.T) {
	got, err := encodeObject(snapshotHead{Type: "snapshot", Seq: 3, Epoch: "e"}, nil, map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"snapshot","seq":3,"epoch":"e","user":null,"n":1}`
	if string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func benchPop() desk.Pop {
	now := time.Now()
	return desk.Pop{
		Call: &desk.Call{ID: "01JCALL", SIPCallID: "a84b4c76e66710@pc33.example.com", From: "+79161234567",
			FromDisplay: "<img src=x onerror=alert(1)>", To: "sales", Line: "sales", Operator: "anna",
			State: desk.CallRinging, Started: now},
		Contact: &desk.Contact{ID: "c1", Name: "Ivan Petrov", Company: "Romashka LLC", Position: "CTO",
			Phones: []string{"+79161234567"}, Manager: "anna", Created: now, Updated: now},
		Script: &desk.Script{ID: "default", Title: "Inbound sales", Lang: "en", Steps: []desk.Step{
			{ID: "greet", Kind: "say", Title: "Greeting", Text: "Good afternoon, Romashka, this is Anna."},
			{ID: "need", Kind: "question", Title: "Need", Fields: []desk.Field{{ID: "need", Label: "What do you need?", Type: "text", Required: true}}},
			{ID: "contact", Kind: "form", Title: "Contact", Fields: []desk.Field{{ID: "name", Label: "Full name", Type: "text", Required: true}, {ID: "company", Label: "Company", Type: "text", Required: true}}},
		}},
		Manager: "Anna",
	}
}

// BenchmarkEncodeFrame measures the hot path of a pop: the payload is marshalled
// once, split around seq, and a frame is built per channel (two audiences).
func BenchmarkEncodeFrame(b *testing.B) {
	pop := benchPop()
	now := time.Now()
	b.ReportAllocs()
	var buf []byte
	for i := 0; b.Loop(); i++ {
		p, err := splitFrame(desk.EventCallRinging, now, pop)
		if err != nil {
			b.Fatal(err)
		}
		buf = p.appendFrame(buf[:0], int64(i))
		buf = p.appendFrame(buf[:0], int64(i))
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkAppendFrame is the per-channel part alone (local fallback delivery).
func BenchmarkAppendFrame(b *testing.B) {
	p, err := splitFrame(desk.EventCallRinging, time.Now(), benchPop())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var buf []byte
	for i := 0; b.Loop(); i++ {
		buf = p.appendFrame(buf[:0], int64(i))
	}
	b.SetBytes(int64(len(buf)))
}
