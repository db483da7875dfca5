package httpapi_test

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
)

// roles are who TestEveryRouteRoles sends each request as: anonymous, an
// operator who does not own the target, a supervisor and an admin.
var roles = [4]string{"", "maria", "sveta", "root"}

// routeRule is the expected outcome of one route for each of roles. path and
// body may hold {as} (the role's login, or "anon"), {n} (0-3, the role's index),
// {kb} (boris's contact), {kr} (the role's contact to reassign) and {wb} (a whisper to
// boris), replaced per request.
type routeRule struct {
	path string
	body string // JSON; "" sends none
	want [4]int
	// header adds request headers.
	header map[string]string
}

// routeRules holds one rule per registered route, keyed "METHOD path" exactly as
// echo registers it; "* /api/*" is the API's catch-all under every method. A route
// without a rule, or a rule without a route, fails TestEveryRouteRoles: a new
// endpoint must state who may use it.
var routeRules = map[string]routeRule{
	"GET /healthz": {path: "/healthz", want: [4]int{200, 200, 200, 200}},
	"GET /readyz":  {path: "/readyz", want: [4]int{200, 200, 200, 200}},
	"GET /metrics": {path: "/metrics", want: [4]int{200, 200, 200, 200}},
	"GET /*":       {path: "/", want: [4]int{200, 200, 200, 200}},
	// Only a browser page gets the websocket: it must be logged in and send our
	// Origin; what each role then receives is the hub's (TestOperatorSocketIsolation).
	"GET /ws": {path: "/ws", want: [4]int{401, 403, 403, 403}},

	"POST /api/session": {path: "/api/session", body: `{}`, want: [4]int{400, 400, 400, 400}},
	"GET /api/session":  {path: "/api/session", want: [4]int{401, 200, 200, 200}},
	"DELETE /api/session": {path: "/api/session", want: [4]int{401, 204, 204, 204},
		header: map[string]string{"Content-Type": "application/json"}},

	"POST /api/users": {path: "/api/users", want: [4]int{401, 403, 403, 201},
		body: `{"login":"new-{as}","name":"New","role":"operator","password":"long enough","sip_password":"s1p"}`},
	"GET /api/users":     {path: "/api/users", want: [4]int{401, 403, 200, 200}},
	"GET /api/operators": {path: "/api/operators", want: [4]int{401, 403, 200, 200}},

	// Anyone logged in may create a contact; reading one is for the operators whose
	// work it is (not maria's: boris manages it) and for staff.
	"POST /api/contacts": {path: "/api/contacts", want: [4]int{401, 201, 201, 201},
		body: `{"name":"New {as}","phones":["+7916555000{n}"]}`},
	"GET /api/contacts":            {path: "/api/contacts?phone=89160000201", want: [4]int{401, 403, 200, 200}},
	"GET /api/contacts/:id":        {path: "/api/contacts/{kb}", want: [4]int{401, 403, 200, 200}},
	"GET /api/contacts/:id/card":   {path: "/api/contacts/{kb}/card", want: [4]int{401, 403, 200, 200}},
	"POST /api/contacts/:id/notes": {path: "/api/contacts/{kb}/notes", body: `{"text":"by {as}"}`, want: [4]int{401, 403, 201, 201}},
	"PUT /api/contacts/:id/manager": {path: "/api/contacts/{kb}/manager", body: `{"manager":"boris"}`,
		want: [4]int{401, 403, 200, 200}},

	// Boris's call: another operator never reads or writes it.
	"GET /api/calls/live":        {path: "/api/calls/live", want: [4]int{401, 200, 200, 200}},
	"GET /api/calls/:id/record":  {path: "/api/calls/c-boris/record", want: [4]int{401, 403, 200, 200}},
	"PUT /api/calls/:id/answers": {path: "/api/calls/c-boris/answers", body: `{"op":"op-{as}","step":"contact","fields":{"position":"CTO"}}`, want: [4]int{401, 403, 200, 200}},
	"POST /api/calls/:id/wrapup": {path: "/api/calls/c-boris/wrapup", body: `{}`, want: [4]int{401, 403, 422, 422}},
	"POST /api/calls/:id/wrapup/force": {path: "/api/calls/cf-{as}/wrapup/force", body: `{"reason":"test"}`,
		want: [4]int{401, 403, 200, 200}},

	"GET /api/promises":           {path: "/api/promises?owner=boris", want: [4]int{401, 403, 200, 200}},
	"POST /api/promises/:id/kept": {path: "/api/promises/pf-{as}/kept", body: `{"result":"done"}`, want: [4]int{401, 403, 200, 200}},
	"GET /api/reports/kept-rate":  {path: "/api/reports/kept-rate", want: [4]int{401, 403, 200, 200}},
	"GET /api/reports/:name":      {path: "/api/reports/calls", want: [4]int{401, 403, 200, 200}},
	"GET /api/config/costs":       {path: "/api/config/costs", want: [4]int{401, 403, 200, 200}},
	"PUT /api/config/costs":       {path: "/api/config/costs", body: `{"costs":{"exhibition":5000},"currency":"RUB"}`, want: [4]int{401, 403, 403, 200}},
	"GET /api/audit":              {path: "/api/audit", want: [4]int{401, 403, 200, 200}},
	"GET /api/webhook/deliveries": {path: "/api/webhook/deliveries", want: [4]int{401, 403, 200, 200}},
	"POST /api/reassign":          {path: "/api/reassign", body: `{"kind":"contact","ids":["{kr}"],"from":"boris","to":"ivan"}`, want: [4]int{401, 403, 200, 200}},
	"GET /api/whispers":           {path: "/api/whispers?operator=boris", want: [4]int{401, 403, 200, 200}},
	"POST /api/whispers/:id/ack":  {path: "/api/whispers/{wb}/ack", body: `{}`, want: [4]int{401, 403, 403, 403}},
	"PUT /api/operators/:login/presence": {path: "/api/operators/boris/presence", body: `{"away":false}`,
		want: [4]int{401, 403, 204, 204}},
	"POST /api/operators/:login/whisper": {path: "/api/operators/boris/whisper", body: `{"text":"hello from {as}"}`,
		want: [4]int{401, 403, 201, 201}},

	// Media mode. The env runs without the media bridge: staff get 409, which says so.
	"POST /api/calls/:id/monitor": {path: "/api/calls/c-boris/monitor", body: `{"mode":"listen"}`,
		want: [4]int{401, 403, 409, 409}},
	"DELETE /api/calls/:id/monitor": {path: "/api/calls/c-boris/monitor", want: [4]int{401, 403, 409, 409},
		header: map[string]string{"Content-Type": "application/json"}},
	"POST /api/promises/:id/callback": {path: "/api/promises/pf-{as}/callback", body: `{}`, want: [4]int{401, 403, 409, 409}},
	"POST /api/calls/:id/callback":    {path: "/api/calls/c-boris/callback", body: `{}`, want: [4]int{401, 403, 409, 409}},
	// No recordings are configured: staff get 404, operators may not play them at all.
	"GET /api/calls/:id/recording": {path: "/api/calls/c-boris/recording", want: [4]int{401, 403, 404, 404}},
	// The calls over in the last hours, where the board finds recordings to play: staff only.
	"GET /api/calls/recent": {path: "/api/calls/recent?hours=48", want: [4]int{401, 403, 200, 200}},

	"* /api/*": {path: "/api/no-such-thing", body: `{}`, want: [4]int{404, 404, 404, 404}},
}

