package desk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/calldesk/desk/desk/phone"
	"github.com/prometheus/client_golang/prometheus"
)

// Switchboard decides who takes each inbound call and keeps the call's timeline.
//
// The SIP side waits only for Route. Everything after it (Ringing, Answered,
// TargetFailed, Missed, Ended) is applied on a worker chosen by the SIP Call-ID, so
// the events of one call stay in order while none of them waits on Redis.
//
// A Redis outage never fails a call: Route keeps the operators and bindings it last
// read and, when the store does not answer, routes from them with claims held in
// process, and the pop says the lookup is unavailable.
type Switchboard struct {
	store         Store
	pub           Publisher
	log           *slog.Logger
	lines         []lineEntry
	defaultScript string
	scripts       map[string]*Script
	region        string
	ringTimeout   time.Duration
	lookupTimeout time.Duration
	refreshEvery  time.Duration
	now           func() time.Time
	reg           prometheus.Registerer
	cards         func(ctx context.Context, contactID string) (*Card, error)
	prices        []PriceRange
	onEnded       func(ctx context.Context, c *Call)
	onMissed      func(ctx context.Context, c *Call)

	callsTotal *prometheus.CounterVec
	popLatency prometheus.Histogram

	mu          sync.Mutex
	live        map[string]*liveCall // by SIP Call-ID
	done        map[string]time.Time // SIP Call-IDs finished lately, to ignore retransmissions
	ops         map[string]*Operator // as last read from the store
	bindings    map[string][]Binding // as last read from the store
	localClaims map[string]string    // login → call ID held by this node
	downUntil   time.Time            // store considered down until then
	// What the store missed while it was down, written back when it answers again:
	// the last snapshot of each call whose save was skipped (by SIP Call-ID), and the
	// claims released only in process (login → call IDs).
	unsaved    map[string]*Call
	unreleased map[string][]string
	deferred   []deferredHook
	catching   atomic.Bool // a catchUp is under way
	graceUntil time.Time   // no wrap-up holds until then: pages flush an outage's backlog
	// released are the claims this node gave back lately ("login|callID" → when),
	// so a cached operator read before the release does not count as busy.
	released map[string]time.Time
	// localOnly are the claims made in process while the store was down and never
	// written to it ("login|callID"): their release has nothing to undo in the
	// store, so it is not queued for the store's return. Without this, every call
	// of an outage queued a release, and after recovery the few that matter (the
	// claims Redis kept from before the outage) waited behind hundreds of no-ops,
	// one round trip each, while their operators looked busy and calls got 480.
	localOnly map[string]bool
	// catchQueued are the calls (by SIP Call-ID) whose catch-up save is queued,
	// so a catchUp started while an earlier one is still being worked off does not
	// queue them again.
	catchQueued map[string]bool
	// savedLately are the unsaved calls written back lately (call ID → when): a
	// request that found no call just before the save landed is told to retry
	// (Unsaved), not that the call does not exist.
	savedLately map[string]time.Time

	shards  []*shard
	stop    chan struct{}
	stopped sync.WaitGroup
	closeMu sync.Once
}

type lineEntry struct {
	Line
	e164 string // normalised Number, "" when it is not a number
}

// liveCall is a call this node routed or learnt of, with what its events need.
type liveCall struct {
	call    *Call
	contact *Contact
	// For a callback: connected is the bridge's report that the customer answered
	// (CallbackConnected), unreached its report that he did not, with the trunk's
	// status (CallbackUnreached). A callback that ends without connected closes as
	// unreached. Both live in memory only: the bridge is in this process, so a
	// restart ends its calls anyway.
	connected bool
	unreached int
}

// Incoming is an inbound call as the SIP side sees it.
type Incoming struct {
	SIPCallID  string
	Caller     string
	CallerName string
	Dialled    string
	// Tried are the operators already rung for this call, for hunting.
	Tried    []string
	Received time.Time
	// Bridged is set when the INVITE comes from the desk's own media bridge: it is
	// the operator leg of a media-mode call, or the operator leg of a callback.
	// Such a call is routed as in proxy mode and marked Media.
	Bridged bool
	// Operator pins the call to one operator (a callback rings only the operator
	// who pressed "call back"); "" lets routing choose.
	Operator string
	// Callback marks a callback dialled from the desk; PromiseID is the promise it
	// keeps, if any. Caller is then the customer's number and Dialled the line.
	Callback  bool
	PromiseID string
}

// Route is the decision: ring Operator on Bindings for RingTimeout, or reject with
// Status and Reason when Status is non-zero.
type Route struct {
	Operator    string
	Bindings    []Binding
	RingTimeout time.Duration
	Status      int
	Reason      string
	// Media says: hand the call to the media bridge instead of ringing anybody.
	// It is set only for a call on a media line that did not come from the bridge
	// (Incoming.Bridged false); the bridge then routes its operator leg again.
	Media bool
	// Record and Retention say whether the bridge records the call and for how long
	// the recording is kept (the line's settings).
	Record    bool
	Retention time.Duration
}

// SwitchboardOption configures a Switchboard.
type SwitchboardOption func(*Switchboard)

// WithSwitchboardLogger sets the logger.
func WithSwitchboardLogger(l *slog.Logger) SwitchboardOption {
	return func(s *Switchboard) {
		if l != nil {
			s.log = l
		}
	}
}

// WithLines sets the configured lines and the script of the default line.
func WithLines(lines []Line, defaultScript string) SwitchboardOption {
	return func(s *Switchboard) {
		s.defaultScript = defaultScript
		s.lines = s.lines[:0]
		for _, l := range lines {
			s.lines = append(s.lines, lineEntry{Line: l})
		}
	}
}

// WithScripts sets the scripts by ID.
func WithScripts(m map[string]*Script) SwitchboardOption {
	return func(s *Switchboard) { s.scripts = m }
}

// WithRegion sets the country assumed for numbers without a country code (default RU).
func WithRegion(r string) SwitchboardOption { return func(s *Switchboard) { s.region = r } }

// WithRingTimeout sets how long one operator rings before the call hunts on (default 20s).
func WithRingTimeout(d time.Duration) SwitchboardOption {
	return func(s *Switchboard) {
		if d > 0 {
			s.ringTimeout = d
		}
	}
}

// WithLookupTimeout bounds each store read on the route path (default 300ms): a slow
// store costs the caller at most this before the call is routed from the cache.
func WithLookupTimeout(d time.Duration) SwitchboardOption {
	return func(s *Switchboard) {
		if d > 0 {
			s.lookupTimeout = d
		}
	}
}

// WithRefresh sets how often the operator and binding cache is refreshed in the
// background (default 5s; negative disables it).
func WithRefresh(d time.Duration) SwitchboardOption {
	return func(s *Switchboard) { s.refreshEvery = d }
}

// WithRegisterer registers the metrics there; nil registers none.
func WithRegisterer(r prometheus.Registerer) SwitchboardOption {
	return func(s *Switchboard) { s.reg = r }
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) SwitchboardOption {
	return func(s *Switchboard) {
		if now != nil {
			s.now = now
		}
	}
}

// WithCards sets how the pop gets a known caller's card (his history, open
// interest, promises and notes); it is asked within the lookup budget, and a pop
// whose card is late or failed goes without it.
func WithCards(f func(ctx context.Context, contactID string) (*Card, error)) SwitchboardOption {
	return func(s *Switchboard) { s.cards = f }
}

