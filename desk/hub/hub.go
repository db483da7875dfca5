// Package hub fans desk events out to the browser pages over websockets, through
// Redis, so that any node can serve any page.
//
// Each audience is a channel: "op:<login>" for one operator's pages and "sup" for
// supervisors and admins, who see everything. A channel has a history stream in
// Redis with a monotonically increasing offset (seq) and an epoch that names the
// life of that history. Publishing appends the frame to every channel of its
// audience and wakes all nodes with Redis pub/sub, in one Lua round trip. A page
// that reconnects with ?since=<seq>&epoch=<epoch> is replayed what it missed;
// when the history cannot say (other epoch, trimmed), it gets a fresh snapshot.
//
// Redis is not on the critical path of a pop: Publish never blocks, and when Redis
// is unreachable the hub delivers to its own pages with a local seq and a local
// epoch, so the card still reaches the operator; the pages resync from a snapshot
// once Redis answers again.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
)

// ChannelSupervisors is the channel every supervisor and admin page listens to.
const ChannelSupervisors = "sup"

// ChannelFor returns the channel a user's pages listen to.
func ChannelFor(u *desk.User) string {
	if u.Role == desk.RoleOperator {
		return OperatorChannel(u.Login)
	}
	return ChannelSupervisors
}

// OperatorChannel is the channel of one operator's pages.
func OperatorChannel(login string) string { return "op:" + login }

// SnapshotFunc builds the state a page starts from: its fields are spliced into the
// snapshot frame beside type, seq, epoch and user. It must return a value that
// marshals to a JSON object (or nil).
type SnapshotFunc func(ctx context.Context, user *desk.User) (any, error)

// Option configures a Hub.
type Option func(*Hub)

// WithPrefix sets the Redis key prefix (default "desk:").
func WithPrefix(p string) Option { return func(h *Hub) { h.prefix = p } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(h *Hub) { h.log = l } }

// WithNode names this node (default: random). Presence counts pages per node.
func WithNode(id string) Option { return func(h *Hub) { h.node = id } }

// WithSnapshot sets the builder of snapshot payloads.
func WithSnapshot(f SnapshotFunc) Option { return func(h *Hub) { h.snapshot = f } }

// WithPresence makes the hub count operators' pages opened and closed on this
// node and apply the pages' away switch.
func WithPresence(p desk.PresenceStore) Option { return func(h *Hub) { h.presence = p } }

// WithRegisterer registers the hub's metrics.
func WithRegisterer(r prometheus.Registerer) Option { return func(h *Hub) { h.reg = r } }

// WithHistory sets how many frames each channel keeps (approximately, default 1000)
// and how long an idle channel's history lives (default 24h; 0 keeps it forever).
func WithHistory(size int, ttl time.Duration) Option {
	return func(h *Hub) { h.historySize, h.historyTTL = size, ttl }
}

// WithQueues sets the publish queue length (default 4096) and each connection's
// send queue length (default 256).
func WithQueues(publish, perConn int) Option {
	return func(h *Hub) { h.publishQueue, h.sendQueue = publish, perConn }
}

// WithPing sets the ping interval; a page that has not answered within twice the
// interval is dropped (default 25s).
func WithPing(interval time.Duration) Option { return func(h *Hub) { h.pingInterval = interval } }

// WithCheckOrigin replaces the upgrader's origin check. The default is gorilla's
// same-host check; httpapi applies its own, stricter check before ServeWS.
func WithCheckOrigin(f func(r *http.Request) bool) Option {
	return func(h *Hub) { h.upgrader.CheckOrigin = f }
}

