package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// fuzzDecode sends each body to one handler in process, as maria, and holds the
// API to its contract: never a 5xx; every refusal a JSON {"error"} with a reason
// and no change to anything stored; an acceptance (want) a JSON object.
func fuzzDecode(f *testing.F, method, path string, want int, setup func(fe *fullEnv)) {
	fe := newFullEnv(f)
	fe.token(f, "maria")
	if setup != nil {
		setup(fe)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := fe.snapshot(t)
		res := fe.do(t, request{as: "maria", method: method, path: path, body: body})
		if res.status >= 500 {
			t.Fatalf("%s %s with %q: %d %s", method, path, body, res.status, res.body)
		}
		var out map[string]any
		if err := json.Unmarshal(res.body, &out); err != nil {
			t.Fatalf("%s %s with %q: %d, body %q is not a JSON object", method, path, body, res.status, res.body)
		}
		if res.status == want {
			return
		}
		if e, _ := out["error"].(string); strings.TrimSpace(e) == "" {
			t.Fatalf("%s %s with %q: %d without a reason: %s", method, path, body, res.status, res.body)
		}
		if d := diff(withoutEvents(before), withoutEvents(fe.snapshot(t))); d != "" {
			t.Fatalf("%s %s with %q refused (%d %s) but changed the store:\n%s", method, path, body, res.status, res.body, d)
		}
	})
}

// withoutEvents drops the hub's event streams from a snapshot: the hub writes an
// accepted request's events in the background, so the previous input's frames may
// land while this one runs. What a refused request must not change is the data.
func withoutEvents(snap map[string]string) map[string]string {
	out := make(map[string]string, len(snap))
	for k, v := range snap {
		if !strings.Contains(k, "{hub}:") {
			out[k] = v
		}
	}
	return out
}

// FuzzDecodeAnswers feeds bodies to PUT /api/calls/:id/answers on the operator's
// own call in wrap-up. Seeds: testdata/fuzz/FuzzDecodeAnswers and the f.Add lines.
func FuzzDecodeAnswers(f *testing.F) {
	for _, s := range []string{
		`{"op":"o1","step":"contact","fields":{"name":"Ivan","company":"Romashka"}}`,
		`{"op":"o2","step":"company_details","fields":{"email":"ivan@romashka.ru"}}`,
		`{"op":"o3","step":"contact","fields":{"name":null,"position":5,"company":true}}`,
		`{"op":"o4","step":"contact","fields":{"name":{"first":"Ivan"}}}`,
		`{"op":"o5","step":"source","fields":{"source":"exhibition"}}`,
		`{"op":"","step":"contact"}`, `{"op":5}`, `[]`, `null`, `"x"`, ``, `{`, `{"op":"o6"} {}`,
		`{"op":"o7","step":"contact","fields":{"name":"\u0000\ud800"}}`,
		`{"op":"o8","step":"nope","fields":{}}`, `{"op":"o9","step":"contact","fields":{"callback_phone":"call me"}}`,
	} {
		f.Add([]byte(s))
	}
	fuzzDecode(f, "PUT", "/api/calls/c-fuzz/answers", 200, func(fe *fullEnv) {
		fe.endedCall(f, "c-fuzz", "maria", "+79160000601", "", true)
	})
}

// FuzzDecodeContacts feeds bodies to POST /api/contacts. Seeds:
// testdata/fuzz/FuzzDecodeContacts and the f.Add lines.
func FuzzDecodeContacts(f *testing.F) {
	for _, s := range []string{
		`{"name":"Anna","company":"Romashka","phones":["8 (916) 000-07-01"],"manager":"maria"}`,
		`{"name":"Anna","phones":["+79160000701"]}`, // taken by the setup's contact: 409
		`{"name":"","phones":[]}`, `{"name":"A","phones":"+79160000702"}`, `{"name":"A","phones":[1]}`,
		`{"name":"A","email":"no-at-sign"}`, `{"name":"A","manager":"sveta"}`, `{"name":"A","phones":["x","y"]}`,
		`{"name":"A","phones":["+79160000703","+79160000703"]}`, `[]`, `null`, ``, `{"name":1e400}`,
	} {
		f.Add([]byte(s))
	}
	fuzzDecode(f, "POST", "/api/contacts", 201, func(fe *fullEnv) {
		fe.contact(f, "Taken", "boris", "+79160000701")
	})
}