// WithPopPrices sets the price list the pop carries for the script's price step.
func WithPopPrices(p []PriceRange) SwitchboardOption {
	return func(s *Switchboard) { s.prices = slices.Clone(p) }
}

// WithCallHooks sets what runs after an answered call ended (ended) and after a
// call was missed or abandoned (missed), on the call's worker, once per call:
// Sales.CallEnded and Sales.CallMissed. With an ended hook the operator of an
// answered call is not released when it ends but held in StatusWrapup for
// wrapupHold, because he owes a wrap-up; closing it releases him.
func WithCallHooks(ended, missed func(ctx context.Context, c *Call)) SwitchboardOption {
	return func(s *Switchboard) { s.onEnded, s.onMissed = ended, missed }
}

const (
	// wrapupHold bounds how long an operator who owes a wrap-up is held off calls
	// when nothing closes it (the same default as Sales' wrap-up ttl).
	wrapupHold = 12 * time.Hour
	// claimMargin keeps a ringing claim alive a little past the ring timeout, so the
	// SIP side's own timer fires first and releases it.
	claimMargin = 10 * time.Second
	// talkTTL bounds a talking claim: a node that dies mid-call frees the operator
	// after this at the latest.
	talkTTL = 4 * time.Hour
	// downFor is how long Route trusts its cache alone after the store failed,
	// so a dead Redis costs one timeout, not one per call.
	downFor = time.Second
	// wrapupGrace is how long after the store came back from an outage operators
	// are not held in wrap-up: their pages are still sending what was typed during
	// the outage, and the wrap-up of a new call waits behind it.
	wrapupGrace = 10 * time.Second
	// doneFor is how long a finished SIP Call-ID is remembered, to ignore retransmissions.
	doneFor = 2 * time.Minute
	// eventTimeout bounds the store work of one event on its worker.
	eventTimeout = 5 * time.Second
	numShards    = 16
)

// NewSwitchboard returns a Switchboard on store that publishes through pub.
// Call Close to drain its workers.
func NewSwitchboard(store Store, pub Publisher, opts ...SwitchboardOption) *Switchboard {
	s := &Switchboard{
		store:         store,
		pub:           pub,
		log:           slog.Default(),
		region:        "RU",
		ringTimeout:   20 * time.Second,
		lookupTimeout: 300 * time.Millisecond,
		refreshEvery:  5 * time.Second,
		now:           time.Now,
		scripts:       map[string]*Script{},
		live:          map[string]*liveCall{},
		done:          map[string]time.Time{},
		ops:           map[string]*Operator{},
		bindings:      map[string][]Binding{},
		localClaims:   map[string]string{},
		unsaved:       map[string]*Call{},
		unreleased:    map[string][]string{},
		released:      map[string]time.Time{},
		localOnly:     map[string]bool{},
		catchQueued:   map[string]bool{},
		savedLately:   map[string]time.Time{},
		stop:          make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	for i := range s.lines {
		if e, err := phone.Normalize(s.lines[i].Number, s.region); err == nil {
			s.lines[i].e164 = e
		}
	}
	s.callsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "desk_calls_total", Help: "Calls by outcome: answered, missed, abandoned; a callback counts when it ends, as answered or unreached.",
	}, []string{"outcome"})
	s.popLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "desk_pop_latency_seconds",
		Help:    "Time from the INVITE to the pop being published.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	if s.reg != nil {
		for _, c := range []prometheus.Collector{s.callsTotal, s.popLatency} {
			if err := s.reg.Register(c); err != nil {
				s.log.Warn("switchboard: metric not registered", "err", err)
			}
		}
	}
	s.shards = make([]*shard, numShards)
	for i := range s.shards {
		s.shards[i] = newShard()
		s.stopped.Add(1)
		go func() { defer s.stopped.Done(); s.shards[i].run() }()
	}
	if s.refreshEvery > 0 {
		s.stopped.Add(1)
		go s.refreshLoop()
	}
	return s
}

// Close stops the cache refresher and waits until every queued event is applied.
func (s *Switchboard) Close() {
	s.closeMu.Do(func() {
		close(s.stop)
		for _, sh := range s.shards {
			sh.close()
		}
		s.stopped.Wait()
	})
}

func (s *Switchboard) refreshLoop() {
	defer s.stopped.Done()
	t := time.NewTicker(s.refreshEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.refreshEvery)
			if err := s.Refresh(ctx); err != nil {
				s.log.Debug("switchboard: cache refresh failed", "err", err)
			} else {
				s.catchUp(ctx)
			}
			cancel()
		}
	}
}

// Refresh reads the operators and the bindings of the registered ones into the
// cache Route falls back on when the store is unavailable.
func (s *Switchboard) Refresh(ctx context.Context) error {
	ops, err := s.store.Operators(ctx)
	if err != nil {
		return err
	}
	s.cacheOperators(ops)
	for _, o := range ops {
		if !o.Registered {
			s.cacheBindings(o.Login, nil)
			continue
		}
		b, err := s.store.Bindings(ctx, o.Login)
		if err != nil {
			return err
		}
		s.cacheBindings(o.Login, b)
	}
	return nil
}

func (s *Switchboard) cacheOperators(ops []*Operator) {
	m := make(map[string]*Operator, len(ops))
	for _, o := range ops {
		c := *o
		m[o.Login] = &c
	}
	s.mu.Lock()
	s.ops = m
	s.mu.Unlock()
}

func (s *Switchboard) cacheBindings(login string, b []Binding) {
	s.mu.Lock()
	if len(b) == 0 {
		delete(s.bindings, login)
	} else {
		s.bindings[login] = slices.Clone(b)
	}
	s.mu.Unlock()
}

// cachedBindings returns the cached bindings of login that have not expired.
func (s *Switchboard) cachedBindings(login string) []Binding {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Binding
	for _, b := range s.bindings[login] {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	return out
}

// noWrapupHold reports whether an ended call's operator is released rather than
// held in wrap-up: while the store is down, until what it missed is written back,
// and for wrapupGrace after that.
func (s *Switchboard) noWrapupHold() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	return now.Before(s.downUntil) || now.Before(s.graceUntil) || len(s.unsaved) > 0 || len(s.deferred) > 0
}

// storeDown reports whether Route should skip the store for now.
func (s *Switchboard) storeDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now().Before(s.downUntil)
}

// failed records a store failure; it reports whether err means the store is down.
func (s *Switchboard) failed(op string, err error) bool {
	if !errors.Is(err, ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	s.mu.Lock()
	first := !s.now().Before(s.downUntil)
	s.downUntil = s.now().Add(downFor)
	s.mu.Unlock()
	if first {
		s.log.Warn("switchboard: store unavailable, routing from cache", "op", op, "err", err)
	}
	return true
}

// routeCtx carries the state of one Route call.
type routeCtx struct {
	ctx      context.Context
	degraded bool // the store failed: use the cache and local claims
}

func (s *Switchboard) lookupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.lookupTimeout)
}