// Hub is the websocket fan-out of one node.
type Hub struct {
	rdb          redis.UniversalClient
	prefix       string
	log          *slog.Logger
	node         string
	snapshot     SnapshotFunc
	presence     desk.PresenceStore
	reg          prometheus.Registerer
	historySize  int
	historyTTL   time.Duration
	publishQueue int
	sendQueue    int
	pingInterval time.Duration
	writeWait    time.Duration
	redisTimeout time.Duration
	upgrader     websocket.Upgrader

	queue chan queued
	stop  chan struct{}
	once  sync.Once
	m     *metrics

	// localEpoch names the history of frames delivered while Redis was unreachable.
	localEpoch string
	// breakerUntil (unix nanos) skips Redis for a moment after a failure, so an
	// outage costs one failed attempt per interval and not one per event.
	breakerUntil atomic.Int64
	// subLost is set while this node's pub/sub subscription is down: a frame
	// published to Redis then wakes no page of this node, and the check after the
	// subscription returns resyncs pages from a snapshot, which skips it. So frames
	// go the local way until the subscription is back, and none is lost.
	subLost atomic.Bool

	mu       sync.RWMutex
	chans    map[string]map[*conn]struct{}
	localSeq map[string]int64
}

// New returns a hub on rdb. Call Run to start it.
func New(rdb redis.UniversalClient, opts ...Option) *Hub {
	h := &Hub{
		rdb:          rdb,
		prefix:       "desk:",
		log:          slog.Default(),
		historySize:  1000,
		historyTTL:   24 * time.Hour,
		publishQueue: 4096,
		sendQueue:    256,
		pingInterval: 25 * time.Second,
		writeWait:    10 * time.Second,
		redisTimeout: 2 * time.Second,
		upgrader: websocket.Upgrader{
			ReadBufferSize:    1024,
			WriteBufferSize:   4096,
			EnableCompression: false,
		},
		stop:     make(chan struct{}),
		chans:    make(map[string]map[*conn]struct{}),
		localSeq: make(map[string]int64),
	}
	for _, o := range opts {
		o(h)
	}
	if h.node == "" {
		h.node = randomID()
	}
	h.localEpoch = "local-" + h.node + "-" + randomID()
	h.queue = make(chan queued, h.publishQueue)
	h.m = newMetrics(h.reg)
	return h
}

// Node returns this node's id.
func (h *Hub) Node() string { return h.node }

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (h *Hub) wakeChannel() string { return h.prefix + "hub:wake" }

// Keys of one channel share the {hub} hash tag so that the publish script, which
// touches several channels, stays in one slot on Redis Cluster.
func (h *Hub) metaKey(ch string) string   { return h.prefix + "{hub}:" + ch + ":meta" }
func (h *Hub) streamKey(ch string) string { return h.prefix + "{hub}:" + ch + ":stream" }

// Run publishes queued events and delivers frames from Redis to this node's pages
// until ctx ends. It then closes every page connection.
func (h *Hub) Run(ctx context.Context) error {
	defer h.once.Do(func() { close(h.stop) })
	var wg sync.WaitGroup
	wg.Go(func() { h.publishLoop(ctx) })
	wg.Go(func() { h.subscribeLoop(ctx) })
	<-ctx.Done()
	wg.Wait()
	return nil
}

// queued is an event waiting to be published, with the time Publish took it.
type queued struct {
	ev desk.Event
	at time.Time
}

// Publish queues ev for every node's pages and returns at once. When the queue is
// full the event is dropped and counted: the SIP path must never wait on pages.
//
// The time of the call is the event's "at": every frame of the event carries it,
// so the delay from an event to its delivery on a page can be measured.
func (h *Hub) Publish(ev desk.Event) {
	select {
	case h.queue <- queued{ev: ev, at: time.Now()}:
	default:
		h.m.dropped.WithLabelValues("queue_full").Inc()
		h.log.Warn("hub: publish queue full, event dropped", "type", ev.Type)
	}
}

func (h *Hub) publishLoop(ctx context.Context) {
	batch := make([]queued, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-h.queue:
			// Whatever queued up behind q goes in the same round trip: under load
			// one publish at a time, each waiting for Redis, is what delays pops.
			batch = append(batch[:0], q)
		more:
			for len(batch) < maxBatch {
				select {
				case q := <-h.queue:
					batch = append(batch, q)
				default:
					break more
				}
			}
			h.publishBatch(ctx, batch)
		}
	}
}

// maxBatch bounds how many events one pipeline to Redis carries.
const maxBatch = 64

