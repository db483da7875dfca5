// Package webhook POSTs the desk's completed sales records to a CRM.
//
// A Webhook implements desk.Notifier: Notify only puts the event on a bounded
// queue and never blocks the wrap-up that raised it. Workers started by Run POST
// each event as JSON
//
//	{"id": "...", "kind": "wrapup", "at": "2025-01-02T10:00:00Z", "data": {...}}
//
// with Content-Type application/json, X-Desk-Delivery (the id, so the CRM can drop
// a duplicate when our retry crosses its late answer) and, when a secret is set,
// X-Desk-Signature: sha256=<hex HMAC-SHA256 of the body>.
//
// A 2xx answer is delivered. A network error, a 5xx, 408 or 429 is retried with
// exponential backoff (base, 2·base, 4·base ... capped) up to the attempt limit;
// any other answer (a 4xx) is final, since resending the same body cannot fix it.
//
// The status of the last deliveries is kept in memory and, with WithRedis, in
// Redis (a capped list of ids plus one key per delivery), so a supervisor sees
// every node's deliveries whichever node serves him. The queue itself lives in
// memory: events still queued when a node dies are lost; the record itself is
// safe in the store and the delivery list shows what went out.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
)

// Delivery is the status of one event sent (or being sent) to the CRM.
type Delivery struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Node      string     `json:"node,omitempty"`
	Attempts  int        `json:"attempts"`
	Status    int        `json:"status,omitempty"` // the last HTTP status
	Error     string     `json:"error,omitempty"`  // the last error, or why it was given up
	Delivered bool       `json:"delivered"`
	Failed    bool       `json:"failed"`             // given up: no further try
	NextTry   *time.Time `json:"next_try,omitempty"` // when the next attempt is due
	Created   time.Time  `json:"created"`
	Updated   time.Time  `json:"updated"`
}

// Webhook delivers events to one URL. It is safe for concurrent use.
type Webhook struct {
	url      string
	secret   []byte
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time
	after    func(time.Duration) <-chan time.Time
	attempts int
	base     time.Duration
	max      time.Duration
	workers  int
	keep     int
	node     string
	rdb      redis.UniversalClient
	prefix   string
	ttl      time.Duration

	queue chan *job

	mu         sync.RWMutex // guards closed against Notify's send
	closed     bool
	closeOnce  sync.Once
	runOnce    sync.Once
	running    chan struct{} // closed when Run starts
	done       chan struct{} // closed when Run returns
	statusMu   sync.Mutex
	deliveries []*Delivery // newest last, at most keep
}

type job struct {
	d    *Delivery
	body []byte
}

// Option configures a Webhook.
type Option func(*Webhook)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(w *Webhook) { w.log = l } }

// WithClock sets the clock used for timestamps (default time.Now).
func WithClock(now func() time.Time) Option { return func(w *Webhook) { w.now = now } }

// WithTimer replaces time.After for the backoff waits, so tests can see the
// backoff without waiting for it.
func WithTimer(after func(time.Duration) <-chan time.Time) Option {
	return func(w *Webhook) { w.after = after }
}

// WithHTTPClient sets the client (default: a 10 s timeout).
func WithHTTPClient(c *http.Client) Option { return func(w *Webhook) { w.client = c } }

// WithAttempts sets how many times a delivery is tried in all (default 8).
func WithAttempts(n int) Option { return func(w *Webhook) { w.attempts = max(n, 1) } }

// WithBackoff sets the first wait between attempts and its cap (default 1 s and
// 5 min); each wait doubles the previous one.
func WithBackoff(base, maxWait time.Duration) Option {
	return func(w *Webhook) { w.base, w.max = base, maxWait }
}

// WithQueue sets how many events may wait to be sent (default 256); Notify drops
// an event, recording it as failed, when the queue is full.
func WithQueue(n int) Option { return func(w *Webhook) { w.queue = make(chan *job, max(n, 1)) } }

// WithWorkers sets how many deliveries run at once (default 2).
func WithWorkers(n int) Option { return func(w *Webhook) { w.workers = max(n, 1) } }

// WithKeep sets how many delivery statuses are kept (default 100).
func WithKeep(n int) Option { return func(w *Webhook) { w.keep = max(n, 1) } }

// WithNode names this node in the deliveries it records.
func WithNode(node string) Option { return func(w *Webhook) { w.node = node } }

// WithRedis keeps the delivery statuses in Redis under prefix too, so every node
// lists every node's deliveries. A delivery's status expires after 7 days.
func WithRedis(rdb redis.UniversalClient, prefix string) Option {
	return func(w *Webhook) { w.rdb, w.prefix = rdb, prefix }
}