// Route picks and reserves the operator for a call, and pops the call on his page
// before returning. It never fails because of the store.
func (s *Switchboard) Route(ctx context.Context, in Incoming) Route {
	if !in.Bridged && in.Operator == "" {
		// A media line's call goes to the bridge before anything else: no claim,
		// no call record and no pop yet. They come with the bridge's own INVITE
		// (Bridged), so they are not made twice. The line is found from the
		// configuration and the cached logins: no store round trip.
		if l, ok := s.mediaLine(ctx, in.Dialled); ok {
			s.log.Debug("switchboard: media line, handing to the bridge", "sip_call_id", in.SIPCallID, "line", l.Number)
			return Route{Media: true, Record: l.Record, Retention: l.RecordingRetention()}
		}
	}
	start := s.now()
	received := in.Received
	if received.IsZero() {
		received = start
	}

	s.mu.Lock()
	s.pruneDoneLocked(start)
	lc := s.live[in.SIPCallID]
	if lc == nil {
		if _, ok := s.done[in.SIPCallID]; ok {
			s.mu.Unlock()
			return Route{Status: 480, Reason: "call already finished"}
		}
	} else if dup, ok := s.duplicateLocked(lc, in); ok {
		s.mu.Unlock()
		dup.Bindings = s.cachedBindings(dup.Operator)
		return dup
	}
	var (
		contact      *Contact
		lookupFailed bool
		skip         = slices.Clone(in.Tried)
		previous     []string // operators whose unanswered attempts are over
		callID       string
	)
	if lc != nil {
		contact, lookupFailed, callID = lc.contact, lc.call.LookupFailed, lc.call.ID
		for _, a := range lc.call.Attempts {
			skip = append(skip, a.Operator)
			if a.Outcome == "" {
				previous = append(previous, a.Operator)
			}
		}
	} else {
		callID = newID()
	}
	s.mu.Unlock()

	rc := &routeCtx{ctx: ctx, degraded: s.storeDown()}
	from := in.Caller
	if e, err := phone.Normalize(in.Caller, s.region); err == nil {
		from = e
	}

	// The contact lookup runs beside the operators read: both bound by the lookup timeout.
	type lookup struct {
		c      *Contact
		failed bool
	}
	var lookupCh chan lookup
	if lc == nil {
		if rc.degraded || from == in.Caller && !isE164(from) {
			lookupFailed = rc.degraded
		} else {
			lookupCh = make(chan lookup, 1)
			go func() {
				lctx, cancel := s.lookupCtx(ctx)
				defer cancel()
				c, err := s.store.ContactByPhone(lctx, from)
				switch {
				case err == nil:
					lookupCh <- lookup{c: c}
				case errors.Is(err, ErrNotFound):
					lookupCh <- lookup{}
				default:
					s.failed("contact lookup", err)
					s.log.Warn("switchboard: contact lookup failed", "from", from, "err", err)
					lookupCh <- lookup{failed: true}
				}
			}()
		}
	}
	ops := s.operators(rc)
	if lookupCh != nil {
		l := <-lookupCh
		contact, lookupFailed = l.c, l.failed
	}

	line, script, source, direct, lineCfg := s.line(in.Dialled, ops, in.Operator != "")
	if in.Operator != "" {
		direct = in.Operator // a callback rings the operator who asked for it, and only him
	}
	var manager *Operator
	if contact != nil && contact.Manager != "" {
		manager = ops[contact.Manager]
	}
	// The card is read while the operator is chosen and claimed, within the same budget.
	var cardCh chan *Card
	if contact != nil && s.cards != nil && !rc.degraded {
		cardCh = make(chan *Card, 1)
		go func() {
			cctx, cancel := s.lookupCtx(ctx)
			defer cancel()
			card, err := s.cards(cctx, contact.ID)
			switch {
			case err != nil && ctx.Err() != nil:
				// Route returned without a pop (nobody available): nobody waits for the card.
				card = nil
			case err != nil:
				s.log.Warn("switchboard: card lookup failed, popping without it", "contact", contact.ID, "err", err)
				card = nil
			}
			cardCh <- card
		}()
	}

	chosen, bindings := s.choose(rc, ops, direct, manager, skip, callID)

	now := s.now()
	s.mu.Lock()
	if lc == nil {
		// Another Route for this Call-ID may have raced us here (a retransmission
		// handled concurrently): the first one wins and ours is given back.
		if other := s.live[in.SIPCallID]; other != nil {
			s.mu.Unlock()
			if chosen != "" {
				s.release(rc, chosen, callID)
			}
			s.mu.Lock()
			r := Route{Operator: other.call.Operator, RingTimeout: s.ringTimeout, Status: 0}
			if other.call.State != CallRinging {
				r = Route{Status: 480, Reason: "no operator available"}
			}
			s.mu.Unlock()
			if r.Operator != "" {
				r.Bindings = s.cachedBindings(r.Operator)
			}
			return r
		}
		to := in.Dialled
		if e, err := phone.Normalize(in.Dialled, s.region); err == nil {
			to = e
		}
		lc = &liveCall{contact: contact, call: &Call{
			ID: callID, SIPCallID: in.SIPCallID, From: from, FromDisplay: in.CallerName, To: to,
			Line: line, State: CallRinging, LookupFailed: lookupFailed, Started: received,
			Media: in.Bridged, Recorded: in.Bridged && lineCfg.Record, PromiseID: in.PromiseID,
		}}
		if in.Callback || in.Operator != "" {
			lc.call.Direction = DirectionCallback
		}
		if script != nil {
			lc.call.Script = script.ID
		}
		if contact != nil {
			lc.call.ContactID = contact.ID
		}
		s.live[in.SIPCallID] = lc
	}
	c := lc.call
	if chosen == "" {
		c.State, c.Reason = CallMissed, "no operator"
		c.Ended = &now
		delete(s.live, in.SIPCallID)
		s.done[in.SIPCallID] = now
	} else {
		c.Operator = chosen
		c.Attempts = append(c.Attempts, Attempt{Operator: chosen, Started: now})
	}
	snapshot := cloneCall(c)
	s.mu.Unlock()

	for _, op := range previous {
		if op != chosen {
			s.release(rc, op, callID)
		}
	}
	if chosen == "" {
		s.callsTotal.WithLabelValues("missed").Inc()
		s.pub.Publish(Event{Type: EventCallMissed, Operators: managerAudience(contact), Payload: CallUpdate{Call: snapshot}})
		s.dispatchSave(in.SIPCallID, snapshot)
		if s.onMissed != nil {
			s.shardFor(in.SIPCallID).enqueue(func() {
				ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
				defer cancel()
				s.runHook(ctx, s.onMissed, snapshot)
			})
		}
		s.log.Info("switchboard: no operator available", "sip_call_id", in.SIPCallID, "from", from, "tried", skip, "degraded", rc.degraded)
		if s.log.Enabled(ctx, slog.LevelDebug) {
			// Who was busy with what: the store's (or cached) status and claim, and
			// the claim this node holds.
			s.mu.Lock()
			busy := make([]string, 0, len(ops))
			for l, o := range ops {
				busy = append(busy, l+"="+string(o.Status)+":"+o.CallID+" local="+s.localClaims[l])
			}
			s.mu.Unlock()
			slices.Sort(busy)
			s.log.Debug("switchboard: operators when no one was available", "sip_call_id", in.SIPCallID, "operators", busy)
		}
		if in.Operator != "" {
			return Route{Status: 480, Reason: s.pinnedReason(ops, in.Operator, skip)}
		}
		return Route{Status: 480, Reason: "no operator available"}
	}

	pop := Pop{Call: snapshot, Contact: contact, Script: script, PresetSource: source, Prices: s.prices}
	if cardCh != nil {
		pop.Card = <-cardCh
	}
	if manager != nil {
		pop.Manager = manager.Name
	}
	if lookupFailed {
		pop.Lookup = "unavailable"
	}
	s.pub.Publish(Event{Type: EventCallRinging, Operators: []string{chosen}, Payload: pop})
	s.popLatency.Observe(s.now().Sub(received).Seconds())
	s.dispatchSave(in.SIPCallID, snapshot)
	s.log.Info("switchboard: routed", "sip_call_id", in.SIPCallID, "call", callID, "from", from,
		"line", line, "operator", chosen, "attempt", len(snapshot.Attempts), "degraded", rc.degraded)
	r := Route{Operator: chosen, Bindings: bindings, RingTimeout: s.ringTimeout}
	if in.Bridged {
		r.Record, r.Retention = lineCfg.Record, lineCfg.RecordingRetention()
	}
	return r
}

