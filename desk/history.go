package desk

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Limits of RecentCalls.
const (
	DefaultRecentHours = 24  // how far back the board's "Recent calls" looks by default
	MaxRecentHours     = 168 // a week
	MaxRecentCalls     = 100 // calls returned at most
)

// RecentCalls returns the calls that started in the last hours hours and are over
// (ended or missed), newest first by start, at most MaxRecentCalls: the board's
// "Recent calls", so that a supervisor can play yesterday's recording after a
// reload. Supervisors and admins only; hours is 1 to MaxRecentHours.
//
// Recorded stays set only on calls that were answered: a recording line marks
// every call it takes, but nothing was recorded of a call nobody answered.
//
// The store is read backwards from now in windows that double (1 h, 2 h, 4 h, ...)
// until MaxRecentCalls are found or the period is covered, so a busy desk reads
// the last hour or two rather than a week of calls, and a quiet one makes a few
// small reads.
func (s *Supervisor) RecentCalls(ctx context.Context, u *User, hours int) ([]*Call, error) {
	if !isSupervisor(u) {
		return nil, fmt.Errorf("recent calls: %w", ErrForbidden)
	}
	if hours < 1 || hours > MaxRecentHours {
		return nil, &FieldError{Field: "hours", Reason: fmt.Sprintf("%d is not 1 to %d hours", hours, MaxRecentHours)}
	}
	now := s.now()
	since := now.Add(-time.Duration(hours) * time.Hour)
	// A little past now: a call that another node, whose clock runs a little
	// ahead, started "after" now is still one of the last hours'.
	to := now.Add(time.Minute)
	out := make([]*Call, 0, 16)
	for window := time.Hour; to.After(since) && len(out) < MaxRecentCalls; window *= 2 {
		from := to.Add(-window)
		if from.Before(since) {
			from = since
		}
		calls, err := s.store.CallsBetween(ctx, from, to)
		if err != nil {
			return nil, fmt.Errorf("recent calls: %w", err)
		}
		// Oldest first from the store: newest first here, after the later windows'.
		for _, c := range slices.Backward(calls) {
			if c == nil || c.Live() {
				continue
			}
			if !c.Talked() {
				c.Recorded = false // nothing was recorded: the customer never answered
			}
			out = append(out, c)
			if len(out) == MaxRecentCalls {
				break
			}
		}
		to = from
	}
	return out, nil
}