// publishBatch publishes events in queue order: through Redis in one pipeline of
// the publish script when Redis is usable (a pipeline keeps the order, and every
// key shares the {hub} slot), one by one otherwise, which also reloads the
// script into a Redis that lost it.
func (h *Hub) publishBatch(ctx context.Context, batch []queued) {
	if len(batch) == 1 || h.breakerUntil.Load() >= time.Now().UnixNano() || h.subLost.Load() {
		for _, q := range batch {
			h.publish(ctx, q.ev, q.at)
		}
		return
	}
	start := time.Now()
	type prepared struct {
		q   queued
		cmd *redis.Cmd
	}
	preps := make([]prepared, 0, len(batch))
	rctx, cancel := context.WithTimeout(ctx, h.redisTimeout)
	defer cancel()
	_, err := h.rdb.Pipelined(rctx, func(p redis.Pipeliner) error {
		for _, q := range batch {
			part, err := splitFrame(q.ev.Type, q.at, q.ev.Payload)
			if err != nil {
				h.m.dropped.WithLabelValues("bad_payload").Inc()
				h.log.Error("hub: event dropped", "type", q.ev.Type, "err", err)
				continue
			}
			keys, args := h.scriptArgs(part, audience(q.ev))
			preps = append(preps, prepared{q: q, cmd: publishScript.EvalSha(rctx, p, keys, args...)})
		}
		return nil
	})
	if err == nil {
		h.m.published.WithLabelValues("redis").Add(float64(len(preps)))
		h.m.publishSeconds.Observe(time.Since(start).Seconds())
		return
	}
	if ctx.Err() != nil {
		return
	}
	// Publish whatever did not go through one by one: publish retries the script
	// with EVAL (NOSCRIPT) and falls back to local delivery when Redis is away.
	for _, pr := range preps {
		if pr.cmd.Err() != nil {
			h.publish(ctx, pr.q.ev, pr.q.at)
		} else {
			h.m.published.WithLabelValues("redis").Inc()
		}
	}
}

// scriptArgs are the publish script's keys and arguments for a frame to chans.
func (h *Hub) scriptArgs(part framePart, chans []string) ([]string, []any) {
	keys := make([]string, 0, 2*len(chans))
	args := make([]any, 0, 6+len(chans))
	args = append(args, randomID(), part.head, part.tail, h.historySize, h.historyTTL.Milliseconds(), h.wakeChannel())
	for _, ch := range chans {
		keys = append(keys, h.metaKey(ch), h.streamKey(ch))
		args = append(args, ch)
	}
	return keys, args
}

// audience returns the channels an event goes to: always the supervisors', and
// each named operator's once.
func audience(ev desk.Event) []string {
	chans := make([]string, 0, len(ev.Operators)+1)
	chans = append(chans, ChannelSupervisors)
	for _, login := range ev.Operators {
		if login == "" {
			continue
		}
		ch := OperatorChannel(login)
		dup := false
		for _, c := range chans {
			if c == ch {
				dup = true
				break
			}
		}
		if !dup {
			chans = append(chans, ch)
		}
	}
	return chans
}

// publishScript appends one frame to several channels and wakes every node.
//
// KEYS: meta and stream of each channel, in pairs.
// ARGV: epoch candidate, frame head, frame tail, max history, ttl ms, wake
// channel, then the channel names. The wake message is
// "<channel>\0<epoch>\0<seq>\0<frame>".
var publishScript = redis.NewScript(`
local n = #ARGV - 6
local ttl = tonumber(ARGV[5])
for i = 1, n do
  local meta, stream = KEYS[2*i-1], KEYS[2*i]
  if redis.call('HSETNX', meta, 'epoch', ARGV[1]) == 1 then
    redis.call('DEL', stream)
  end
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  local epoch = redis.call('HGET', meta, 'epoch')
  local frame = ARGV[2] .. seq .. ARGV[3]
  redis.call('XADD', stream, 'MAXLEN', '~', ARGV[4], seq .. '-0', 'f', frame)
  if ttl > 0 then
    redis.call('PEXPIRE', meta, ttl)
    redis.call('PEXPIRE', stream, ttl)
  end
  redis.call('PUBLISH', ARGV[6], ARGV[6+i] .. '\0' .. epoch .. '\0' .. seq .. '\0' .. frame)
end
return n
`)