// mediaLine returns the line a call to dialled reaches when that line is in media
// mode. A login (a direct call between colleagues) is never a media line. It
// reads only the configuration and the cached operators, so the first Route of a
// media call costs no store round trip (but for the very first call after start,
// when nothing is cached yet).
func (s *Switchboard) mediaLine(ctx context.Context, dialled string) (Line, bool) {
	l, ok := s.configuredLine(dialled)
	if !ok || !l.Media {
		return Line{}, false
	}
	s.mu.Lock()
	cold := len(s.ops) == 0
	s.mu.Unlock()
	if cold && !s.storeDown() {
		// Nothing read yet (the desk just started): read the operators once, so a
		// login is told from a line; every later call uses the cache.
		s.operators(&routeCtx{ctx: ctx})
	}
	s.mu.Lock()
	_, login := s.ops[dialled]
	s.mu.Unlock()
	if login && dialled != "" {
		return Line{}, false
	}
	return l, true
}

// pinnedReason says why a call pinned to operator (a callback) cannot ring him.
func (s *Switchboard) pinnedReason(ops map[string]*Operator, operator string, tried []string) string {
	o := ops[operator]
	switch {
	case o == nil:
		return "operator " + operator + " is unknown"
	case slices.Contains(tried, operator):
		return "operator " + operator + " did not answer"
	case !o.Registered:
		return "operator " + operator + " has no registered phone"
	case !free(o):
		return "operator " + operator + " is busy (" + string(o.Status) + ")"
	}
	return "operator " + operator + " cannot be rung"
}

// duplicateLocked recognises a repeated Route for the attempt still ringing (a
// retransmitted INVITE): it gets the same answer and no second pop.
func (s *Switchboard) duplicateLocked(lc *liveCall, in Incoming) (Route, bool) {
	c := lc.call
	if !c.Live() {
		return Route{Status: 480, Reason: "call already finished"}, true
	}
	if c.State != CallRinging || len(c.Attempts) == 0 {
		return Route{}, false
	}
	last := c.Attempts[len(c.Attempts)-1]
	if last.Outcome != "" || slices.Contains(in.Tried, last.Operator) {
		return Route{}, false
	}
	return Route{Operator: last.Operator, RingTimeout: s.ringTimeout}, true
}

func (s *Switchboard) pruneDoneLocked(now time.Time) {
	for id, t := range s.done {
		if now.Sub(t) > doneFor {
			delete(s.done, id)
		}
	}
	for k, t := range s.released {
		if now.Sub(t) > doneFor {
			delete(s.released, k)
		}
	}
	for k, t := range s.savedLately {
		if now.Sub(t) > savedLatelyFor {
			delete(s.savedLately, k)
		}
	}
}

// operators reads the operators from the store, or from the cache when it fails.
func (s *Switchboard) operators(rc *routeCtx) map[string]*Operator {
	if !rc.degraded {
		ctx, cancel := s.lookupCtx(rc.ctx)
		err := s.releasePending(ctx)
		var ops []*Operator
		if err == nil {
			ops, err = s.store.Operators(ctx)
		}
		cancel()
		if err == nil {
			s.cacheOperators(ops)
			s.catchUpSoon()
		} else {
			s.failed("operators", err)
			s.log.Warn("switchboard: reading operators failed, using cache", "err", err)
			rc.degraded = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]*Operator, len(s.ops))
	for l, o := range s.ops {
		c := *o
		if rc.degraded {
			// The cached status is as old as the cache; what this node holds is current.
			// A wrap-up does not keep an operator off calls during an outage.
			if _, gone := s.released[l+"|"+c.CallID]; gone || c.Status == StatusWrapup {
				c.CallID, c.Status = "", StatusAvailable
			}
			if held, ok := s.localClaims[l]; ok {
				c.CallID, c.Status = held, StatusRinging
			}
		}
		m[l] = &c
	}
	return m
}

// line finds the dialled line: an operator's login (a direct call), a configured
// line, or the default line. With linesOnly (a callback names its line) a login is
// not looked for. cfg is the line's configuration (the default line's entry, if
// configured, for an unknown number; none for a direct call).
func (s *Switchboard) line(dialled string, ops map[string]*Operator, linesOnly bool) (id string, script *Script, source, direct string, cfg Line) {
	if _, ok := ops[dialled]; ok && dialled != "" && !linesOnly {
		// A direct call is never carried by the bridge, whatever the default line says.
		return DefaultLine, s.scripts[s.defaultScript], s.defaultSource(), dialled, Line{Number: DefaultLine}
	}
	if l, ok := s.matchLine(dialled); ok {
		sc := s.scripts[l.Script]
		if sc == nil {
			sc = s.scripts[s.defaultScript]
		}
		return l.Number, sc, l.Source, "", l
	}
	def, _ := s.matchLine(DefaultLine)
	return DefaultLine, s.scripts[s.defaultScript], s.defaultSource(), "", def
}

// matchLine returns the configured line whose number is dialled, as written or
// both as E.164.
func (s *Switchboard) matchLine(dialled string) (Line, bool) {
	e164, err := phone.Normalize(dialled, s.region)
	for _, l := range s.lines {
		if (err == nil && l.e164 != "" && l.e164 == e164) || l.Number == dialled {
			return l.Line, true
		}
	}
	return Line{}, false
}

// configuredLine returns the line a call to dialled reaches when it is not a
// login: the matching line, else the default line's entry when it is configured.
func (s *Switchboard) configuredLine(dialled string) (Line, bool) {
	if l, ok := s.matchLine(dialled); ok {
		return l, true
	}
	return s.matchLine(DefaultLine)
}

// defaultSource is the preset source of the default line, when it has one.
func (s *Switchboard) defaultSource() string {
	for _, l := range s.lines {
		if l.Number == DefaultLine {
			return l.Source
		}
	}
	return ""
}

func free(o *Operator) bool { return o.CallID == "" }

