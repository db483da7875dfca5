package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRejectionsLeaveStoreUnchanged: every refused request answers a JSON error
// with a reason and leaves every stored key as it was, checked by reading the
// whole key space under the test's prefix before and after.
func TestRejectionsLeaveStoreUnchanged(t *testing.T) {
	fe := newFullEnv(t)
	kb := fe.contact(t, "Boris's client", "boris", "+79160000501")
	fe.contact(t, "Maria's client", "maria", "+79160000502")
	fe.endedCall(t, "c-maria", "maria", "+79160000502", "", true)
	fe.endedCall(t, "c-boris", "boris", "+79160000501", kb, true)
	for _, u := range []string{"maria", "boris", "sveta", "root"} {
		fe.token(t, u) // sessions first: they are stored keys too
	}
	big := `{"op":"big","step":"contact","fields":{"name":"` + strings.Repeat("x", 70<<10) + `"}}`

	cases := []struct {
		name   string
		as     string
		method string
		path   string
		body   any
		header map[string]string
		want   int
		reason string // in the error text
	}{
		{"answers: bad JSON", "maria", "PUT", "/api/calls/c-maria/answers", `{"op":"x",`, nil, 400, "bad json"},
		{"answers: trailing data", "maria", "PUT", "/api/calls/c-maria/answers", `{"op":"x","step":"contact","fields":{}} {}`, nil, 400, "after the JSON value"},
		{"answers: wrong type", "maria", "PUT", "/api/calls/c-maria/answers", `{"op":5}`, nil, 400, "cannot unmarshal"},
		{"answers: no op", "maria", "PUT", "/api/calls/c-maria/answers", `{"step":"contact","fields":{"name":"A"}}`, nil, 400, "op"},
		{"answers: object as a value", "maria", "PUT", "/api/calls/c-maria/answers", `{"op":"o","step":"contact","fields":{"name":{"a":1}}}`, nil, 400, "fields.name"},
		{"answers: unknown step", "maria", "PUT", "/api/calls/c-maria/answers", `{"op":"o","step":"nope","fields":{"name":"A"}}`, nil, 400, "step"},
		{"answers: unknown field", "maria", "PUT", "/api/calls/c-maria/answers", `{"op":"o","step":"contact","fields":{"nope":"A"}}`, nil, 400, "nope"},
		{"answers: bad e-mail", "maria", "PUT", "/api/calls/c-maria/answers", `{"op":"o","step":"company_details","fields":{"email":"at home"}}`, nil, 400, "email"},
		{"answers: another's call", "maria", "PUT", "/api/calls/c-boris/answers", `{"op":"o","step":"contact","fields":{"name":"A"}}`, nil, 403, "forbidden"},
		{"answers: unknown call", "maria", "PUT", "/api/calls/nope/answers", `{"op":"o","step":"contact","fields":{"name":"A"}}`, nil, 404, "not found"},
		{"answers: not logged in", "", "PUT", "/api/calls/c-maria/answers", `{"op":"o","step":"contact","fields":{"name":"A"}}`, nil, 401, "not logged in"},
		{"answers: oversize body", "maria", "PUT", "/api/calls/c-maria/answers", big, nil, 413, "64 KB"},
		{"answers: oversize body, no length", "maria", "PUT", "/api/calls/c-maria/answers", io.MultiReader(strings.NewReader(big)), nil, 413, "64 KB"},
		{"answers: form content type", "maria", "PUT", "/api/calls/c-maria/answers", `op=o`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"},
		{"answers: foreign origin", "maria", "PUT", "/api/calls/c-maria/answers", `{"op":"o","step":"contact","fields":{"name":"A"}}`, map[string]string{"Origin": "https://evil.example"}, 403, "cross-origin"},
		{"wrap-up: incomplete", "maria", "POST", "/api/calls/c-maria/wrapup", `{"outcome":"deal"}`, nil, 422, "incomplete"},
		{"wrap-up: bad outcome", "maria", "POST", "/api/calls/c-maria/wrapup", `{"outcome":"maybe"}`, nil, 400, "outcome"},
		{"contact: no name", "maria", "POST", "/api/contacts", `{"phones":["+79160000509"]}`, nil, 400, "name"},
		{"contact: bad phone", "maria", "POST", "/api/contacts", `{"name":"A","phones":["+79160000509","call me"]}`, nil, 400, "not a valid phone number"},
		{"contact: phone taken", "maria", "POST", "/api/contacts", `{"name":"A","phones":["+79160000509","8 916 000-05-01"]}`, nil, 409, "already belongs"},
		{"contact: manager not an operator", "maria", "POST", "/api/contacts", `{"name":"A","phones":["+79160000509"],"manager":"sveta"}`, nil, 400, "manager"},
		{"contact: phones not a list", "maria", "POST", "/api/contacts", `{"name":"A","phones":"+79160000509"}`, nil, 400, "cannot unmarshal"},
		{"contact: oversize", "maria", "POST", "/api/contacts", `{"name":"` + strings.Repeat("я", 40<<10) + `"}`, nil, 413, "64 KB"},
		{"note: outside his work", "maria", "POST", "/api/contacts/" + kb + "/notes", `{"text":"x"}`, nil, 403, "forbidden"},
		{"note: empty", "sveta", "POST", "/api/contacts/" + kb + "/notes", `{"text":" "}`, nil, 400, "text"},
		{"manager: not an operator", "sveta", "PUT", "/api/contacts/" + kb + "/manager", `{"manager":"root"}`, nil, 400, "manager"},
		{"user: weak password", "root", "POST", "/api/users", `{"login":"olga","role":"operator","password":"short","sip_password":"x"}`, nil, 400, "password"},
		{"user: bad login", "root", "POST", "/api/users", `{"login":"Olga Ivanova","role":"operator","password":"long enough","sip_password":"x"}`, nil, 400, "login"},
		{"user: taken", "root", "POST", "/api/users", `{"login":"maria","role":"operator","password":"long enough","sip_password":"x"}`, nil, 409, "already taken"},
		{"user: by a supervisor", "sveta", "POST", "/api/users", `{"login":"olga","role":"admin","password":"long enough"}`, nil, 403, "forbidden"},
		{"costs: by a supervisor", "sveta", "PUT", "/api/config/costs", `{"costs":{"exhibition":1},"currency":"RUB"}`, nil, 403, "forbidden"},
		{"costs: negative", "root", "PUT", "/api/config/costs", `{"costs":{"exhibition":-1},"currency":"RUB"}`, nil, 400, "exhibition"},
		{"whisper: empty", "sveta", "POST", "/api/operators/boris/whisper", `{"text":""}`, nil, 400, "text"},
		{"whisper: not an operator", "sveta", "POST", "/api/operators/root/whisper", `{"text":"hi"}`, nil, 404, "not found"},
		{"presence: no away", "sveta", "PUT", "/api/operators/boris/presence", `{}`, nil, 400, "away"},
		{"reassign: bad kind", "sveta", "POST", "/api/reassign", `{"kind":"car","from":"boris","to":"ivan"}`, nil, 400, "kind"},
		{"reassign: to a supervisor", "sveta", "POST", "/api/reassign", `{"kind":"contact","from":"boris","to":"sveta"}`, nil, 400, "to"},
		{"force: no reason", "sveta", "POST", "/api/calls/c-boris/wrapup/force", `{}`, nil, 400, "reason"},
		{"login: wrong password", "", "POST", "/api/session", `{"login":"maria","password":"nope nope"}`, nil, 401, "wrong login or password"},
	}
	changed := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := fe.snapshot(t)
			res := fe.do(t, request{as: tc.as, method: tc.method, path: tc.path, body: tc.body, header: tc.header})
			if res.status != tc.want {
				t.Fatalf("%d %.300s, want %d", res.status, res.body, tc.want)
			}
			if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("error with Content-Type %q", ct)
			}
			if got := res.errorText(t); !strings.Contains(got, tc.reason) {
				t.Fatalf("error %q, want it to name %q", got, tc.reason)
			}
			if d := diff(before, fe.snapshot(t)); d != "" {
				changed++
				t.Fatalf("a refused request changed the store:\n%s", d)
			}
		})
	}
	// The same requests done right do change it: the snapshot would have seen.
	before := fe.snapshot(t)
	if res := fe.do(t, request{as: "maria", method: "PUT", path: "/api/calls/c-maria/answers",
		body: `{"op":"ok","step":"contact","fields":{"name":"A"}}`}); res.status != http.StatusOK {
		t.Fatalf("answers: %d %s", res.status, res.body)
	}
	if diff(before, fe.snapshot(t)) == "" {
		t.Fatal("an accepted answer changed nothing the snapshot sees")
	}
	t.Logf("FIGURE rejections: cases=%d stored_changes=%d", len(cases), changed)
}
