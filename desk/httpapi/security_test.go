package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/httpapi"
	"github.com/calldesk/desk/desk/hub"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
	"github.com/calldesk/desk/desk/yamlfile"
	"github.com/calldesk/desk/scripts"
	"github.com/calldesk/desk/static"
)

var secT0 = time.Date(2025, 4, 7, 9, 0, 0, 0, time.UTC)

// fullEnv is the whole web side as cmd/desk wires it: the store, the hub, the
// sales desk with the shipped scripts, the supervisor's desk and the reports, on a
// real Redis under a fresh prefix, with a fake clock. Requests go in process
// (api.ServeHTTP), with sessions made in the store, so a test can send any method
// from any client address without a network. Users: operators maria, boris and
// ivan, supervisor sveta, admin root.
type fullEnv struct {
	t      *testing.T
	rdb    redis.UniversalClient
	prefix string
	store  *redisstore.Store
	api    *httpapi.Server
	sales  *desk.Sales
	sup    *desk.Supervisor
	clock  *fakeClock
	logs   *syncBuffer

	mu     sync.Mutex
	tokens map[string]string
}

// syncBuffer is the server's log, in JSON lines, for the tests to read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(msg string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(s.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func newFullEnv(t testing.TB, opts ...httpapi.Option) *fullEnv {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	store := redisstore.New(rdb, redisstore.WithPrefix(prefix), redisstore.WithLogger(quiet()))
	clock := &fakeClock{t: secT0}
	set, err := yamlfile.LoadScripts(scripts.FS)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var sales *desk.Sales
	h := hub.New(rdb, hub.WithPrefix(prefix), hub.WithLogger(quiet()), hub.WithPresence(store),
		hub.WithSnapshot(func(ctx context.Context, u *desk.User) (any, error) {
			return httpapi.SnapshotFunc(store, nil, httpapi.WithSales(sales))(ctx, u)
		}), hub.WithRegisterer(reg))
	sales = desk.NewSales(store, h, desk.WithSalesLogger(quiet()), desk.WithSalesClock(clock.Now),
		desk.WithSalesScripts(set.Map("en")),
		desk.WithSalesLines([]desk.Line{{Number: "sales", Name: "Sales", Script: "default", Source: "exhibition"}}, "default"),
		desk.WithLocation(time.UTC))
	sup := desk.NewSupervisor(store, h, desk.WithSupervisorLogger(quiet()), desk.WithSupervisorClock(clock.Now))
	reports := desk.NewReports(store, desk.WithReportsClock(clock.Now), desk.WithReportsLocation(time.UTC),
		desk.WithReportsSources([]string{"exhibition", "web_search"}), desk.WithChannelCosts(map[string]float64{"exhibition": 1000}, "RUB"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	logs := &syncBuffer{}
	all := append([]httpapi.Option{httpapi.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))), httpapi.WithStatic(static.FS),
		httpapi.WithRealm(realm), httpapi.WithRegion("RU"), httpapi.WithRegisterer(reg), httpapi.WithGatherer(reg),
		httpapi.WithSales(sales), httpapi.WithSupervisor(sup), httpapi.WithReports(reports),
		httpapi.WithLocation(time.UTC), httpapi.WithClock(clock.Now)}, opts...)
	api := httpapi.New(store, h, all...)
	t.Cleanup(func() {
		cancel()
		<-done
		store.Close()
	})
	fe := &fullEnv{t: testingT(t), rdb: rdb, prefix: prefix, store: store, api: api, sales: sales, sup: sup,
		clock: clock, logs: logs, tokens: map[string]string{}}
	for _, u := range []struct {
		login string
		role  desk.Role
	}{{"maria", desk.RoleOperator}, {"boris", desk.RoleOperator}, {"ivan", desk.RoleOperator},
		{"sveta", desk.RoleSupervisor}, {"root", desk.RoleAdmin}} {
		fe.user(t, u.login, u.role)
	}
	return fe
}

// testingT lets the fuzz targets share the env: they pass a *testing.F.
func testingT(t testing.TB) *testing.T {
	tt, _ := t.(*testing.T)
	return tt
}

