package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redistest"
)

func TestLogin(t *testing.T) {
	e := newEnv(t)
	e.user("anna", desk.RoleOperator)
	cases := []struct {
		name       string
		body       any
		wantStatus int
		wantError  string
	}{
		{"ok", map[string]string{"login": "anna", "password": password}, 200, ""},
		{"login is case-insensitive", map[string]string{"login": "Anna", "password": password}, 200, ""},
		{"wrong password", map[string]string{"login": "anna", "password": "nope nope"}, 401, "wrong login or password"},
		{"unknown login", map[string]string{"login": "zed", "password": password}, 401, "wrong login or password"},
		{"missing password", map[string]string{"login": "anna"}, 400, "required"},
		{"bad json", `{"login": "anna", `, 400, "bad json: unexpected EOF"},
		{"wrong type", `{"login": 5}`, 400, "bad json: json: cannot unmarshal number"},
		{"empty body", ``, 400, "bad json: empty body"},
		{"unknown fields are allowed", map[string]any{"login": "anna", "password": password, "remember": true}, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := e.client().do("POST", "/api/session", tc.body, nil)
			if res.status != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", res.status, res.body, tc.wantStatus)
			}
			if tc.wantError != "" {
				if got := res.errorText(t); !strings.Contains(got, tc.wantError) {
					t.Fatalf("error %q, want it to contain %q", got, tc.wantError)
				}
				if len(res.header.Values("Set-Cookie")) != 0 {
					t.Fatalf("a refused login set a cookie")
				}
				return
			}
			var u map[string]any
			res.json(t, &u)
			if u["login"] != "anna" || u["role"] != "operator" {
				t.Fatalf("user %v", u)
			}
			if strings.Contains(string(res.body), "argon2") || strings.Contains(string(res.body), "hash") {
				t.Fatalf("credentials leaked: %s", res.body)
			}
			cookies := (&http.Response{Header: res.header}).Cookies()
			if len(cookies) != 1 {
				t.Fatalf("cookies %v", cookies)
			}
			c := cookies[0]
			if c.Name != "desk_session" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure || c.Value == "" {
				t.Fatalf("cookie flags: %+v", c)
			}
		})
	}
}

func TestSessionLifecycle(t *testing.T) {
	e := newEnv(t)
	e.user("anna", desk.RoleOperator)
	c := e.client()
	if res := c.do("GET", "/api/session", nil, nil); res.status != 401 {
		t.Fatalf("no cookie: %d", res.status)
	}
	c = e.loggedIn("anna")
	res := c.do("GET", "/api/session", nil, nil)
	var u desk.User
	res.json(t, &u)
	if res.status != 200 || u.Login != "anna" {
		t.Fatalf("session: %d %s", res.status, res.body)
	}
	if res := c.do("DELETE", "/api/session", nil, nil); res.status != 204 {
		t.Fatalf("logout: %d %s", res.status, res.body)
	}
	if res := c.do("GET", "/api/session", nil, nil); res.status != 401 {
		t.Fatalf("after logout: %d", res.status)
	}
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	e.user("anna", desk.RoleOperator)
	e.user("sveta", desk.RoleSupervisor)
	e.user("root", desk.RoleAdmin)
	newUser := func(login string) map[string]string {
		return map[string]string{"login": login, "name": "X", "role": "operator", "password": "long enough", "sip_password": "s1p"}
	}
	cases := []struct {
		as         string // "" = not logged in
		method     string
		path       string
		body       any
		wantStatus int
	}{
		{"", "GET", "/api/users", nil, 401},
		{"", "POST", "/api/users", newUser("u0"), 401},
		{"anna", "POST", "/api/users", newUser("u1"), 403},
		{"sveta", "POST", "/api/users", newUser("u2"), 403},
		{"root", "POST", "/api/users", newUser("u3"), 201},
		{"anna", "GET", "/api/users", nil, 403},
		{"sveta", "GET", "/api/users", nil, 200},
		{"root", "GET", "/api/users", nil, 200},
		{"anna", "GET", "/api/operators", nil, 403},
		{"sveta", "GET", "/api/operators", nil, 200},
		{"", "GET", "/api/calls/live", nil, 401},
		{"anna", "GET", "/api/calls/live", nil, 200},
		{"", "GET", "/api/contacts?phone=89160000001", nil, 401},
		{"anna", "GET", "/api/nothing-here", nil, 404},
	}
	clients := map[string]*client{"": e.client()}
	for _, l := range []string{"anna", "sveta", "root"} {
		clients[l] = e.loggedIn(l)
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %s %s as %q", tc.method, tc.path, "", tc.as), func(t *testing.T) {
			res := clients[tc.as].do(tc.method, tc.path, tc.body, nil)
			if res.status != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", res.status, res.body, tc.wantStatus)
			}
			if res.status >= 400 {
				res.errorText(t)
			}
		})
	}
}

