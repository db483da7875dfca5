package httpapi_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
)

// TestRecentCallsAPI: GET /api/calls/recent lists the calls over in the last hours
// (24 by default), newest first, with "recorded" on the recorded ones; staff only,
// and a wrong hours is 400 with why.
func TestRecentCallsAPI(t *testing.T) {
	fe := newFullEnv(t)
	ctx := context.Background()
	old := &desk.Call{ID: "c-old", SIPCallID: "sip-c-old", From: "+79160000800", To: "sales", Line: "sales", Operator: "boris",
		State: desk.CallMissed, Started: secT0.Add(-30 * time.Hour)}
	if err := fe.store.SaveCall(ctx, old); err != nil {
		t.Fatal(err)
	}
	rec := fe.endedCall(t, "c-rec", "maria", "+79160000801", "", false)
	rec.Media, rec.Recorded = true, true
	if err := fe.store.SaveCall(ctx, rec); err != nil {
		t.Fatal(err)
	}
	fe.clock.Add(time.Minute)
	fe.endedCall(t, "c-plain", "boris", "+79160000802", "", false)
	fe.liveCall(t, "c-live", "maria", desk.CallAnswered, true)

	for _, tc := range []struct {
		name    string
		as      string
		query   string
		want    int
		wantIDs []string // newest first; "ID:rec" when recorded
		wantErr string   // a part of the error text
	}{
		{"supervisor, the last day", "sveta", "", 200, []string{"c-plain", "c-rec:rec"}, ""},
		{"admin, two days", "root", "?hours=48", 200, []string{"c-plain", "c-rec:rec", "c-old"}, ""},
		{"a week at most", "sveta", "?hours=168", 200, []string{"c-plain", "c-rec:rec", "c-old"}, ""},
		{"an hour, spaces around", "sveta", "?hours=%201%20", 200, []string{"c-plain", "c-rec:rec"}, ""},
		{"operator", "maria", "", 403, nil, "forbidden for role operator"},
		{"anonymous", "", "", 401, nil, "not logged in"},
		{"hours not a number", "sveta", "?hours=day", 400, nil, `hours: "day" is not a whole number of hours (1 to 168)`},
		{"hours not whole", "sveta", "?hours=1.5", 400, nil, "not a whole number"},
		{"no hours", "sveta", "?hours=0", 400, nil, "hours: 0 is not 1 to 168 hours"},
		{"negative hours", "root", "?hours=-24", 400, nil, "hours: -24 is not 1 to 168 hours"},
		{"more than a week", "sveta", "?hours=169", 400, nil, "hours: 169 is not 1 to 168 hours"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := fe.do(t, request{as: tc.as, method: "GET", path: "/api/calls/recent" + tc.query})
			if res.status != tc.want {
				t.Fatalf("GET /api/calls/recent%s as %q: %d %s, want %d", tc.query, tc.as, res.status, res.body, tc.want)
			}
			if res.status >= 400 {
				if msg := res.errorText(t); !strings.Contains(msg, tc.wantErr) {
					t.Errorf("error %q does not say %q", msg, tc.wantErr)
				}
				if res.status == 400 {
					var body struct {
						Field string `json:"field"`
					}
					res.json(t, &body)
					if body.Field != "hours" {
						t.Errorf("400 names field %q, want hours: %s", body.Field, res.body)
					}
				}
				return
			}
			var calls []map[string]any
			res.json(t, &calls)
			var got []string
			for _, c := range calls {
				id, _ := c["id"].(string)
				if c["recorded"] == true {
					id += ":rec"
				}
				got = append(got, id)
			}
			if !slices.Equal(got, tc.wantIDs) {
				t.Errorf("calls %q; want %q", got, tc.wantIDs)
			}
		})
	}
}

// TestRecentCallsNotConfigured: a server without the supervisor's service says so.
func TestRecentCallsNotConfigured(t *testing.T) {
	e := newEnv(t)
	e.user("sveta", desk.RoleSupervisor)
	res := e.loggedIn("sveta").do("GET", "/api/calls/recent", nil, nil)
	if res.status != 503 || !strings.Contains(string(res.body), "recent calls is not configured") {
		t.Errorf("without the supervisor's service: %d %s", res.status, res.body)
	}
}