// metaScript reads a channel's seq and epoch, giving the channel an epoch if it
// has none so that a page and the first publish agree on it.
var metaScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
  local ttl = tonumber(ARGV[2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return redis.call('HMGET', KEYS[1], 'seq', 'epoch')
`)

func (h *Hub) publish(ctx context.Context, ev desk.Event, at time.Time) {
	start := time.Now()
	part, err := splitFrame(ev.Type, at, ev.Payload)
	if err != nil {
		h.m.dropped.WithLabelValues("bad_payload").Inc()
		h.log.Error("hub: event dropped", "type", ev.Type, "err", err)
		return
	}
	chans := audience(ev)
	if h.breakerUntil.Load() < time.Now().UnixNano() && !h.subLost.Load() {
		keys, args := h.scriptArgs(part, chans)
		rctx, cancel := context.WithTimeout(ctx, h.redisTimeout)
		err = publishScript.Run(rctx, h.rdb, keys, args...).Err()
		cancel()
		if err == nil {
			h.m.published.WithLabelValues("redis").Inc()
			h.m.publishSeconds.Observe(time.Since(start).Seconds())
			return
		}
		if ctx.Err() != nil {
			return
		}
		h.breakerUntil.Store(time.Now().Add(time.Second).UnixNano())
		h.log.Warn("hub: redis publish failed, delivering locally", "type", ev.Type, "err", err)
	}
	// Local fallback: this node's pages still get the frame, on the local epoch.
	h.m.published.WithLabelValues("local").Inc()
	for _, ch := range chans {
		h.mu.Lock()
		h.localSeq[ch]++
		seq := h.localSeq[ch]
		h.mu.Unlock()
		h.deliver(ch, item{kind: itemFrame, epoch: h.localEpoch, seq: seq, data: part.appendFrame(nil, seq)})
	}
	h.m.publishSeconds.Observe(time.Since(start).Seconds())
}

// subscribeLoop holds this node's one pub/sub connection and hands each wake-up
// to the local pages of its channel. After every (re)subscription it asks each
// page to check the channel's head, so frames published while the subscription
// was down are read from history and pages on the local epoch resync.
func (h *Hub) subscribeLoop(ctx context.Context) {
	ps := h.rdb.Subscribe(ctx, h.wakeChannel())
	// Receive blocks on the socket without watching ctx; closing unblocks it.
	stopped := context.AfterFunc(ctx, func() { ps.Close() })
	defer stopped()
	defer ps.Close()
	backoff := 50 * time.Millisecond
	failing := false
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				h.log.Warn("hub: redis subscription lost", "err", err)
				failing = true
			}
			h.subLost.Store(true)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				if failing {
					h.log.Info("hub: redis subscription restored")
				}
				failing = false
				h.breakerUntil.Store(0)
				h.subLost.Store(false)
				h.checkAll()
			}
		case *redis.Message:
			h.onWake(m.Payload)
		}
	}
}

func (h *Hub) onWake(payload string) {
	parts := strings.SplitN(payload, "\x00", 4)
	if len(parts) != 4 {
		h.log.Warn("hub: malformed wake-up", "len", len(payload))
		return
	}
	seq, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		h.log.Warn("hub: malformed wake-up seq", "seq", parts[2])
		return
	}
	h.deliver(parts[0], item{kind: itemFrame, epoch: parts[1], seq: seq, data: []byte(parts[3])})
}

// deliver hands an item to every local page of ch without waiting: a page whose
// queue is full is too slow and is dropped, so it cannot hold the others back.
func (h *Hub) deliver(ch string, it item) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.chans[ch] {
		c.offer(it)
	}
}

func (h *Hub) checkAll() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, set := range h.chans {
		for c := range set {
			c.offer(item{kind: itemCheck})
		}
	}
}

func (h *Hub) register(c *conn) {
	h.mu.Lock()
	set := h.chans[c.channel]
	if set == nil {
		set = make(map[*conn]struct{})
		h.chans[c.channel] = set
	}
	set[c] = struct{}{}
	h.mu.Unlock()
	h.m.conns.Inc()
}

func (h *Hub) unregister(c *conn) {
	h.mu.Lock()
	if set := h.chans[c.channel]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.chans, c.channel)
		}
	}
	h.mu.Unlock()
	h.m.conns.Dec()
}

// meta is where a channel's history stands.
type meta struct {
	seq   int64
	epoch string
	local bool
}

func (h *Hub) readMeta(ctx context.Context, ch string) (meta, error) {
	rctx, cancel := context.WithTimeout(ctx, h.redisTimeout)
	defer cancel()
	res, err := metaScript.Run(rctx, h.rdb, []string{h.metaKey(ch), h.streamKey(ch)},
		randomID(), h.historyTTL.Milliseconds()).Slice()
	if err != nil {
		return meta{}, fmt.Errorf("read channel %s: %w", ch, err)
	}
	if len(res) != 2 {
		return meta{}, fmt.Errorf("read channel %s: unexpected reply %v", ch, res)
	}
	var m meta
	if s, ok := res[0].(string); ok {
		m.seq, _ = strconv.ParseInt(s, 10, 64)
	}
	m.epoch, _ = res[1].(string)
	return m, nil
}

func (h *Hub) localMeta(ch string) meta {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return meta{seq: h.localSeq[ch], epoch: h.localEpoch, local: true}
}

// errHistoryGap means the history no longer holds what a page missed.
var errHistoryGap = errors.New("history gap")

// history returns the frames from..to (inclusive) of ch, all of them or an error.
func (h *Hub) history(ctx context.Context, ch string, from, to int64) ([]item, error) {
	if from > to {
		return nil, nil
	}
	rctx, cancel := context.WithTimeout(ctx, h.redisTimeout)
	defer cancel()
	msgs, err := h.rdb.XRange(rctx, h.streamKey(ch), strconv.FormatInt(from, 10)+"-0", strconv.FormatInt(to, 10)+"-0").Result()
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", ch, err)
	}
	out := make([]item, 0, len(msgs))
	want := from
	for _, m := range msgs {
		id, _, _ := strings.Cut(m.ID, "-")
		seq, err := strconv.ParseInt(id, 10, 64)
		if err != nil || seq != want {
			return nil, fmt.Errorf("%s at %d: %w", ch, want, errHistoryGap)
		}
		f, _ := m.Values["f"].(string)
		out = append(out, item{kind: itemFrame, seq: seq, data: []byte(f)})
		want++
	}
	if want != to+1 {
		return nil, fmt.Errorf("%s at %d: %w", ch, want, errHistoryGap)
	}
	return out, nil
}

// pageOpened and pageClosed count an operator's pages per node in the presence
// store, one call per page; the store keeps the node's counts alive with its own
// heartbeat, so a node that dies lets its pages expire.
func (h *Hub) pageOpened(u *desk.User) {
	if h.presence == nil || u.Role != desk.RoleOperator {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.redisTimeout)
	defer cancel()
	if err := h.presence.PageOpened(ctx, u.Login, h.node); err != nil {
		h.log.Warn("hub: mark page opened", "login", u.Login, "err", err)
	}
	h.publishPresence(ctx, u.Login)
}

func (h *Hub) pageClosed(u *desk.User) {
	if h.presence == nil || u.Role != desk.RoleOperator {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.redisTimeout)
	defer cancel()
	if err := h.presence.PageClosed(ctx, u.Login, h.node); err != nil {
		h.log.Warn("hub: mark page closed", "login", u.Login, "err", err)
	}
	h.publishPresence(ctx, u.Login)
}

// PresencePayload is the payload of a presence event.
type PresencePayload struct {
	Operator *desk.Operator `json:"operator"`
}

// publishPresence publishes the operator's presence as the store now sees it.
func (h *Hub) publishPresence(ctx context.Context, login string) {
	op := &desk.Operator{Login: login}
	if h.presence != nil {
		if ops, err := h.presence.Operators(ctx); err == nil {
			for _, o := range ops {
				if o.Login == login {
					op = o
					break
				}
			}
		}
	}
	h.Publish(desk.Event{Type: desk.EventPresence, Operators: []string{login}, Payload: PresencePayload{Operator: op}})
}