// TestEveryRouteRoles walks every route the server registers and sends each as
// anonymous, an operator (on another operator's things), a supervisor and an
// admin, against the rule table above.
func TestEveryRouteRoles(t *testing.T) {
	fe := newFullEnv(t)
	ctx := context.Background()
	kb := fe.contact(t, "Boris's client", "boris", "+79160000201")
	kr := map[string]string{}
	fe.endedCall(t, "c-boris", "boris", "+79160000201", kb, true)
	for _, as := range []string{"anon", "maria", "sveta", "root"} {
		fe.endedCall(t, "cf-"+as, "ivan", "+79160000203", "", false)
		fe.promise(t, "pf-"+as, "boris", kb)
		kr[as] = fe.contact(t, "To reassign by "+as, "boris", "+791600002"+map[string]string{"anon": "10", "maria": "11", "sveta": "12", "root": "13"}[as])
	}
	sveta, err := fe.store.User(ctx, "sveta")
	if err != nil {
		t.Fatal(err)
	}
	w, err := fe.sup.Whisper(ctx, sveta, "boris", "psst")
	if err != nil {
		t.Fatal(err)
	}

	// Every registered route has a rule, and every rule a route.
	seen := map[string]bool{}
	var keys []string
	for _, r := range fe.api.Echo().Routes() {
		key := r.Method + " " + r.Path
		if r.Path == "/api/*" {
			key = "* /api/*"
		}
		if _, ok := routeRules[key]; !ok {
			t.Errorf("route %s %s has no rule in routeRules: say who may use it", r.Method, r.Path)
			continue
		}
		if !seen[r.Method+" "+r.Path] {
			seen[r.Method+" "+r.Path] = true
			keys = append(keys, r.Method+" "+r.Path)
		}
		seen[key] = true
	}
	for key := range routeRules {
		if !seen[key] {
			t.Errorf("rule %q matches no registered route", key)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	sort.Strings(keys)

	requests := 0
	for _, key := range keys {
		method, path, _ := strings.Cut(key, " ")
		rule := routeRules[key]
		if path == "/api/*" {
			rule = routeRules["* /api/*"]
		}
		for i, as := range roles {
			name := as
			if name == "" {
				name = "anon"
			}
			rep := strings.NewReplacer("{as}", name, "{n}", string(rune('0'+i)), "{kb}", kb, "{kr}", kr[name], "{wb}", w.ID)
			req := request{as: as, method: method, path: rep.Replace(rule.path), header: rule.header}
			if rule.body != "" && method != http.MethodGet && method != http.MethodHead {
				req.body = rep.Replace(rule.body)
			}
			res := fe.do(t, req)
			requests++
			if method == http.MethodHead || method == http.MethodConnect {
				// No body to read; the status alone says it.
			} else if res.status >= 400 {
				res.errorText(t)
			}
			if res.status != rule.want[i] {
				t.Errorf("%s %s as %s: %d %s, want %d", method, req.path, name, res.status, res.body, rule.want[i])
			}
			if key == "DELETE /api/session" && as != "" {
				fe.forget(as) // logged out: the next request logs in again
			}
		}
	}
	t.Logf("FIGURE route-roles: routes=%d requests=%d (every route x anonymous, operator, supervisor, admin)", len(keys), requests)
}

// TestOperatorReach: what an operator may reach of calls and contacts, own
// against another's. Contacts within his work: he manages it, he is on a call with
// it or owes its wrap-up, one of its past calls was his, its open interest is his,
// or it has an open promise of his or of the pool.
func TestOperatorReach(t *testing.T) {
	fe := newFullEnv(t)
	ctx := context.Background()
	kManaged := fe.contact(t, "Managed by maria", "maria", "+79160000301")
	kRinging := fe.contact(t, "Calling maria now", "boris", "+79160000302")
	kWrapup := fe.contact(t, "Maria owes the wrap-up", "", "+79160000303")
	kPast := fe.contact(t, "Called maria last week", "", "+79160000304")
	kInterest := fe.contact(t, "Maria's interest", "", "+79160000305")
	kPromise := fe.contact(t, "Maria's promise", "", "+79160000306")
	kPool := fe.contact(t, "Pool callback", "", "+79160000307")
	kOther := fe.contact(t, "Boris's only", "boris", "+79160000308")
	kStranger := fe.contact(t, "Nobody's", "", "+79160000309")

	// maria is ringing with kRinging (by number only: the pop knew the number).
	if err := fe.store.SaveCall(ctx, &desk.Call{ID: "c-ring", From: "+79160000302", Operator: "maria", State: desk.CallRinging,
		Started: secT0, Line: "sales"}); err != nil {
		t.Fatal(err)
	}
	fe.endedCall(t, "c-maria", "maria", "+79160000303", kWrapup, true)
	fe.endedCall(t, "c-boris", "boris", "+79160000308", kOther, true)
	if err := fe.store.AddHistory(ctx, kPast, desk.CallSummary{CallID: "c-old", At: secT0.AddDate(0, 0, -7), Operator: "maria", Outcome: "interest"}); err != nil {
		t.Fatal(err)
	}
	if err := fe.store.AddHistory(ctx, kOther, desk.CallSummary{CallID: "c-old2", At: secT0.AddDate(0, 0, -7), Operator: "boris", Outcome: "interest"}); err != nil {
		t.Fatal(err)
	}
	if err := fe.store.SaveInterest(ctx, &desk.Interest{ID: "i-m", ContactID: kInterest, Owner: "maria", Stage: "needs_identified", State: "open", Created: secT0}); err != nil {
		t.Fatal(err)
	}
	if err := fe.store.SaveInterest(ctx, &desk.Interest{ID: "i-b", ContactID: kOther, Owner: "boris", Stage: "needs_identified", State: "open", Created: secT0}); err != nil {
		t.Fatal(err)
	}
	fe.promise(t, "p-m", "maria", kPromise)
	fe.promise(t, "p-pool", "", kPool)
	fe.promise(t, "p-b", "boris", kOther)

	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   string
		want   int
	}{
		{"own call's record", "GET", "/api/calls/c-maria/record", "", 200},
		{"own call's answers", "PUT", "/api/calls/c-maria/answers", `{"op":"o1","step":"contact","fields":{"position":"CEO"}}`, 200},
		{"another's record", "GET", "/api/calls/c-boris/record", "", 403},
		{"another's answers", "PUT", "/api/calls/c-boris/answers", `{"op":"o2","step":"contact","fields":{"position":"CEO"}}`, 403},
		{"another's wrap-up", "POST", "/api/calls/c-boris/wrapup", `{"outcome":"not_prospective"}`, 403},
		{"another's live calls are not listed", "GET", "/api/calls/live", "", 200},
		{"another's promises", "GET", "/api/promises?owner=boris", "", 403},
		{"another's promise kept", "POST", "/api/promises/p-b/kept", `{"result":"x"}`, 403},
		{"reports", "GET", "/api/reports/funnel", "", 403},
		{"kept-rate", "GET", "/api/reports/kept-rate", "", 403},
		{"audit", "GET", "/api/audit", "", 403},

		{"managed contact", "GET", "/api/contacts/" + kManaged, "", 200},
		{"managed contact's card", "GET", "/api/contacts/" + kManaged + "/card", "", 200},
		{"managed contact by phone", "GET", "/api/contacts?phone=8 916 000-03-01", "", 200},
		{"ringing caller by phone", "GET", "/api/contacts?phone=+79160000302", "", 200},
		{"ringing caller's card", "GET", "/api/contacts/" + kRinging + "/card", "", 200},
		{"note on the ringing caller", "POST", "/api/contacts/" + kRinging + "/notes", `{"text":"asks for a discount"}`, 201},
		{"contact of the owed wrap-up", "GET", "/api/contacts/" + kWrapup, "", 200},
		{"contact of a past call", "GET", "/api/contacts/" + kPast + "/card", "", 200},
		{"contact of his interest", "GET", "/api/contacts/" + kInterest, "", 200},
		{"contact of his promise", "GET", "/api/contacts/" + kPromise, "", 200},
		{"contact of a pool callback", "GET", "/api/contacts/" + kPool, "", 200},
		{"another operator's contact", "GET", "/api/contacts/" + kOther, "", 403},
		{"another operator's contact's card", "GET", "/api/contacts/" + kOther + "/card", "", 403},
		{"another operator's contact by phone", "GET", "/api/contacts?phone=+79160000308", "", 403},
		{"note on another operator's contact", "POST", "/api/contacts/" + kOther + "/notes", `{"text":"x"}`, 403},
		{"taking another operator's contact", "PUT", "/api/contacts/" + kOther + "/manager", `{"manager":"maria"}`, 403},
		{"a stranger", "GET", "/api/contacts/" + kStranger, "", 403},
		{"an unknown contact", "GET", "/api/contacts/nope", "", 404},
		{"creating a contact", "POST", "/api/contacts", `{"name":"Walk-in","phones":["+79160000399"],"manager":"maria"}`, 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request{as: "maria", method: tc.method, path: strings.ReplaceAll(tc.path, " ", "%20")}
			if tc.body != "" {
				req.body = tc.body
			}
			res := fe.do(t, req)
			if res.status != tc.want {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, res.status, res.body, tc.want)
			}
			if res.status >= 400 {
				res.errorText(t)
			}
			if tc.path == "/api/calls/live" {
				var calls []desk.Call
				res.json(t, &calls)
				for _, c := range calls {
					if c.Operator != "maria" {
						t.Fatalf("maria sees %s's call %s", c.Operator, c.ID)
					}
				}
			}
		})
	}
	// Boris, who manages kOther, reads it; staff read everything.
	for _, as := range []string{"boris", "sveta", "root"} {
		if res := fe.do(t, request{as: as, method: "GET", path: "/api/contacts/" + kOther + "/card"}); res.status != 200 {
			t.Fatalf("%s reading kOther's card: %d %s", as, res.status, res.body)
		}
	}
}