// New returns a webhook that POSTs to url, signing with secret when it is not
// empty. Run must be running for anything to be sent.
func New(url, secret string, opts ...Option) *Webhook {
	w := &Webhook{
		url:      url,
		client:   &http.Client{Timeout: 10 * time.Second},
		log:      slog.Default(),
		now:      time.Now,
		after:    time.After,
		attempts: 8,
		base:     time.Second,
		max:      5 * time.Minute,
		workers:  2,
		keep:     100,
		ttl:      7 * 24 * time.Hour,
		queue:    make(chan *job, 256),
		running:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	if secret != "" {
		w.secret = []byte(secret)
	}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Notify queues an event for delivery. It never blocks: when the queue is full or
// the webhook is closed, the event is dropped and recorded as failed.
func (w *Webhook) Notify(kind string, payload any) {
	now := w.now().UTC()
	d := &Delivery{ID: newID(), Kind: kind, Node: w.node, Created: now, Updated: now}
	body, err := json.Marshal(struct {
		ID   string    `json:"id"`
		Kind string    `json:"kind"`
		At   time.Time `json:"at"`
		Data any       `json:"data"`
	}{d.ID, kind, now, payload})
	if err != nil {
		w.giveUp(d, "encode: "+err.Error())
		return
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.giveUp(d, "webhook closed")
		return
	}
	// Remember before queueing: once queued, d belongs to a worker.
	w.remember(d)
	select {
	case w.queue <- &job{d: d, body: body}:
	default:
		w.giveUp(d, "queue full")
	}
}

// giveUp records a delivery that will never be tried. It only touches memory:
// Notify must not wait on Redis.
func (w *Webhook) giveUp(d *Delivery, why string) {
	d.Failed, d.Error = true, why
	w.log.Warn("webhook: event dropped", "id", d.ID, "kind", d.Kind, "reason", why)
	w.remember(d)
}

// Run sends queued events until ctx is done, or Close was called and the queue
// is empty. Cancelling ctx abandons waits between attempts; what is still queued
// then is recorded as failed.
func (w *Webhook) Run(ctx context.Context) {
	w.Start(ctx)
	<-w.done
}

// Start is Run in the background: it returns once the workers are started, so a
// Close that follows is sure to wait for them.
func (w *Webhook) Start(ctx context.Context) {
	started := false
	w.runOnce.Do(func() { started = true; close(w.running) })
	if !started {
		return // already running: one set of workers drains one queue
	}
	var wg sync.WaitGroup
	for range w.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j, ok := <-w.queue:
					if !ok {
						return
					}
					w.deliver(ctx, j)
				}
			}
		}()
	}
	go func() {
		defer close(w.done)
		wg.Wait()
		for {
			select {
			case j, ok := <-w.queue:
				if !ok {
					return
				}
				j.d.Failed, j.d.Error, j.d.Updated = true, "shut down before sending", w.now().UTC()
				w.save(ctx, j.d)
			default:
				return
			}
		}
	}()
}

// Close stops taking events and, when Run or Start was called, waits for the
// workers to send what is queued (cancel their context to cut that short).
func (w *Webhook) Close() {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.queue)
		w.mu.Unlock()
	})
	select {
	case <-w.running:
		<-w.done
	default:
	}
}

// deliver tries j until it is delivered, refused for good, out of attempts, or
// ctx is done.
func (w *Webhook) deliver(ctx context.Context, j *job) {
	d := j.d
	wait := w.base
	for {
		d.Attempts++
		status, err := w.post(ctx, j.body)
		d.Status, d.Updated, d.NextTry = status, w.now().UTC(), nil
		d.Error = ""
		if err != nil {
			d.Error = err.Error()
		}
		retry := err != nil || status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
		switch {
		case err == nil && status >= 200 && status < 300:
			d.Delivered = true
			w.log.Debug("webhook: delivered", "id", d.ID, "kind", d.Kind, "attempts", d.Attempts)
		case !retry:
			d.Failed, d.Error = true, fmt.Sprintf("refused with %d", status)
		case d.Attempts >= w.attempts:
			d.Failed = true
			if d.Error == "" {
				d.Error = fmt.Sprintf("answered %d", status)
			}
			d.Error = fmt.Sprintf("gave up after %d attempts: %s", d.Attempts, d.Error)
		case ctx.Err() != nil:
			d.Failed, d.Error = true, "shut down before delivery: "+d.Error
		default:
			if d.Error == "" {
				d.Error = fmt.Sprintf("answered %d", status)
			}
			next := d.Updated.Add(wait)
			d.NextTry = &next
		}
		if d.Failed {
			w.log.Warn("webhook: delivery failed", "id", d.ID, "kind", d.Kind, "attempts", d.Attempts, "err", d.Error)
		}
		w.save(ctx, d)
		if d.NextTry == nil {
			return
		}
		select {
		case <-w.after(wait):
		case <-ctx.Done():
			d.NextTry, d.Failed, d.Updated = nil, true, w.now().UTC()
			d.Error = "shut down before delivery: " + d.Error
			w.save(ctx, d)
			return
		}
		wait = min(wait*2, w.max)
	}
}