func TestCreateUser(t *testing.T) {
	e := newEnv(t)
	e.user("root", desk.RoleAdmin)
	admin := e.loggedIn("root")
	cases := []struct {
		name       string
		body       map[string]string
		wantStatus int
		wantField  string
	}{
		{"operator", map[string]string{"login": "oleg", "name": "Oleg", "role": "operator", "password": "12345678", "sip_password": "sippy"}, 201, ""},
		{"supervisor without sip password", map[string]string{"login": "sam", "role": "supervisor", "password": "12345678"}, 201, ""},
		{"duplicate", map[string]string{"login": "oleg", "role": "operator", "password": "12345678", "sip_password": "x"}, 409, "login"},
		{"upper-case login", map[string]string{"login": "Oleg2", "role": "operator", "password": "12345678", "sip_password": "x"}, 400, "login"},
		{"one-letter login", map[string]string{"login": "o", "role": "operator", "password": "12345678", "sip_password": "x"}, 400, "login"},
		{"login with a space", map[string]string{"login": "o leg", "role": "operator", "password": "12345678", "sip_password": "x"}, 400, "login"},
		{"bad role", map[string]string{"login": "olga", "role": "boss", "password": "12345678", "sip_password": "x"}, 400, "role"},
		{"short password", map[string]string{"login": "olga", "role": "operator", "password": "1234567", "sip_password": "x"}, 400, "password"},
		{"operator without sip password", map[string]string{"login": "olga", "role": "operator", "password": "12345678"}, 400, "sip_password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := admin.do("POST", "/api/users", tc.body, nil)
			if res.status != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", res.status, res.body, tc.wantStatus)
			}
			if tc.wantField != "" {
				var body struct{ Error, Field string }
				res.json(t, &body)
				if body.Field != tc.wantField || body.Error == "" {
					t.Fatalf("error %+v, want field %s", body, tc.wantField)
				}
			}
		})
	}
	u, err := e.store.User(context.Background(), "oleg")
	if err != nil {
		t.Fatal(err)
	}
	if u.SIPHA1 != desk.SIPHA1("oleg", realm, "sippy") || !desk.CheckPassword(u.PasswordHash, "12345678") {
		t.Fatalf("credentials not stored as expected: %+v", u)
	}
	// The new operator can log in.
	c := e.client()
	if res := c.do("POST", "/api/session", map[string]string{"login": "oleg", "password": "12345678"}, nil); res.status != 200 {
		t.Fatalf("new user login: %d %s", res.status, res.body)
	}
}

