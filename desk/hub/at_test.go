package hub_test

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redistest"
)

// atFormat is the "at" of an event frame: RFC 3339, UTC, microseconds.
var atFormat = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

// atOf returns the "at" of an event frame, parsed, and as sent.
func atOf(t *testing.T, f map[string]any) (time.Time, string) {
	t.Helper()
	s, ok := f["at"].(string)
	if !ok {
		t.Fatalf("frame has no \"at\" string: %v", f)
	}
	if !atFormat.MatchString(s) {
		t.Fatalf("at %q is not RFC 3339 UTC with microseconds", s)
	}
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("at %q: %v", s, err)
	}
	return at, s
}

// TestEventAt: every frame of an event carries the time it was published, the same
// on every page whatever its channel, node or way there (live over Redis, local
// fallback, replay from the history).
func TestEventAt(t *testing.T) {
	cases := []struct {
		name      string
		redisDown bool // deliver through the local fallback
		twoNodes  bool // the supervisor's page is on another node than the publisher
		resume    bool // then the operator's page resumes and is replayed the frame
	}{
		{name: "redis, one node", resume: true},
		{name: "redis, two nodes", twoNodes: true, resume: true},
		{name: "local fallback", redisDown: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var (
				rdb    redis.UniversalClient
				prefix string
			)
			if tc.redisDown {
				down := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t)),
					MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
				t.Cleanup(func() { down.Close() })
				rdb, prefix = down, redistest.Prefix()
			} else {
				rdb, prefix = redistest.Client(t)
			}
			pub := startNode(t, rdb, prefix)
			other := pub
			if tc.twoNodes {
				other = startNode(t, rdb, prefix)
			}
			pa := pub.open(t, opA, -1, "")
			ps := other.open(t, sup, -1, "")
			snap := pa.next(3 * time.Second)
			ps.next(3 * time.Second)

			before := time.Now()
			pub.hub.Publish(ringing(opA.Login, "timed"))
			after := time.Now()

			fa, fs := pa.next(3*time.Second), ps.next(3*time.Second)
			for _, f := range []map[string]any{fa, fs} {
				if f["type"] != desk.EventCallRinging || callID(f) != "timed" {
					t.Fatalf("want the pop, got %v", f)
				}
			}
			at, sa := atOf(t, fa)
			_, ss := atOf(t, fs)
			if sa != ss {
				t.Fatalf("operator's page got at %s, supervisor's %s", sa, ss)
			}
			// The frame has microseconds: the lower bound is cut to them too.
			if lo, hi := before.Truncate(time.Microsecond), after.Round(0); at.Before(lo) || at.After(hi) {
				t.Fatalf("at %s is not between %s and %s", sa, lo.Format(time.RFC3339Nano), hi.Format(time.RFC3339Nano))
			}

			if !tc.resume {
				return
			}
			pa.ws.Close()
			p := other.open(t, opA, seqOf(fa)-1, snap["epoch"].(string))
			f := p.next(3 * time.Second)
			if seqOf(f) != seqOf(fa) || callID(f) != "timed" {
				t.Fatalf("want the replay of seq %d, got %v", seqOf(fa), f)
			}
			if _, s := atOf(t, f); s != sa {
				t.Fatalf("replayed frame has at %s, live one %s", s, sa)
			}
		})
	}
}