func (fe *fullEnv) user(t testing.TB, login string, role desk.Role) {
	t.Helper()
	hash, err := desk.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	u := &desk.User{Login: login, Name: "Name of " + login, Role: role, PasswordHash: hash,
		SIPHA1: desk.SIPHA1(login, realm, "sip-"+login), Created: secT0}
	if err := fe.store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

// token returns a session of login made in the store (no password hashing, so a
// test may use many); "" for anonymous.
func (fe *fullEnv) token(t testing.TB, login string) string {
	t.Helper()
	if login == "" {
		return ""
	}
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if tok, ok := fe.tokens[login]; ok {
		return tok
	}
	tok, err := fe.store.CreateSession(context.Background(), login, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fe.tokens[login] = tok
	return tok
}

func (fe *fullEnv) forget(login string) {
	fe.mu.Lock()
	delete(fe.tokens, login)
	fe.mu.Unlock()
}

// request is one in-process request: as is the login ("" anonymous), body is
// JSON-encoded unless it is a string or []byte.
type request struct {
	as, method, path string
	body             any
	header           map[string]string
	remote           string
}

func (fe *fullEnv) do(t testing.TB, r request) result {
	t.Helper()
	var rd io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req := httptest.NewRequest(r.method, r.path, rd)
	req.RemoteAddr = "127.0.0.1:40000"
	if r.remote != "" {
		req.RemoteAddr = r.remote
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := fe.token(t, r.as); tok != "" {
		req.AddCookie(&http.Cookie{Name: httpapi.CookieName, Value: tok})
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	fe.api.ServeHTTP(rec, req)
	return result{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// contact creates a contact in the store and returns its id.
func (fe *fullEnv) contact(t testing.TB, name, manager string, phones ...string) string {
	t.Helper()
	c := &desk.Contact{Name: name, Manager: manager, Phones: phones}
	if err := fe.store.CreateContact(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// endedCall stores an answered call of operator that has just ended and tells the
// sales desk, so the operator owes its wrap-up.
func (fe *fullEnv) endedCall(t testing.TB, id, operator, from, contactID string, pending bool) *desk.Call {
	t.Helper()
	now := fe.clock.Now()
	answered, ended := now.Add(-3*time.Minute), now
	c := &desk.Call{ID: id, SIPCallID: "sip-" + id, From: from, To: "sales", Line: "sales", Script: "default",
		Operator: operator, ContactID: contactID, State: desk.CallEnded, Started: now.Add(-4 * time.Minute),
		Answered: &answered, Ended: &ended}
	ctx := context.Background()
	if err := fe.store.SaveCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	if pending {
		fe.sales.CallEnded(ctx, c)
	}
	return c
}

func (fe *fullEnv) promise(t testing.TB, id, owner, contactID string) {
	t.Helper()
	p := &desk.Promise{ID: id, Owner: owner, ContactID: contactID, Kind: "promise", What: "offer",
		Due: secT0.Add(24 * time.Hour), Created: secT0, State: desk.PromiseOpen}
	if err := fe.store.SavePromise(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

// snapshot reads every key under the env's prefix with its content, so a test can
// tell whether a request changed anything stored.
func (fe *fullEnv) snapshot(t testing.TB) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := fe.rdb.Scan(ctx, 0, fe.prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ, err := fe.rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = fe.rdb.Get(ctx, k).Result()
		case "hash":
			v, err = fe.rdb.HGetAll(ctx, k).Result()
		case "list":
			v, err = fe.rdb.LRange(ctx, k, 0, -1).Result()
		case "set":
			var m []string
			m, err = fe.rdb.SMembers(ctx, k).Result()
			sort.Strings(m)
			v = m
		case "zset":
			v, err = fe.rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "stream":
			v, err = fe.rdb.XRange(ctx, k, "-", "+").Result()
		case "none":
			continue // expired between SCAN and TYPE
		default:
			t.Fatalf("snapshot: key %s of type %s", k, typ)
		}
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(v)
		out[k] = typ + " " + string(data)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// diff describes how two snapshots differ; "" when they do not.
func diff(before, after map[string]string) string {
	var d []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			d = append(d, "deleted "+k)
		} else if w != v {
			d = append(d, fmt.Sprintf("changed %s: %.200s -> %.200s", k, v, w))
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, "added "+k+": "+after[k])
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

// ---------------------------------------------------------------------------
// Sessions

// TestLoginIssuesNewSession: every login issues a new session id; the token the
// browser came with is ended (no fixation, no reuse), another browser's session of
// the same user stays valid, and logout deletes the session in the store.
func TestLoginIssuesNewSession(t *testing.T) {
	e := newEnv(t)
	e.user("anna", desk.RoleOperator)
	ctx := context.Background()
	tokenOf := func(r result) string {
		for _, c := range (&http.Response{Header: r.header}).Cookies() {
			if c.Name == httpapi.CookieName {
				return c.Value
			}
		}
		t.Fatalf("no session cookie in %v", r.header)
		return ""
	}
	withToken := func(tok string) result {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/session", nil)
		req.AddCookie(&http.Cookie{Name: httpapi.CookieName, Value: tok})
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return result{status: res.StatusCode, body: body}
	}
	login := map[string]string{"login": "anna", "password": password}

	browser := e.client()
	first := tokenOf(browser.do("POST", "/api/session", login, nil))
	second := tokenOf(browser.do("POST", "/api/session", login, nil)) // the jar sends the first cookie
	if first == second || first == "" || second == "" {
		t.Fatalf("login twice gave tokens %q and %q", first, second)
	}
	if r := withToken(first); r.status != http.StatusUnauthorized {
		t.Fatalf("the replaced token still works: %d %s", r.status, r.body)
	}
	if _, err := e.store.Session(ctx, first); err == nil {
		t.Fatalf("the replaced session is still stored")
	}
	// A token planted in the browser before the login (fixation) is not adopted.
	planted, err := e.store.CreateSession(ctx, "anna", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/session", strings.NewReader(`{"login":"anna","password":"`+password+`"}`))
	req.AddCookie(&http.Cookie{Name: httpapi.CookieName, Value: planted})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	fresh := tokenOf(result{header: res.Header})
	if fresh == planted || withToken(planted).status != http.StatusUnauthorized {
		t.Fatalf("the planted token %q survived the login (new %q)", planted, fresh)
	}

	// Another browser's login does not end this one.
	other := tokenOf(e.client().do("POST", "/api/session", login, nil))
	if other == second {
		t.Fatal("two browsers share a token")
	}
	if r := withToken(second); r.status != http.StatusOK {
		t.Fatalf("a login elsewhere ended this session: %d %s", r.status, r.body)
	}
	// Logout deletes the session in the store and clears the cookie.
	out := browser.do("DELETE", "/api/session", nil, nil)
	if out.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", out.status, out.body)
	}
	if _, err := e.store.Session(ctx, second); err == nil {
		t.Fatal("logout left the session in the store")
	}
	if r := withToken(second); r.status != http.StatusUnauthorized {
		t.Fatalf("token after logout: %d", r.status)
	}
	if r := withToken(other); r.status != http.StatusOK {
		t.Fatalf("logout in one browser ended another: %d", r.status)
	}
	t.Logf("tokens: first %.6s…, second %.6s…, other browser %.6s… (all distinct; first and planted invalid after login)", first, second, other)
}

// ---------------------------------------------------------------------------
// Login throttle

func TestLoginThrottle(t *testing.T) {
	fe := newFullEnv(t)
	login := func(ip, who, pw string) result {
		return fe.do(t, request{method: "POST", path: "/api/session", remote: ip + ":5000",
			body: map[string]string{"login": who, "password": pw}})
	}
	const a, b, c, d = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"
	steps := []struct {
		name      string
		ip, login string
		pw        string
		advance   time.Duration
		want      int
		retry     string // Retry-After when 429
	}{
		{name: "1st wrong password", ip: a, login: "maria", pw: "wrong", want: 401},
		{name: "2nd", ip: a, login: "maria", pw: "wrong", want: 401},
		{name: "3rd", ip: a, login: "maria", pw: "wrong", want: 401},
		{name: "4th", ip: a, login: "Maria", pw: "wrong", want: 401}, // the login is counted lower-cased
		{name: "5th", ip: a, login: "maria", pw: "wrong", advance: time.Minute, want: 401},
		{name: "6th attempt is throttled, even with the right password", ip: a, login: "maria", pw: password, want: 429, retry: "240"},
		{name: "per login: from another address too", ip: b, login: "maria", pw: password, want: 429, retry: "240"},
		{name: "another login from the same address is not held", ip: a, login: "boris", pw: password, want: 200},
		{name: "the first failure leaves the window", ip: a, login: "maria", pw: password, advance: 4*time.Minute + time.Second, want: 200},
		{name: "success cleared the login's count", ip: a, login: "maria", pw: "wrong", want: 401},
		// Per address: 10 failures on any logins.
		{name: "c 1", ip: c, login: "nobody1", pw: "x", want: 401},
		{name: "c 2", ip: c, login: "nobody2", pw: "x", want: 401},
		{name: "c 3", ip: c, login: "nobody3", pw: "x", want: 401},
		{name: "c 4", ip: c, login: "nobody4", pw: "x", want: 401},
		{name: "c 5", ip: c, login: "nobody5", pw: "x", want: 401},
		{name: "c 6", ip: c, login: "nobody6", pw: "x", want: 401},
		{name: "c 7", ip: c, login: "nobody7", pw: "x", want: 401},
		{name: "c 8", ip: c, login: "nobody8", pw: "x", want: 401},
		{name: "c 9", ip: c, login: "ivan", pw: "x", want: 401},
		{name: "c 10", ip: c, login: "ivan", pw: "x", advance: 30 * time.Second, want: 401},
		{name: "the address is held after 10 failures", ip: c, login: "ivan", pw: password, want: 429, retry: "270"},
		{name: "another address may log ivan in", ip: d, login: "ivan", pw: password, want: 200},
	}
	for _, st := range steps {
		fe.clock.Add(st.advance)
		r := login(st.ip, st.login, st.pw)
		if r.status != st.want {
			t.Fatalf("%s: %d %s, want %d", st.name, r.status, r.body, st.want)
		}
		if got := r.header.Get("Retry-After"); got != st.retry {
			t.Fatalf("%s: Retry-After %q, want %q", st.name, got, st.retry)
		}
		if st.want == 429 && !strings.Contains(r.errorText(t), "too many failed logins") {
			t.Fatalf("%s: %s", st.name, r.body)
		}
		if st.want == 429 && len(r.header.Values("Set-Cookie")) != 0 {
			t.Fatalf("%s: a throttled login set a cookie", st.name)
		}
	}

	// The logs name the address and the login of each failure, for fail2ban.
	failed, throttled := fe.logs.lines("http: login failed"), fe.logs.lines("http: login throttled")
	if len(failed) != 16 || len(throttled) != 3 {
		t.Fatalf("%d failure and %d throttle log lines, want 16 and 3", len(failed), len(throttled))
	}
	for _, l := range append(failed, throttled...) {
		if l["level"] != "WARN" || l["ip"] == nil || l["login"] == nil {
			t.Fatalf("log line without level WARN, ip or login: %v", l)
		}
	}
	if l := failed[0]; l["ip"] != a || l["login"] != "maria" || l["reason"] != "wrong password" {
		t.Fatalf("first failure logged as %v", l)
	}
	if l := throttled[2]; l["ip"] != c || l["limit"] != "ip" || l["retry_after"] != float64(270) {
		t.Fatalf("address throttle logged as %v", l)
	}
	t.Logf("FIGURE login-throttle: failures_logged=%d throttled=%d (5/login, 10/address per 5 min)", len(failed), len(throttled))
}

// TestClientAddress: X-Forwarded-For is ignored unless the peer is a trusted
// proxy, so a client cannot rotate a header to escape the address limit.
func TestClientAddress(t *testing.T) {
	_, lo, _ := net.ParseCIDR("127.0.0.0/8")
	for _, tc := range []struct {
		name    string
		opts    []httpapi.Option
		wantIPs []string
	}{
		{"direct peer by default", nil, []string{"127.0.0.7"}},
		{"behind a trusted proxy", []httpapi.Option{httpapi.WithTrustedProxies(lo)}, []string{"198.51.100.1", "198.51.100.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fe := newFullEnv(t, tc.opts...)
			for i := range 12 {
				fe.do(t, request{method: "POST", path: "/api/session", remote: "127.0.0.7:5000",
					header: map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i%2+1)},
					body:   map[string]string{"login": fmt.Sprintf("x%d", i), "password": "x"}})
			}
			var ips []string
			for _, l := range append(fe.logs.lines("http: login failed"), fe.logs.lines("http: login throttled")...) {
				if ip := fmt.Sprint(l["ip"]); !slices.Contains(ips, ip) {
					ips = append(ips, ip)
				}
			}
			sort.Strings(ips)
			if !slices.Equal(ips, tc.wantIPs) {
				t.Fatalf("logged addresses %v, want %v", ips, tc.wantIPs)
			}
		})
	}
}