// post sends body once and returns the status.
func (w *Webhook) post(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "calldesk-webhook")
	var env struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &env) == nil {
		req.Header.Set("X-Desk-Delivery", env.ID)
	}
	if w.secret != nil {
		req.Header.Set("X-Desk-Signature", Sign(w.secret, body))
	}
	res, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Drain a little so the connection can be reused; the CRM's answer is not ours to keep.
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	return res.StatusCode, nil
}

// Sign returns the X-Desk-Signature value of body: "sha256=" and the hex
// HMAC-SHA256 of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature is body's signature under secret, in constant
// time; for receivers and tests.
func Verify(secret, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(signature))
}

// remember keeps a copy of d in memory, replacing an older status of it.
func (w *Webhook) remember(d *Delivery) {
	cp := *d
	w.statusMu.Lock()
	defer w.statusMu.Unlock()
	for i, old := range w.deliveries {
		if old.ID == d.ID {
			w.deliveries[i] = &cp
			return
		}
	}
	w.deliveries = append(w.deliveries, &cp)
	if n := len(w.deliveries) - w.keep; n > 0 {
		w.deliveries = slices.Delete(w.deliveries, 0, n)
	}
}

func (w *Webhook) listKey() string          { return w.prefix + "webhook:deliveries" }
func (w *Webhook) itemKey(id string) string { return w.prefix + "webhook:delivery:" + id }

// save records d in memory and, with Redis, there too. A Redis error is logged,
// not returned: the status is a view, and the delivery itself went on.
func (w *Webhook) save(ctx context.Context, d *Delivery) {
	w.remember(d)
	if w.rdb == nil {
		return
	}
	data, err := json.Marshal(d)
	if err != nil {
		return
	}
	// The status is written even while shutting down.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	first := d.Attempts <= 1 // the first write lists it
	_, err = w.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, w.itemKey(d.ID), data, w.ttl)
		if first {
			p.LRem(ctx, w.listKey(), 0, d.ID)
			p.LPush(ctx, w.listKey(), d.ID)
			p.LTrim(ctx, w.listKey(), 0, int64(w.keep)-1)
		}
		return nil
	})
	if err != nil {
		w.log.Warn("webhook: save delivery status", "id", d.ID, "err", err)
	}
}

// Deliveries returns the last deliveries, newest first: with Redis every node's,
// with this node's own statuses overriding (they are never older); without Redis
// this node's. An error means Redis could not be read.
func (w *Webhook) Deliveries(ctx context.Context) ([]Delivery, error) {
	byID := map[string]Delivery{}
	if w.rdb != nil {
		ids, err := w.rdb.LRange(ctx, w.listKey(), 0, int64(w.keep)-1).Result()
		if err != nil {
			return nil, fmt.Errorf("webhook deliveries: %w: %v", desk.ErrUnavailable, err)
		}
		if len(ids) > 0 {
			keys := make([]string, len(ids))
			for i, id := range ids {
				keys[i] = w.itemKey(id)
			}
			vals, err := w.rdb.MGet(ctx, keys...).Result()
			if err != nil {
				return nil, fmt.Errorf("webhook deliveries: %w: %v", desk.ErrUnavailable, err)
			}
			for _, v := range vals {
				s, ok := v.(string)
				if !ok {
					continue // expired
				}
				var d Delivery
				if json.Unmarshal([]byte(s), &d) == nil {
					byID[d.ID] = d
				}
			}
		}
	}
	w.statusMu.Lock()
	for _, d := range w.deliveries {
		byID[d.ID] = *d
	}
	w.statusMu.Unlock()
	out := make([]Delivery, 0, len(byID))
	for _, d := range byID {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Delivery) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if len(out) > w.keep {
		out = out[:w.keep]
	}
	return out, nil
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