// candidates lists who may take the call, best first.
func candidates(ops map[string]*Operator, direct string, manager *Operator, skip []string) []*Operator {
	if direct != "" {
		if o := ops[direct]; o != nil && o.Registered && free(o) && !slices.Contains(skip, direct) {
			return []*Operator{o}
		}
		return nil
	}
	var out []*Operator
	if manager != nil && manager.Registered && !manager.Away && free(manager) && !slices.Contains(skip, manager.Login) {
		out = append(out, manager)
	}
	var open, closed []*Operator
	for _, o := range ops {
		if !o.Registered || o.Away || !free(o) || slices.Contains(skip, o.Login) || (manager != nil && o.Login == manager.Login) {
			continue
		}
		if o.PageOpen {
			open = append(open, o)
		} else {
			closed = append(closed, o)
		}
	}
	longestIdle := func(a, b *Operator) int {
		if c := a.IdleSince.Compare(b.IdleSince); c != 0 {
			return c
		}
		return cmpString(a.Login, b.Login)
	}
	slices.SortFunc(open, longestIdle)
	slices.SortFunc(closed, longestIdle)
	out = append(out, open...)
	// A closed page is no reason to drop a call: those phones ring last.
	return append(out, closed...)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// choose claims the first candidate that can be claimed and has live bindings.
func (s *Switchboard) choose(rc *routeCtx, ops map[string]*Operator, direct string, manager *Operator, skip []string, callID string) (string, []Binding) {
	for _, o := range candidates(ops, direct, manager, skip) {
		if !s.claim(rc, o.Login, callID) {
			continue
		}
		b := s.bindingsOf(rc, o.Login)
		if len(b) == 0 {
			s.release(rc, o.Login, callID)
			continue
		}
		return o.Login, b
	}
	return "", nil
}

// claim reserves login for callID in the store, or in process when the store is down.
func (s *Switchboard) claim(rc *routeCtx, login, callID string) bool {
	s.mu.Lock()
	if held, ok := s.localClaims[login]; ok && held != callID {
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	stored := !rc.degraded // the store is asked (its answer may be lost: then it may hold the claim)
	if !rc.degraded {
		ctx, cancel := s.lookupCtx(rc.ctx)
		err := s.store.Claim(ctx, login, callID, StatusRinging, s.ringTimeout+claimMargin)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, ErrClaimed):
			return false
		case s.failed("claim", err):
			rc.degraded = true
		default:
			s.log.Warn("switchboard: claim failed", "operator", login, "err", err)
			return false
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if held, ok := s.localClaims[login]; ok && held != callID {
		return false
	}
	s.localClaims[login] = callID
	if !stored {
		s.localOnly[login+"|"+callID] = true
	}
	return true
}

// storingClaim notes that login's claim for callID is about to be written to the
// store, so its release must reach the store too.
func (s *Switchboard) storingClaim(login, callID string) {
	s.mu.Lock()
	delete(s.localOnly, login+"|"+callID)
	s.mu.Unlock()
}

func (s *Switchboard) bindingsOf(rc *routeCtx, login string) []Binding {
	if !rc.degraded {
		ctx, cancel := s.lookupCtx(rc.ctx)
		b, err := s.store.Bindings(ctx, login)
		cancel()
		if err == nil {
			s.cacheBindings(login, b)
			return b
		}
		if s.failed("bindings", err) {
			rc.degraded = true
		} else {
			s.log.Warn("switchboard: reading bindings failed", "operator", login, "err", err)
		}
	}
	return s.cachedBindings(login)
}

// release gives login back: in process at once, in the store on the call's worker
// when called from an event, or right here from Route.
func (s *Switchboard) release(rc *routeCtx, login, callID string) {
	s.dropLocalClaim(login, callID)
	s.mu.Lock()
	key := login + "|" + callID
	localOnly := s.localOnly[key]
	delete(s.localOnly, key)
	s.mu.Unlock()
	if localOnly {
		return // the store never held it
	}
	if (rc != nil && rc.degraded) || s.storeDown() {
		s.addUnreleased(login, callID)
		return
	}
	ctx := context.Background()
	if rc != nil {
		ctx = rc.ctx
	}
	ctx, cancel := s.lookupCtx(ctx)
	defer cancel()
	if err := s.store.Release(ctx, login, callID); err != nil {
		if s.failed("release", err) {
			s.addUnreleased(login, callID)
		}
		s.log.Warn("switchboard: release failed", "operator", login, "call", callID, "err", err)
	}
}

// dropLocalClaim forgets this node's claim of login for callID; the cached
// operator no longer counts as busy with that call either.
func (s *Switchboard) dropLocalClaim(login, callID string) {
	s.mu.Lock()
	if s.localClaims[login] == callID {
		delete(s.localClaims, login)
	}
	if o := s.ops[login]; o != nil && o.CallID == callID {
		c := *o
		c.CallID, c.Status = "", StatusAvailable
		s.ops[login] = &c
	}
	s.released[login+"|"+callID] = s.now()
	s.mu.Unlock()
}

// addUnreleased remembers a release the store did not get.
func (s *Switchboard) addUnreleased(login, callID string) {
	s.mu.Lock()
	if !slices.Contains(s.unreleased[login], callID) {
		s.unreleased[login] = append(s.unreleased[login], callID)
	}
	s.mu.Unlock()
}

// releasePending gives the store the releases it missed while it was down, so an
// operator whose call ended during an outage is not held by its stale claim. The
// store releases only a claim the call still holds, so a late release is harmless.
func (s *Switchboard) releasePending(ctx context.Context) error {
	s.mu.Lock()
	if len(s.unreleased) == 0 {
		s.mu.Unlock()
		return nil
	}
	pending := s.unreleased
	s.unreleased = map[string][]string{}
	s.mu.Unlock()
	var firstErr error
	for login, ids := range pending {
		for _, id := range ids {
			if firstErr == nil {
				if firstErr = s.store.Release(ctx, login, id); firstErr == nil {
					continue
				}
			}
			s.addUnreleased(login, id)
		}
	}
	return firstErr
}

// catchUpSoon starts a catchUp when the store answers again and something waits
// for it, so the calls of an outage are stored at once, not at the next refresh.
func (s *Switchboard) catchUpSoon() {
	s.mu.Lock()
	waiting := len(s.unsaved) > 0 || len(s.deferred) > 0
	s.mu.Unlock()
	if !waiting || !s.catching.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.catching.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
		defer cancel()
		s.catchUp(ctx)
	}()
}

// catchUp writes back what the store missed while it was down: the pending
// releases, and the calls whose saves were skipped (each on its call's worker, so
// it never overwrites a newer save).
func (s *Switchboard) catchUp(ctx context.Context) {
	if err := s.releasePending(ctx); err != nil {
		s.failed("release", err)
		return
	}
	s.mu.Lock()
	ids := make([]string, 0, len(s.unsaved))
	for id := range s.unsaved {
		if !s.catchQueued[id] {
			s.catchQueued[id] = true
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	s.mu.Lock()
	if len(ids) > 0 || len(s.deferred) > 0 {
		s.graceUntil = s.now().Add(wrapupGrace)
	}
	s.mu.Unlock()
	if len(ids) > 0 {
		s.log.Info("switchboard: store back, saving the calls it missed", "calls", len(ids))
	}
	// The catch-up work waits behind the events on each worker: an Ended queued
	// after hundreds of catch-up saves would otherwise hold its operator's claim,
	// and calls got 480 in the seconds after recovery. Each save reads the call's
	// latest snapshot when it runs, so running it after a newer event is harmless.
	for _, id := range ids {
		s.shardFor(id).enqueueBackground(func() {
			s.mu.Lock()
			c := s.unsaved[id]
			delete(s.catchQueued, id)
			s.mu.Unlock()
			if c == nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
			defer cancel()
			s.save(ctx, c)
		})
	}
	// The hooks held back run after their call's save, on its worker.
	s.mu.Lock()
	hooks := s.deferred
	s.deferred = nil
	s.mu.Unlock()
	for _, h := range hooks {
		s.shardFor(h.call.SIPCallID).enqueueBackground(func() {
			ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
			defer cancel()
			s.runHook(ctx, h.fn, h.call)
		})
	}
}

// Unsaved reports whether the call with this ID is known here but not stored yet
// (it was routed or changed while the store was down): a request about it should
// be retried, not refused as unknown.
func (s *Switchboard) Unsaved(callID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.unsaved {
		if c.ID == callID {
			return true
		}
	}
	if at, ok := s.savedLately[callID]; ok && s.now().Sub(at) < savedLatelyFor {
		return true
	}
	return false
}

// savedLatelyFor is how long a call written back after an outage still counts as
// Unsaved: the caller may have read the store just before the save landed.
const savedLatelyFor = 5 * time.Second

func (s *Switchboard) dispatchSave(sipCallID string, c *Call) {
	s.shardFor(sipCallID).enqueue(func() {
		ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
		defer cancel()
		s.save(ctx, c)
	})
}

// save writes the call; while the store is down it is skipped so the events queued
// behind it are not delayed by one timeout each, and kept for catchUp, which writes
// it when the store answers again.
func (s *Switchboard) save(ctx context.Context, c *Call) {
	if s.storeDown() {
		s.log.Debug("switchboard: store down, call not saved", "call", c.ID)
		s.markUnsaved(c)
		return
	}
	if err := s.store.SaveCall(ctx, c); err != nil {
		s.failed("save call", err)
		s.markUnsaved(c)
		s.log.Warn("switchboard: saving call failed", "call", c.ID, "err", err)
		return
	}
	// Saves of one call run in order on its worker: this one supersedes any skipped.
	s.mu.Lock()
	if _, ok := s.unsaved[c.SIPCallID]; ok {
		delete(s.unsaved, c.SIPCallID)
		s.savedLately[c.ID] = s.now()
	}
	s.mu.Unlock()
}

// deferredHook is a call hook held back while the store was down.
type deferredHook struct {
	fn   func(ctx context.Context, c *Call)
	call *Call
}

// maxDeferred bounds the hooks kept for the store's return.
const maxDeferred = 10000

// runHook runs a missed call's hook (Sales' callback promise) now, or, while the
// store is down, when it answers again: its store writes would fail one by one,
// each slowly, and hold up the events queued behind it on the worker, such as the
// release of an operator.
func (s *Switchboard) runHook(ctx context.Context, fn func(ctx context.Context, c *Call), c *Call) {
	if !s.storeDown() {
		fn(ctx, cloneCall(c))
		return
	}
	s.mu.Lock()
	if len(s.deferred) < maxDeferred {
		s.deferred = append(s.deferred, deferredHook{fn: fn, call: cloneCall(c)})
	} else {
		s.log.Warn("switchboard: too many call hooks held for the store, one dropped", "call", c.ID)
	}
	s.mu.Unlock()
}

// markUnsaved keeps the call's latest snapshot for catchUp.
func (s *Switchboard) markUnsaved(c *Call) {
	s.mu.Lock()
	s.unsaved[c.SIPCallID] = cloneCall(c)
	s.mu.Unlock()
}

// Events.

// Ringing records that the operator's phone is ringing (180). The claim already
// says ringing, so only the log hears of it.
func (s *Switchboard) Ringing(sipCallID, operator string) {
	s.log.Debug("switchboard: phone ringing", "sip_call_id", sipCallID, "operator", operator)
}

// Answered records that operator picked up at at.
func (s *Switchboard) Answered(sipCallID, operator string, at time.Time) {
	s.event(sipCallID, func(ctx context.Context, lc *liveCall) {
		s.mu.Lock()
		c := lc.call
		if c.State != CallRinging {
			s.mu.Unlock()
			return // a retransmitted 200 OK
		}
		c.State, c.Operator = CallAnswered, operator
		c.Answered = &at
		setOutcome(c, operator, "answered", 200)
		snap := cloneCall(c)
		s.mu.Unlock()
		if snap.Direction != DirectionCallback {
			// A callback is counted when it ends: only then is it known whether
			// the customer answered too.
			s.callsTotal.WithLabelValues("answered").Inc()
		}
		s.pub.Publish(Event{Type: EventCallAnswered, Operators: []string{operator}, Payload: CallUpdate{Call: snap}})
		if s.storeDown() {
			return
		}
		s.storingClaim(operator, snap.ID)
		err := s.store.UpdateClaim(ctx, operator, snap.ID, StatusTalking, talkTTL)
		if errors.Is(err, ErrNotFound) {
			err = s.store.Claim(ctx, operator, snap.ID, StatusTalking, talkTTL)
		}
		if err != nil {
			s.failed("update claim", err)
			s.log.Warn("switchboard: marking operator talking failed", "operator", operator, "err", err)
		}
		s.save(ctx, snap)
	})
}

// TargetFailed records that operator's attempt ended without an answer: 408 when
// he did not answer in time, 487 when the caller gave up, else the phone's status.
func (s *Switchboard) TargetFailed(sipCallID, operator string, status int) {
	s.event(sipCallID, func(ctx context.Context, lc *liveCall) {
		s.mu.Lock()
		c := lc.call
		if !setOutcome(c, operator, outcomeOf(status), status) {
			s.mu.Unlock()
			return
		}
		snap := cloneCall(c)
		s.mu.Unlock()
		s.release(&routeCtx{ctx: ctx}, operator, snap.ID)
		// His pop must close even though the call rings on elsewhere: the state says so.
		s.pub.Publish(Event{Type: EventCallMissed, Operators: []string{operator}, Payload: CallUpdate{Call: snap}})
		s.save(ctx, snap)
	})
}

// Missed records that the call ended before anybody answered; status is what the
// caller got (487 when he hung up).
func (s *Switchboard) Missed(sipCallID string, status int) {
	s.event(sipCallID, func(ctx context.Context, lc *liveCall) { s.missed(ctx, lc, status) })
}

func (s *Switchboard) missed(ctx context.Context, lc *liveCall, status int) {
	now := s.now()
	s.mu.Lock()
	c := lc.call
	if c.State != CallRinging {
		s.mu.Unlock()
		return // a duplicate, or Route already reported nobody available
	}
	c.State, c.Ended, c.Reason = CallMissed, &now, missedReason(status)
	c.Monitors = nil
	var ringing []string
	for i := range c.Attempts {
		if c.Attempts[i].Outcome == "" {
			c.Attempts[i].Outcome, c.Attempts[i].Status = outcomeOf(status), status
			ringing = append(ringing, c.Attempts[i].Operator)
		}
	}
	snap := cloneCall(c)
	s.mu.Unlock()
	for _, op := range ringing {
		s.release(&routeCtx{ctx: ctx}, op, c.ID)
	}
	outcome := "missed"
	if status == 487 {
		outcome = "abandoned"
	}
	s.callsTotal.WithLabelValues(outcome).Inc()
	audience := managerAudience(s.contactOf(ctx, lc))
	if snap.Operator != "" && !slices.Contains(audience, snap.Operator) {
		audience = append(audience, snap.Operator)
	}
	s.pub.Publish(Event{Type: EventCallMissed, Operators: audience, Payload: CallUpdate{Call: snap}})
	s.save(ctx, snap)
	if s.onMissed != nil {
		s.runHook(ctx, s.onMissed, snap)
	}
}

// CallbackConnected is the media bridge's report that the customer of the callback
// whose operator leg is sipCallID answered. The bridge makes it before it bridges
// the two, and the events of one call run in order, so any end of the call comes
// after it. A callback that ends without it closes as unreached: no wrap-up, the
// promise left open.
func (s *Switchboard) CallbackConnected(sipCallID string) {
	s.event(sipCallID, func(_ context.Context, lc *liveCall) {
		s.mu.Lock()
		lc.connected = true
		s.mu.Unlock()
	})
}

// CallbackUnreached is the media bridge's report that the customer of the callback
// whose operator leg is sipCallID refused or did not answer, with the trunk's
// final status. It comes before the bridge hangs the operator's leg up, so the
// end that follows gives the reason ("customer busy" rather than "customer did not
// answer").
func (s *Switchboard) CallbackUnreached(sipCallID string, status int) {
	s.event(sipCallID, func(_ context.Context, lc *liveCall) {
		s.mu.Lock()
		lc.unreached = status
		s.mu.Unlock()
	})
}

// unreachedReason is Call.Reason for a callback whose customer did not answer.
func unreachedReason(status int) string {
	switch status {
	case 486, 600:
		return "customer busy"
	case 603:
		return "customer declined"
	case 408, 480, 487:
		return "customer did not answer"
	}
	return "customer not reached (status " + strconv.Itoa(status) + ")"
}

// Ended records that an established call ended at at; by is "caller" or "operator".
func (s *Switchboard) Ended(sipCallID, by string, at time.Time) {
	s.event(sipCallID, func(ctx context.Context, lc *liveCall) {
		s.mu.Lock()
		c := lc.call
		if !c.Live() {
			s.mu.Unlock()
			return
		}
		if c.State == CallRinging {
			// A BYE without a seen answer: treat the call as missed, not as talked.
			s.mu.Unlock()
			s.missed(ctx, lc, 487)
			return
		}
		c.State, c.Ended = CallEnded, &at
		c.Monitors = nil // the bridge tears the supervisors' legs down with the call
		c.Reason = by + " hung up"
		if by == "" {
			c.Reason = "hung up"
		}
		if c.Direction == DirectionCallback && !lc.connected {
			switch {
			case lc.unreached != 0:
				c.Unreached, c.Reason = lc.unreached, unreachedReason(lc.unreached)
			case by == "operator":
				// He hung up while the customer's phone rang: the bridge cancels
				// the customer's leg and has no final status to report.
				c.Unreached, c.Reason = 487, "operator hung up before the customer answered"
			default:
				c.Unreached, c.Reason = 487, "customer did not answer"
			}
			c.Recorded = false // recording starts when the customer answers
		}
		snap := cloneCall(c)
		s.mu.Unlock()
		if snap.Direction == DirectionCallback {
			outcome := "answered"
			if snap.Unreached != 0 {
				outcome = "unreached"
			}
			s.callsTotal.WithLabelValues(outcome).Inc()
		}
		if snap.Operator != "" {
			// Nobody talked to the customer, so there is nothing to wrap up.
			if s.onEnded == nil || snap.Unreached != 0 || !s.holdForWrapup(ctx, snap) {
				s.release(&routeCtx{ctx: ctx}, snap.Operator, snap.ID)
			}
		}
		s.pub.Publish(Event{Type: EventCallEnded, Operators: []string{snap.Operator}, Payload: CallUpdate{Call: snap}})
		s.save(ctx, snap)
		switch {
		case snap.Unreached != 0:
			// The contact's history and the audit log note the attempt; the promise
			// stays open.
			if s.onMissed != nil {
				s.runHook(ctx, s.onMissed, snap)
			}
		case s.onEnded == nil:
		case s.noWrapupHold():
			// He was released above: an outage keeps nobody off calls, so there is
			// no wrap-up hold to record; his page still shows the wrap-up.
			s.log.Debug("switchboard: store down, wrap-up hold not recorded", "call", snap.ID)
		default:
			s.onEnded(ctx, cloneCall(snap))
		}
	})
}

// holdForWrapup keeps the operator of an ended call claimed, as in wrap-up, so no
// call rings him before he closes the record. It reports false when the claim
// could not be kept (the store is down), or right after an outage (wrapupGrace):
// he is released then, as the desk never keeps an operator off calls for a store
// outage.
func (s *Switchboard) holdForWrapup(ctx context.Context, c *Call) bool {
	if s.noWrapupHold() {
		return false
	}
	s.storingClaim(c.Operator, c.ID)
	err := s.store.UpdateClaim(ctx, c.Operator, c.ID, StatusWrapup, wrapupHold)
	if errors.Is(err, ErrNotFound) {
		err = s.store.Claim(ctx, c.Operator, c.ID, StatusWrapup, wrapupHold)
	}
	if err != nil {
		s.failed("hold for wrap-up", err)
		s.log.Warn("switchboard: holding the operator in wrap-up failed", "operator", c.Operator, "err", err)
		return false
	}
	// The in-process claim goes: the store's claim holds him on every node.
	s.dropLocalClaim(c.Operator, c.ID)
	return true
}

// Live returns the live calls on every node: the store's, with this node's fresher
// copies; this node's alone when the store is unavailable.
func (s *Switchboard) Live(ctx context.Context) ([]*Call, error) {
	stored, err := s.store.LiveCalls(ctx)
	if err != nil {
		s.log.Warn("switchboard: live calls from store failed, using this node's", "err", err)
	}
	byID := map[string]*Call{}
	for _, c := range stored {
		byID[c.ID] = c
	}
	s.mu.Lock()
	for _, lc := range s.live {
		if lc.call.Live() {
			byID[lc.call.ID] = cloneCall(lc.call)
		}
	}
	s.mu.Unlock()
	out := make([]*Call, 0, len(byID))
	for _, c := range byID {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Call) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return cmpString(a.ID, b.ID)
	})
	return out, nil
}

// event runs fn for the call on the call's worker, loading the call from the store
// when this node does not know it (after a restart, or routed by another node).
func (s *Switchboard) event(sipCallID string, fn func(ctx context.Context, lc *liveCall)) {
	s.shardFor(sipCallID).enqueue(func() { s.runEvent(sipCallID, fn) })
}

// runEvent is event's work on the worker; it reports false when the call is unknown.
func (s *Switchboard) runEvent(sipCallID string, fn func(ctx context.Context, lc *liveCall)) bool {
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	s.mu.Lock()
	lc := s.live[sipCallID]
	s.mu.Unlock()
	if lc == nil {
		if s.storeDown() {
			s.log.Warn("switchboard: event for an unknown call while the store is down", "sip_call_id", sipCallID)
			return false
		}
		c, err := s.store.CallBySIPID(ctx, sipCallID)
		if err != nil {
			s.failed("call by sip id", err)
			s.log.Warn("switchboard: event for an unknown call", "sip_call_id", sipCallID, "err", err)
			return false
		}
		s.mu.Lock()
		if lc = s.live[sipCallID]; lc == nil {
			lc = &liveCall{call: c}
			if c.Live() {
				s.live[sipCallID] = lc
			}
		}
		s.mu.Unlock()
	}
	fn(ctx, lc)
	s.mu.Lock()
	if !lc.call.Live() && s.live[sipCallID] == lc {
		delete(s.live, sipCallID)
		s.done[sipCallID] = s.now()
	}
	s.mu.Unlock()
	return true
}

// LiveCall returns the call with the desk id callID: this node's live copy when
// it routed or learnt of it (fresher than the store's, whose save may still be
// queued), else the store's. It implements CallMonitors.
func (s *Switchboard) LiveCall(ctx context.Context, callID string) (*Call, error) {
	s.mu.Lock()
	for _, lc := range s.live {
		if lc.call.ID == callID {
			c := cloneCall(lc.call)
			s.mu.Unlock()
			return c, nil
		}
	}
	s.mu.Unlock()
	c, err := s.store.Call(ctx, callID)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", callID, err)
	}
	return c, nil
}

