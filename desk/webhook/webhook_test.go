package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redistest"
	"github.com/calldesk/desk/desk/webhook"
)

var _ desk.Notifier = (*webhook.Webhook)(nil)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// crm is a loopback HTTP server that answers the statuses given in turn (the last
// one from then on) and keeps what it received.
type crm struct {
	srv      *httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []*http.Request
	bodies   [][]byte
}

func newCRM(t *testing.T, statuses ...int) *crm {
	c := &crm{statuses: statuses}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		n := len(c.got)
		c.got = append(c.got, r)
		c.bodies = append(c.bodies, body)
		status := c.statuses[min(n, len(c.statuses)-1)]
		c.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *crm) requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

// waits records the backoff asked for and fires at once: the test sees the
// schedule without waiting it out.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) after(d time.Duration) <-chan time.Time {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

func (w *waits) list() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

var t0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

func start(t *testing.T, wh *webhook.Webhook) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wh.Start(ctx)
	t.Cleanup(func() { cancel(); wh.Close() })
}

func TestDeliveryOutcomes(t *testing.T) {
	cases := []struct {
		name          string
		statuses      []int
		wantDelivered bool
		wantAttempts  int
		wantWaits     []time.Duration
		wantError     string
	}{
		{"delivered first time", []int{200}, true, 1, nil, ""},
		{"204 counts as delivered", []int{204}, true, 1, nil, ""},
		{"fails twice then ok", []int{500, 503, 200}, true, 3, []time.Duration{time.Second, 2 * time.Second}, ""},
		{"429 and 408 are retried", []int{429, 408, 201}, true, 3, []time.Duration{time.Second, 2 * time.Second}, ""},
		{"permanently failing gives up", []int{500}, false, 5,
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}, "gave up after 5 attempts: answered 500"},
		{"a 4xx is final", []int{400}, false, 1, nil, "refused with 400"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCRM(t, tc.statuses...)
			w := &waits{}
			wh := webhook.New(c.srv.URL, "", webhook.WithLogger(quiet()), webhook.WithAttempts(5),
				webhook.WithBackoff(time.Second, 5*time.Second), webhook.WithTimer(w.after),
				webhook.WithClock(func() time.Time { return t0 }))
			start(t, wh)
			wh.Notify("wrapup", map[string]string{"call": "c1"})
			wh.Close() // drains: returns once the delivery is settled

			ds, err := wh.Deliveries(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1 {
				t.Fatalf("deliveries %+v", ds)
			}
			d := ds[0]
			if d.Delivered != tc.wantDelivered || d.Failed == tc.wantDelivered || d.Attempts != tc.wantAttempts ||
				d.Kind != "wrapup" || d.NextTry != nil || d.Status != tc.statuses[min(tc.wantAttempts, len(tc.statuses))-1] {
				t.Fatalf("delivery %+v", d)
			}
			if d.Error != tc.wantError {
				t.Fatalf("error %q, want %q", d.Error, tc.wantError)
			}
			if c.requests() != tc.wantAttempts {
				t.Fatalf("server got %d requests, want %d", c.requests(), tc.wantAttempts)
			}
			if got := w.list(); !equalDurations(got, tc.wantWaits) {
				t.Fatalf("backoff %v, want %v", got, tc.wantWaits)
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBodyAndSignature(t *testing.T) {
	c := newCRM(t, 200)
	secret := "s3cret"
	wh := webhook.New(c.srv.URL, secret, webhook.WithLogger(quiet()), webhook.WithClock(func() time.Time { return t0 }))
	start(t, wh)
	wh.Notify("wrapup", map[string]any{"record": map[string]string{"call_id": "c7"}})
	wh.Close()

	if c.requests() != 1 {
		t.Fatalf("requests %d", c.requests())
	}
	r, body := c.got[0], c.bodies[0]
	if r.Method != "POST" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s with %q", r.Method, r.Header.Get("Content-Type"))
	}
	sig := r.Header.Get("X-Desk-Signature")
	if !strings.HasPrefix(sig, "sha256=") || !webhook.Verify([]byte(secret), body, sig) {
		t.Fatalf("signature %q does not verify body %s", sig, body)
	}
	if webhook.Verify([]byte("other"), body, sig) {
		t.Fatal("signature verifies under another secret")
	}
	var env struct {
		ID   string    `json:"id"`
		Kind string    `json:"kind"`
		At   time.Time `json:"at"`
		Data struct {
			Record struct {
				CallID string `json:"call_id"`
			} `json:"record"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	if env.Kind != "wrapup" || !env.At.Equal(t0) || env.Data.Record.CallID != "c7" || env.ID == "" ||
		r.Header.Get("X-Desk-Delivery") != env.ID {
		t.Fatalf("body %s, delivery header %q", body, r.Header.Get("X-Desk-Delivery"))
	}
}

func TestNoSignatureWithoutSecret(t *testing.T) {
	c := newCRM(t, 200)
	wh := webhook.New(c.srv.URL, "", webhook.WithLogger(quiet()))
	start(t, wh)
	wh.Notify("wrapup", 1)
	wh.Close()
	if c.requests() != 1 || c.got[0].Header.Get("X-Desk-Signature") != "" {
		t.Fatalf("requests %d, signature %q", c.requests(), c.got[0].Header.Get("X-Desk-Signature"))
	}
}

func TestNotifyNeverBlocks(t *testing.T) {
	// No Run: nothing takes from the queue of 2, so every further event must be
	// dropped at once rather than wait.
	wh := webhook.New("http://127.0.0.1:1/", "", webhook.WithLogger(quiet()), webhook.WithQueue(2), webhook.WithKeep(1000))
	done := make(chan struct{})
	go func() {
		for i := 0; i < 500; i++ {
			wh.Notify("wrapup", i)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Notify blocked on a full queue")
	}
	ds, err := wh.Deliveries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	queued, dropped := 0, 0
	for _, d := range ds {
		switch {
		case d.Failed && d.Error == "queue full":
			dropped++
		case !d.Failed && !d.Delivered:
			queued++
		}
	}
	if queued != 2 || dropped != 498 {
		t.Fatalf("queued %d, dropped %d of %d", queued, dropped, len(ds))
	}
	wh.Close()
	wh.Notify("wrapup", "late") // after Close: recorded as dropped, no panic
	ds, _ = wh.Deliveries(context.Background())
	if !ds[0].Failed || ds[0].Error != "webhook closed" {
		t.Fatalf("newest delivery after Close: %+v", ds[0])
	}
}

func TestCancelAbandonsBackoff(t *testing.T) {
	c := newCRM(t, 500)
	// The first attempt fails and the worker waits on a timer that never fires.
	waiting := make(chan struct{})
	never := func(time.Duration) <-chan time.Time { close(waiting); return make(chan time.Time) }
	wh := webhook.New(c.srv.URL, "", webhook.WithLogger(quiet()), webhook.WithTimer(never))
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { wh.Run(ctx); close(ran) }()
	wh.Notify("wrapup", 1)
	<-waiting
	if ds, _ := wh.Deliveries(ctx); len(ds) != 1 || ds[0].NextTry == nil || ds[0].Error != "answered 500" {
		t.Fatalf("while waiting: %+v", ds)
	}
	cancel()
	<-ran
	ds, _ := wh.Deliveries(context.Background())
	if len(ds) != 1 || !ds[0].Failed || ds[0].Attempts != 1 || ds[0].NextTry != nil ||
		!strings.HasPrefix(ds[0].Error, "shut down before delivery") {
		t.Fatalf("deliveries %+v", ds)
	}
	wh.Close()
}

func TestDeliveriesSharedThroughRedis(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	c := newCRM(t, 500, 200)
	w := &waits{}
	a := webhook.New(c.srv.URL, "", webhook.WithLogger(quiet()), webhook.WithRedis(rdb, prefix),
		webhook.WithNode("a"), webhook.WithTimer(w.after), webhook.WithKeep(3), webhook.WithWorkers(1))
	b := webhook.New(c.srv.URL, "", webhook.WithLogger(quiet()), webhook.WithRedis(rdb, prefix), webhook.WithNode("b"))
	start(t, a)
	for i := 0; i < 5; i++ {
		a.Notify("wrapup", i)
	}
	a.Close()

	ds, err := b.Deliveries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("node b sees %d deliveries, want the last 3: %+v", len(ds), ds)
	}
	for _, d := range ds {
		if d.Node != "a" || !d.Delivered {
			t.Fatalf("delivery %+v", d)
		}
	}
	if n, _ := rdb.LLen(context.Background(), prefix+"webhook:deliveries").Result(); n != 3 {
		t.Fatalf("redis list holds %d ids, want 3", n)
	}
	// The first event needed two attempts (500, then 200) and fell off the list;
	// the last three went through at once.
	for _, d := range ds {
		if d.Attempts != 1 {
			t.Fatalf("delivery %+v", d)
		}
	}
	if c.requests() != 6 {
		t.Fatalf("requests %d, want 6", c.requests())
	}
}