// TestAuditLog: each admin and supervisor action leaves an entry that GET
// /api/audit shows, newest first, with who and what.
func TestAuditLog(t *testing.T) {
	fe := newFullEnv(t)
	kb := fe.contact(t, "Boris's client", "boris", "+79160000401")
	fe.endedCall(t, "c-force", "boris", "+79160000401", kb, true)
	fe.endedCall(t, "c-close", "ivan", "+79160000402", "", true)
	steps := []struct {
		as, method, path, body string
		want                   int
		action, target         string
	}{
		{"root", "POST", "/api/users", `{"login":"olga","name":"Olga","role":"supervisor","password":"long enough"}`, 201, "user.create", "olga"},
		{"root", "PUT", "/api/config/costs", `{"costs":{"exhibition":5000},"currency":"RUB"}`, 200, "config.costs", "channel_costs"},
		{"sveta", "POST", "/api/calls/c-force/wrapup/force", `{"reason":"boris went home"}`, 200, "wrapup.force", "c-force"},
		{"sveta", "POST", "/api/calls/c-close/wrapup", `{"outcome":"not_prospective"}`, 200, "wrapup.close", "c-close"},
		{"sveta", "POST", "/api/reassign", `{"kind":"contact","ids":["` + kb + `"],"from":"boris","to":"ivan"}`, 200, "reassign.contact", kb},
		{"sveta", "PUT", "/api/operators/maria/presence", `{"away":true}`, 204, "presence.force", "maria"},
		{"sveta", "POST", "/api/operators/maria/whisper", `{"text":"smile"}`, 201, "whisper", "maria"},
		{"root", "PUT", "/api/contacts/" + kb + "/manager", `{"manager":"maria"}`, 200, "contact.manager", kb},
	}
	// The supervisor fills in ivan's record before closing his wrap-up for him
	// (answers carry who typed them; closing is the audited act).
	for _, a := range []string{`{"op":"a1","step":"contact","fields":{"name":"Ivan","company":"Romashka"}}`,
		`{"op":"a2","step":"source","fields":{"source":"exhibition"}}`} {
		if res := fe.do(t, request{as: "sveta", method: "PUT", path: "/api/calls/c-close/answers", body: a}); res.status != 200 {
			t.Fatalf("answers: %d %s", res.status, res.body)
		}
	}
	for _, st := range steps {
		fe.clock.Add(time.Minute)
		res := fe.do(t, request{as: st.as, method: st.method, path: st.path, body: st.body})
		if res.status != st.want {
			t.Fatalf("%s %s as %s: %d %s, want %d", st.method, st.path, st.as, res.status, res.body, st.want)
		}
	}
	// An operator's own actions are not staff actions: no entry.
	if res := fe.do(t, request{as: "maria", method: "POST", path: "/api/contacts", body: `{"name":"x","phones":["+79160000403"]}`}); res.status != 201 {
		t.Fatalf("contact: %d %s", res.status, res.body)
	}

	res := fe.do(t, request{as: "sveta", method: "GET", path: "/api/audit"})
	var entries []desk.AuditEntry
	res.json(t, &entries)
	if res.status != 200 || len(entries) != len(steps) {
		t.Fatalf("audit: %d, %d entries, want %d: %s", res.status, len(entries), len(steps), res.body)
	}
	for i, st := range steps {
		e := entries[len(steps)-1-i] // newest first
		if e.Action != st.action || e.Target != st.target || e.Who != st.as || !e.At.Equal(secT0.Add(time.Duration(i+1)*time.Minute)) {
			t.Errorf("entry for %s %s: %+v, want action %s target %s by %s", st.method, st.path, e, st.action, st.target, st.as)
		}
	}
	for _, e := range entries {
		t.Logf("audit: %s %-16s %-18s %-10s %s", e.At.Format(time.TimeOnly), e.Action, e.Target, e.Who, e.Detail)
	}
}