// SetMonitor keeps a supervisor's leg on the live call carried under
// ch.SIPCallID: ringing, joined and switched put (or update) him in the call's
// Monitors, left and failed take him out. It runs on the call's worker, in order
// with the call's other events, saves the call and returns it as it now stands; a
// call already over is returned unchanged. It waits for the worker at most until
// ctx ends. It implements CallMonitors.
func (s *Switchboard) SetMonitor(ctx context.Context, ch MonitorChange) (*Call, error) {
	if ch.SIPCallID == "" || ch.Supervisor == "" {
		return nil, fmt.Errorf("monitor change without a call or a supervisor: %w", ErrInvalid)
	}
	type result struct {
		call *Call
		ok   bool
	}
	done := make(chan result, 1)
	s.shardFor(ch.SIPCallID).enqueue(func() {
		var snap *Call
		found := s.runEvent(ch.SIPCallID, func(ctx context.Context, lc *liveCall) {
			s.mu.Lock()
			c := lc.call
			changed := c.Live() && applyMonitor(c, ch, s.now())
			snap = cloneCall(c)
			s.mu.Unlock()
			if changed {
				s.save(ctx, snap)
			}
		})
		done <- result{snap, found}
	})
	select {
	case r := <-done:
		if !r.ok {
			return nil, fmt.Errorf("monitor of sip call %s: %w", ch.SIPCallID, ErrNotFound)
		}
		return r.call, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("monitor of sip call %s: %w", ch.SIPCallID, ctx.Err())
	}
}