func TestContacts(t *testing.T) {
	e := newEnv(t)
	e.user("anna", desk.RoleOperator)
	c := e.loggedIn("anna")
	res := c.do("POST", "/api/contacts", map[string]any{
		"name": "Ivan Petrov", "company": "Romashka", "position": "CTO", "email": "ivan@romashka.test",
		"phones": []string{"8 (916) 000-00-01", "+7 495 123-45-67"}, "manager": "anna", "notes": "likes tea",
	}, nil)
	if res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	var created desk.Contact
	res.json(t, &created)
	if created.ID == "" || len(created.Phones) != 2 || created.Phones[0] != "+79160000001" || created.Phones[1] != "+74951234567" {
		t.Fatalf("created %+v", created)
	}

	for _, form := range []string{"8 (916) 000-00-01", "+7 916 000 00 01", "79160000001", "+74951234567"} {
		t.Run("find by "+form, func(t *testing.T) {
			res := c.do("GET", "/api/contacts?phone="+strings.NewReplacer(" ", "%20", "+", "%2B", "(", "%28", ")", "%29").Replace(form), nil, nil)
			var got desk.Contact
			res.json(t, &got)
			if res.status != 200 || got.ID != created.ID || got.Manager != "anna" {
				t.Fatalf("%d %s", res.status, res.body)
			}
		})
	}

	cases := []struct {
		name       string
		method     string
		path       string
		body       any
		wantStatus int
		wantError  string
	}{
		{"by id", "GET", "/api/contacts/" + created.ID, nil, 200, ""},
		{"unknown id", "GET", "/api/contacts/nope", nil, 404, "no such contact"},
		{"unknown number", "GET", "/api/contacts?phone=%2B79169999999", nil, 404, "no contact"},
		{"bad number in lookup", "GET", "/api/contacts?phone=abc", nil, 400, "not a valid phone number"},
		{"no number in lookup", "GET", "/api/contacts", nil, 400, "required"},
		{"invalid phone", "POST", "/api/contacts", map[string]any{"name": "X", "phones": []string{"12"}}, 400, `"12" (#1) is not a valid phone number`},
		{"duplicate phone", "POST", "/api/contacts", map[string]any{"name": "Y", "phones": []string{"+79160000001"}}, 409, "already belongs"},
		{"no name", "POST", "/api/contacts", map[string]any{"phones": []string{"+79160000002"}}, 400, "name"},
		{"unknown manager", "POST", "/api/contacts", map[string]any{"name": "Z", "manager": "ghost"}, 400, "manager"},
		{"bad json", "POST", "/api/contacts", `{"name": }`, 400, "bad json: invalid character"},
		{"body over 64 KB", "POST", "/api/contacts", `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "64 KB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := c.do(tc.method, tc.path, tc.body, nil)
			if res.status != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", res.status, res.body, tc.wantStatus)
			}
			if tc.wantError != "" {
				if got := res.errorText(t); !strings.Contains(got, tc.wantError) {
					t.Fatalf("error %q, want %q", got, tc.wantError)
				}
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	e.user("anna", desk.RoleOperator)
	c := e.loggedIn("anna")
	body := map[string]any{"name": "C"}
	cases := []struct {
		name       string
		headers    map[string]string
		wantStatus int
	}{
		{"json from our origin", map[string]string{"Origin": e.srv.URL}, 201},
		{"json without origin (non-browser)", nil, 201},
		{"form content type", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"text/plain", map[string]string{"Content-Type": "text/plain"}, 415},
		{"no content type", map[string]string{"Content-Type": ""}, 415},
		{"foreign origin", map[string]string{"Origin": "http://evil.test"}, 403},
		{"same host other scheme", map[string]string{"Origin": strings.Replace(e.srv.URL, "http:", "https:", 1)}, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := c.do("POST", "/api/contacts", body, tc.headers)
			if res.status != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", res.status, res.body, tc.wantStatus)
			}
		})
	}
	// The login is exempt from the JSON rule but not from the Origin rule.
	if res := e.client().do("POST", "/api/session", map[string]string{"login": "anna", "password": password}, map[string]string{"Origin": "http://evil.test"}); res.status != 403 {
		t.Fatalf("cross-origin login: %d", res.status)
	}
	if res := e.client().do("POST", "/api/session", map[string]string{"login": "anna", "password": password}, map[string]string{"Content-Type": "text/plain"}); res.status != 200 {
		t.Fatalf("login without JSON content type: %d", res.status)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/", "/supervisor.html", "/desk.js", "/api/session", "/healthz", "/nope"} {
		t.Run(path, func(t *testing.T) {
			res := e.client().do("GET", path, nil, nil)
			want := map[string]string{
				"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "same-origin",
				"X-Frame-Options":         "DENY",
			}
			for k, v := range want {
				if got := res.header.Get(k); got != v {
					t.Fatalf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
	res := e.client().do("GET", "/", nil, nil)
	if res.status != 200 || !strings.Contains(string(res.body), `<script type="module" src="desk.js">`) {
		t.Fatalf("index: %d", res.status)
	}
	if res := e.client().do("GET", "/nope", nil, nil); res.status != 404 {
		t.Fatalf("missing file: %d", res.status)
	}
}

func TestLiveCallsAndOperators(t *testing.T) {
	e := newEnv(t)
	e.user("anna", desk.RoleOperator)
	e.user("boris", desk.RoleOperator)
	e.user("sveta", desk.RoleSupervisor)
	ctx := context.Background()
	for _, c := range []*desk.Call{
		{ID: "c-anna", Operator: "anna", State: desk.CallRinging, From: "+79160000001", Started: time.Now()},
		{ID: "c-boris", Operator: "boris", State: desk.CallAnswered, From: "+79160000002", Started: time.Now()},
		{ID: "c-done", Operator: "anna", State: desk.CallEnded, From: "+79160000003", Started: time.Now()},
	} {
		if err := e.store.SaveCall(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		as   string
		want []string
	}{
		{"anna", []string{"c-anna"}},
		{"boris", []string{"c-boris"}},
		{"sveta", []string{"c-anna", "c-boris"}},
	}
	for _, tc := range cases {
		t.Run(tc.as, func(t *testing.T) {
			var calls []desk.Call
			e.loggedIn(tc.as).do("GET", "/api/calls/live", nil, nil).json(t, &calls)
			got := map[string]bool{}
			for _, c := range calls {
				got[c.ID] = true
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for _, id := range tc.want {
				if !got[id] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
	var ops []desk.Operator
	e.loggedIn("sveta").do("GET", "/api/operators", nil, nil).json(t, &ops)
	if len(ops) != 2 {
		t.Fatalf("operators %+v", ops)
	}
}

func wsURL(e *env, query string) string {
	return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws" + query
}

func TestWebsocketOrigin(t *testing.T) {
	e := newEnv(t)
	e.user("anna", desk.RoleOperator)
	c := e.loggedIn("anna")
	cases := []struct {
		name       string
		origin     string
		cookie     bool
		wantStatus int
	}{
		{"same origin", e.srv.URL, true, 101},
		{"foreign origin", "http://evil.test", true, 403},
		{"no origin", "", true, 403},
		{"no session", e.srv.URL, false, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			if tc.cookie {
				d.Jar = c.hc.Jar
			}
			ws, res, err := d.Dial(wsURL(e, ""), h)
			if res == nil {
				t.Fatalf("no response: %v", err)
			}
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus != 101 {
				return
			}
			defer ws.Close()
			var snap struct {
				Type     string         `json:"type"`
				Seq      *int64         `json:"seq"`
				Epoch    string         `json:"epoch"`
				User     desk.User      `json:"user"`
				Calls    []desk.Call    `json:"calls"`
				Operator *desk.Operator `json:"operator"`
			}
			ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			if err := ws.ReadJSON(&snap); err != nil {
				t.Fatal(err)
			}
			if snap.Type != "snapshot" || snap.Seq == nil || snap.Epoch == "" || snap.User.Login != "anna" || snap.Calls == nil || snap.Operator == nil {
				t.Fatalf("snapshot %+v", snap)
			}
			// The open page counts as page_open in the store's presence.
			deadline := time.Now().Add(3 * time.Second)
			for {
				ops, err := e.store.Operators(context.Background())
				if err == nil && len(ops) == 1 && ops[0].PageOpen {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("page not marked open: %+v %v", ops, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func TestPresenceFrame(t *testing.T) {
	e := newEnv(t)
	e.user("anna", desk.RoleOperator)
	e.user("sveta", desk.RoleSupervisor)
	dial := func(login string) *websocket.Conn {
		c := e.loggedIn(login)
		d := websocket.Dialer{Jar: c.hc.Jar}
		ws, _, err := d.Dial(wsURL(e, ""), http.Header{"Origin": {e.srv.URL}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	sup := dial("sveta")
	var f map[string]any
	sup.ReadJSON(&f) // snapshot
	op := dial("anna")
	op.ReadJSON(&f) // snapshot
	if err := op.WriteJSON(map[string]any{"type": "presence", "away": true}); err != nil {
		t.Fatal(err)
	}
	// The supervisor sees the page open, then anna going away.
	sup.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f = nil
		if err := sup.ReadJSON(&f); err != nil {
			t.Fatalf("no away presence frame: %v", err)
		}
		o, _ := f["operator"].(map[string]any)
		if f["type"] == "presence" && o["login"] == "anna" && o["away"] == true {
			if o["status"] != "away" {
				t.Fatalf("away operator with status %v", o["status"])
			}
			break
		}
	}
	ops, err := e.store.Operators(context.Background())
	if err != nil || len(ops) != 1 || !ops[0].Away {
		t.Fatalf("away not stored: %+v %v", ops, err)
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	if res := e.client().do("GET", "/healthz", nil, nil); res.status != 200 {
		t.Fatalf("healthz %d", res.status)
	}
	if res := e.client().do("GET", "/readyz", nil, nil); res.status != 200 {
		t.Fatalf("readyz %d %s", res.status, res.body)
	}
	res := e.client().do("GET", "/metrics", nil, nil)
	if res.status != 200 || !strings.Contains(string(res.body), "desk_http_requests_total") || !strings.Contains(string(res.body), "desk_hub_connections") {
		t.Fatalf("metrics %d", res.status)
	}

	// A store whose Redis is gone: alive, not ready, with the reason.
	down := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t)), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { down.Close() })
	d := newEnvOn(t, down, redistest.Prefix())
	if res := d.client().do("GET", "/healthz", nil, nil); res.status != 200 {
		t.Fatalf("healthz with Redis down: %d", res.status)
	}
	res = d.client().do("GET", "/readyz", nil, nil)
	if res.status != 503 || !strings.Contains(res.errorText(t), "store") {
		t.Fatalf("readyz with Redis down: %d %s", res.status, res.body)
	}
	// And a login answers 503, not 401.
	if res := d.client().do("POST", "/api/session", map[string]string{"login": "anna", "password": password}, nil); res.status != 503 {
		t.Fatalf("login with Redis down: %d %s", res.status, res.body)
	}
}
