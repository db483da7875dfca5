package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/httpapi"
	"github.com/calldesk/desk/desk/hub"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
	"github.com/calldesk/desk/static"
)

const (
	realm    = "desk.test"
	password = "correct horse"
)

// env is a whole web side on a real Redis under a fresh prefix: store, hub, API
// server and an httptest listener.
type env struct {
	t     *testing.T
	rdb   redis.UniversalClient
	store *redisstore.Store
	hub   *hub.Hub
	srv   *httptest.Server
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t *testing.T) *env {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	return newEnvOn(t, rdb, prefix)
}

func newEnvOn(t *testing.T, rdb redis.UniversalClient, prefix string) *env {
	t.Helper()
	store := redisstore.New(rdb, redisstore.WithPrefix(prefix), redisstore.WithLogger(quiet()))
	reg := prometheus.NewRegistry()
	h := hub.New(rdb, hub.WithPrefix(prefix), hub.WithLogger(quiet()), hub.WithPresence(store),
		hub.WithSnapshot(httpapi.SnapshotFunc(store, nil)), hub.WithRegisterer(reg))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	api := httpapi.New(store, h, httpapi.WithLogger(quiet()), httpapi.WithStatic(static.FS),
		httpapi.WithRealm(realm), httpapi.WithRegion("RU"), httpapi.WithRegisterer(reg), httpapi.WithGatherer(reg))
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		store.Close()
	})
	return &env{t: t, rdb: rdb, store: store, hub: h, srv: srv}
}

// user creates a user directly in the store.
func (e *env) user(login string, role desk.Role) *desk.User {
	e.t.Helper()
	hash, err := desk.HashPassword(password)
	if err != nil {
		e.t.Fatal(err)
	}
	u := &desk.User{Login: login, Name: "Name of " + login, Role: role, PasswordHash: hash,
		SIPHA1: desk.SIPHA1(login, realm, "sip-"+login), Created: time.Now()}
	if err := e.store.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// client is a browser-like HTTP client with its own cookie jar.
type client struct {
	e  *env
	hc *http.Client
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// loggedIn returns a client with a session for login.
func (e *env) loggedIn(login string) *client {
	e.t.Helper()
	c := e.client()
	res := c.do("POST", "/api/session", map[string]string{"login": login, "password": password}, nil)
	if res.status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", login, res.status, res.body)
	}
	return c
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %q is not JSON: %v", r.body, err)
	}
}

func (r result) errorText(t *testing.T) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	r.json(t, &e)
	if e.Error == "" {
		t.Fatalf("error response without error text: %s", r.body)
	}
	return e.Error
}

// do sends body as JSON (a string is sent raw) with Content-Type application/json
// unless headers say otherwise.
func (c *client) do(method, path string, body any, headers map[string]string) result {
	c.e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.e.srv.URL+path, rd)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if method != "GET" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return result{status: res.StatusCode, header: res.Header, body: data}
}