// applyMonitor applies ch to c.Monitors and reports whether they changed.
func applyMonitor(c *Call, ch MonitorChange, now time.Time) bool {
	at := ch.At
	if at.IsZero() {
		at = now
	}
	i := slices.IndexFunc(c.Monitors, func(m Monitor) bool { return m.Supervisor == ch.Supervisor })
	switch ch.State {
	case MonitorLeft, MonitorFailed:
		if i < 0 {
			return false
		}
		c.Monitors = slices.Delete(c.Monitors, i, i+1)
		if len(c.Monitors) == 0 {
			c.Monitors = nil
		}
		return true
	case MonitorRinging, MonitorJoined, MonitorSwitched:
		m := Monitor{Supervisor: ch.Supervisor, Mode: ch.Mode, State: ch.State, Since: at}
		if i < 0 {
			c.Monitors = append(c.Monitors, m)
			return true
		}
		if c.Monitors[i].Mode == m.Mode && c.Monitors[i].State == m.State {
			return false // a repeated report
		}
		c.Monitors[i] = m
		return true
	}
	return false
}

// contactOf returns the call's contact, loading it when the call was loaded from the store.
func (s *Switchboard) contactOf(ctx context.Context, lc *liveCall) *Contact {
	s.mu.Lock()
	c, id := lc.contact, lc.call.ContactID
	s.mu.Unlock()
	if c != nil || id == "" {
		return c
	}
	c, err := s.store.Contact(ctx, id)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	lc.contact = c
	s.mu.Unlock()
	return c
}

