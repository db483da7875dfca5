package redisstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
)

func whisperIDs(ws []*desk.Whisper) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, w.ID)
	}
	return out
}

func TestWhispers(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		t0 := time.Date(2025, 2, 3, 11, 0, 0, 0, time.UTC)
		ws := []*desk.Whisper{
			{ID: "w1", Operator: "maria", By: "sveta", Text: "one", CallID: "c1", At: t0},
			{ID: "w2", Operator: "oleg", By: "sveta", Text: "two", At: t0.Add(time.Second)},
			{ID: "w3", Operator: "maria", By: "root", Text: "three", CallID: "c1", At: t0.Add(2 * time.Second)},
			{ID: "w4", Operator: "maria", By: "sveta", Text: "four", CallID: "c2", At: t0.Add(3 * time.Second)},
		}
		for _, w := range ws {
			if err := s.SaveWhisper(ctx, w); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SaveWhisper(ctx, &desk.Whisper{Text: "to nobody"}); !errors.Is(err, desk.ErrInvalid) {
			t.Errorf("whisper without operator: %v; want ErrInvalid", err)
		}
		// maria acknowledges w3.
		acked := t0.Add(time.Minute)
		w3 := *ws[2]
		w3.AckedAt = &acked
		if err := s.SaveWhisper(ctx, &w3); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			operator string
			unacked  bool
			want     []string
		}{
			{"maria's, oldest first", "maria", false, []string{"w1", "w3", "w4"}},
			{"maria's unacked", "maria", true, []string{"w1", "w4"}},
			{"oleg's", "oleg", false, []string{"w2"}},
			{"everyone's", "", false, []string{"w1", "w2", "w3", "w4"}},
			{"everyone's unacked", "", true, []string{"w1", "w2", "w4"}},
			{"nobody's", "ivan", false, []string{}},
		}
		for _, tt := range tests {
			got, err := s.Whispers(ctx, tt.operator, tt.unacked)
			if err != nil || !slices.Equal(whisperIDs(got), tt.want) {
				t.Errorf("%s: Whispers = %v, %v; want %v", tt.name, whisperIDs(got), err, tt.want)
			}
		}
		for call, want := range map[string][]string{"c1": {"w1", "w3"}, "c2": {"w4"}, "c3": {}, "": {}} {
			got, err := s.CallWhispers(ctx, call)
			if err != nil || !slices.Equal(whisperIDs(got), want) {
				t.Errorf("CallWhispers(%q) = %v, %v; want %v", call, whisperIDs(got), err, want)
			}
		}
		got, err := s.Whisper(ctx, "w3")
		if err != nil || got.AckedAt == nil || !got.AckedAt.Equal(acked) || got.Text != "three" || got.By != "root" {
			t.Errorf("Whisper(w3) = %+v, %v", got, err)
		}
		for _, id := range []string{"nope", ""} {
			if _, err := s.Whisper(ctx, id); !errors.Is(err, desk.ErrNotFound) {
				t.Errorf("Whisper(%q) = %v; want ErrNotFound", id, err)
			}
		}
		// An ID and a time are assigned when empty.
		fresh := &desk.Whisper{Operator: "oleg", By: "sveta", Text: "new"}
		if err := s.SaveWhisper(ctx, fresh); err != nil || fresh.ID == "" || fresh.At.IsZero() {
			t.Errorf("SaveWhisper assigned %+v, %v", fresh, err)
		}
	})
}