func managerAudience(c *Contact) []string {
	if c == nil || c.Manager == "" {
		return nil
	}
	return []string{c.Manager}
}

// setOutcome closes operator's open attempt; false when there is none (a duplicate).
func setOutcome(c *Call, operator, outcome string, status int) bool {
	for i := len(c.Attempts) - 1; i >= 0; i-- {
		a := &c.Attempts[i]
		if a.Operator == operator && a.Outcome == "" {
			a.Outcome, a.Status = outcome, status
			return true
		}
	}
	return false
}

func outcomeOf(status int) string {
	switch status {
	case 408, 480:
		return "timeout"
	case 487:
		return "cancelled"
	}
	return "rejected"
}

func missedReason(status int) string {
	switch status {
	case 487:
		return "cancelled"
	case 408:
		return "timeout"
	case 480, 486, 503:
		return "no operator"
	}
	return "status " + strconv.Itoa(status)
}

func isE164(s string) bool { return len(s) > 1 && s[0] == '+' }

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func cloneCall(c *Call) *Call {
	cp := *c
	cp.Attempts = slices.Clone(c.Attempts)
	cp.Monitors = slices.Clone(c.Monitors)
	if c.Answered != nil {
		t := *c.Answered
		cp.Answered = &t
	}
	if c.Ended != nil {
		t := *c.Ended
		cp.Ended = &t
	}
	return &cp
}

// shard is one ordered worker. Its queue is unbounded so an event never waits for
// the store work queued before it.
type shard struct {
	mu    sync.Mutex
	queue []func()
	// background is work that yields to the events: one item runs only when no
	// event waits (the saves and hooks a store outage left behind).
	background []func()
	wake       chan struct{}
	closed     bool
}

func newShard() *shard { return &shard{wake: make(chan struct{}, 1)} }

func (s *Switchboard) shardFor(sipCallID string) *shard {
	h := fnv.New32a()
	_, _ = h.Write([]byte(sipCallID))
	return s.shards[h.Sum32()%uint32(len(s.shards))]
}

func (sh *shard) enqueue(f func()) {
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		f() // after Close there is no worker: apply in the caller rather than lose it
		return
	}
	sh.queue = append(sh.queue, f)
	sh.mu.Unlock()
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

// enqueueBackground queues f to run, in order with the other background work,
// when the worker has no event waiting.
func (sh *shard) enqueueBackground(f func()) {
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		f()
		return
	}
	sh.background = append(sh.background, f)
	sh.mu.Unlock()
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

func (sh *shard) close() {
	sh.mu.Lock()
	sh.closed = true
	sh.mu.Unlock()
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

func (sh *shard) run() {
	for {
		sh.mu.Lock()
		q := sh.queue
		sh.queue = nil
		if len(q) == 0 && len(sh.background) > 0 {
			q = sh.background[:1:1]
			sh.background = sh.background[1:]
		}
		closed := sh.closed
		sh.mu.Unlock()
		for _, f := range q {
			f()
		}
		if len(q) > 0 {
			continue
		}
		if closed {
			return
		}
		<-sh.wake
	}
}
