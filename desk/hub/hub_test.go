package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/hub"
	"github.com/calldesk/desk/desk/redistest"
)

var (
	opA = &desk.User{Login: "anna", Name: "Anna", Role: desk.RoleOperator}
	opB = &desk.User{Login: "boris", Name: "Boris", Role: desk.RoleOperator}
	sup = &desk.User{Login: "sveta", Name: "Sveta", Role: desk.RoleSupervisor}
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// node is one running hub behind an httptest server whose /ws takes the user from
// the "as" query parameter (authentication is httpapi's job, not the hub's).
type node struct {
	hub *hub.Hub
	srv *httptest.Server
}

func startNode(t *testing.T, rdb redis.UniversalClient, prefix string, opts ...hub.Option) *node {
	t.Helper()
	users := map[string]*desk.User{opA.Login: opA, opB.Login: opB, sup.Login: sup}
	opts = append([]hub.Option{hub.WithPrefix(prefix), hub.WithLogger(quietLogger()),
		hub.WithSnapshot(func(ctx context.Context, u *desk.User) (any, error) {
			return map[string]any{"calls": []any{}, "for": u.Login}, nil
		})}, opts...)
	h := hub.New(rdb, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := users[r.URL.Query().Get("as")]
		if u == nil {
			http.Error(w, "who?", http.StatusUnauthorized)
			return
		}
		h.ServeWS(w, r, u)
	}))
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return &node{hub: h, srv: srv}
}

// page is a websocket client that collects frames.
type page struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan map[string]any
}

func (n *node) open(t *testing.T, u *desk.User, since int64, epoch string) *page {
	t.Helper()
	q := url.Values{"as": {u.Login}}
	if since >= 0 {
		q.Set("since", fmt.Sprint(since))
		q.Set("epoch", epoch)
	}
	wsURL := "ws" + strings.TrimPrefix(n.srv.URL, "http") + "/ws?" + q.Encode()
	ws, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {n.srv.URL}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	p := &page{t: t, ws: ws, frames: make(chan map[string]any, 4096)}
	go func() {
		defer close(p.frames)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var f map[string]any
			if err := json.Unmarshal(data, &f); err != nil {
				t.Errorf("frame is not JSON: %q", data)
				return
			}
			p.frames <- f
		}
	}()
	t.Cleanup(func() { ws.Close() })
	return p
}

func (p *page) next(within time.Duration) map[string]any {
	p.t.Helper()
	select {
	case f, ok := <-p.frames:
		if !ok {
			p.t.Fatalf("connection closed while waiting for a frame")
		}
		return f
	case <-time.After(within):
		p.t.Fatalf("no frame within %v", within)
		return nil
	}
}

// none checks that no frame arrives for d.
func (p *page) none(d time.Duration) {
	p.t.Helper()
	select {
	case f, ok := <-p.frames:
		if ok {
			p.t.Fatalf("unexpected frame %v", f)
		}
	case <-time.After(d):
	}
}

func seqOf(f map[string]any) int64 {
	n, _ := f["seq"].(float64)
	return int64(n)
}

func ringing(login, callID string) desk.Event {
	return desk.Event{Type: desk.EventCallRinging, Operators: []string{login}, Payload: desk.Pop{
		Call: &desk.Call{ID: callID, From: "+79160000001", To: "sales", Line: "sales", Operator: login, State: desk.CallRinging},
	}}
}

func callID(f map[string]any) string {
	c, _ := f["call"].(map[string]any)
	id, _ := c["id"].(string)
	return id
}

func TestAudienceAndSeq(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	n := startNode(t, rdb, prefix)
	pa := n.open(t, opA, -1, "")
	pb := n.open(t, opB, -1, "")
	ps := n.open(t, sup, -1, "")
	snaps := map[*page]map[string]any{}
	for _, p := range []*page{pa, pb, ps} {
		f := p.next(2 * time.Second)
		if f["type"] != "snapshot" || f["epoch"] == "" || f["user"] == nil || f["calls"] == nil {
			t.Fatalf("first frame is not a full snapshot: %v", f)
		}
		snaps[p] = f
	}
	if got := snaps[pa]["for"]; got != opA.Login {
		t.Fatalf("snapshot payload built for %v, want %s", got, opA.Login)
	}

	events := []struct {
		ev      desk.Event
		wantFor []*page
	}{
		{ringing(opA.Login, "c1"), []*page{pa, ps}},
		{ringing(opB.Login, "c2"), []*page{pb, ps}},
		{desk.Event{Type: desk.EventCallAnswered, Operators: []string{opA.Login}, Payload: desk.CallUpdate{Call: &desk.Call{ID: "c1", State: desk.CallAnswered}}}, []*page{pa, ps}},
		{desk.Event{Type: "whatever", Payload: map[string]int{"n": 1}}, []*page{ps}},
	}
	last := map[*page]int64{pa: seqOf(snaps[pa]), pb: seqOf(snaps[pb]), ps: seqOf(snaps[ps])}
	for i, e := range events {
		n.hub.Publish(e.ev)
		for _, p := range e.wantFor {
			f := p.next(2 * time.Second)
			if f["type"] != e.ev.Type {
				t.Fatalf("event %d: got type %v, want %s", i, f["type"], e.ev.Type)
			}
			if s := seqOf(f); s != last[p]+1 {
				t.Fatalf("event %d: seq %d after %d, want +1", i, s, last[p])
			}
			last[p]++
		}
	}
	// Nobody got anything meant for someone else.
	for name, p := range map[string]*page{"anna": pa, "boris": pb, "sup": ps} {
		t.Run("no-leak-"+name, func(t *testing.T) { p.t = t; p.none(200 * time.Millisecond) })
	}
}

func TestResume(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	n := startNode(t, rdb, prefix)

	// Put some history in the operator's channel and learn where it stands.
	p := n.open(t, opA, -1, "")
	snap := p.next(2 * time.Second)
	epoch := snap["epoch"].(string)
	for i := range 3 {
		n.hub.Publish(ringing(opA.Login, fmt.Sprint("before", i)))
	}
	var last int64
	for range 3 {
		last = seqOf(p.next(2 * time.Second))
	}
	p.ws.Close()
	for i := range 5 {
		n.hub.Publish(ringing(opA.Login, fmt.Sprint("missed", i)))
	}
	// Wait until the missed frames are in Redis (Publish is asynchronous).
	waitSeq(t, rdb, prefix, hub.OperatorChannel(opA.Login), last+5)

	// Each case starts with 5 frames published after the page's last seq.
	cases := []struct {
		name         string
		ahead        int64  // the page resumes from last+ahead
		epoch        string // "" means the channel's epoch
		trim         bool
		wantSnapshot bool
		wantReplay   int
	}{
		{name: "replays exactly what was missed", wantReplay: 5},
		{name: "up to date gets nothing", ahead: 5, wantReplay: 0},
		{name: "wrong epoch gets a snapshot", epoch: "not-the-epoch", wantSnapshot: true},
		{name: "seq ahead of head gets a snapshot", ahead: 100, wantSnapshot: true},
		{name: "trimmed history gets a snapshot", trim: true, wantSnapshot: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.trim {
				rdb.XTrimMaxLen(context.Background(), prefix+"{hub}:"+hub.OperatorChannel(opA.Login)+":stream", 2)
			}
			since, ep := last+tc.ahead, tc.epoch
			if ep == "" {
				ep = epoch
			}
			p := n.open(t, opA, since, ep)
			if tc.wantSnapshot {
				f := p.next(2 * time.Second)
				if f["type"] != "snapshot" || seqOf(f) != last+5 || f["epoch"] != epoch {
					t.Fatalf("want snapshot at seq %d epoch %s, got %v", last+5, epoch, f)
				}
			} else {
				for i := range tc.wantReplay {
					f := p.next(2 * time.Second)
					if want := since + int64(i) + 1; seqOf(f) != want || f["type"] != desk.EventCallRinging {
						t.Fatalf("replay frame %d: got %v, want seq %d", i, f, want)
					}
					if want := fmt.Sprint("missed", i); callID(f) != want {
						t.Fatalf("replay frame %d is call %s, want %s", i, callID(f), want)
					}
				}
			}
			p.none(150 * time.Millisecond)
			// Live delivery goes on right after, with the next seq.
			n.hub.Publish(desk.Event{Type: "ping.test", Operators: []string{opA.Login}})
			f := p.next(2 * time.Second)
			if f["type"] != "ping.test" {
				t.Fatalf("live frame after resume: %v", f)
			}
			// Set up the next case the same way: 5 frames missed after last.
			last = seqOf(f)
			p.ws.Close()
			for i := range 5 {
				n.hub.Publish(ringing(opA.Login, fmt.Sprint("missed", i)))
			}
			waitSeq(t, rdb, prefix, hub.OperatorChannel(opA.Login), last+5)
		})
	}
}

// waitSeq waits until the channel's seq in Redis reaches want.
func waitSeq(t *testing.T, rdb redis.UniversalClient, prefix, ch string, want int64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		n, _ := rdb.HGet(context.Background(), prefix+"{hub}:"+ch+":meta", "seq").Int64()
		if n >= want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("channel %s did not reach seq %d", ch, want)
}

// TestResumeUnderLoad reconnects pages while events keep coming and checks that
// every page sees every seq exactly once: the switch from replay to live delivery
// leaves no gap and no duplicate.
func TestResumeUnderLoad(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	n := startNode(t, rdb, prefix)
	const total = 300
	p := n.open(t, opA, -1, "")
	snap := p.next(2 * time.Second)
	epoch, last := snap["epoch"].(string), seqOf(snap)

	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range total {
			n.hub.Publish(ringing(opA.Login, fmt.Sprint("load", i)))
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	})
	seen := 0
	for reconnects := 0; seen < total; reconnects++ {
		// Read a few frames, drop the connection, resume from the last seq seen.
		for k := 0; k < 20 && seen < total; k++ {
			f := p.next(3 * time.Second)
			if f["type"] == "snapshot" {
				t.Fatalf("resume fell back to a snapshot after %d frames", seen)
			}
			if s := seqOf(f); s != last+1 {
				t.Fatalf("after %d reconnects: seq %d follows %d (missed or duplicated)", reconnects, s, last)
			}
			last++
			seen++
		}
		p.ws.Close()
		p = n.open(t, opA, last, epoch)
	}
	wg.Wait()
	p.none(150 * time.Millisecond)
}

func TestTwoNodes(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	a := startNode(t, rdb, prefix, hub.WithNode("a"))
	b := startNode(t, rdb, prefix, hub.WithNode("b"))
	pa := a.open(t, opA, -1, "")
	ps := b.open(t, sup, -1, "")
	pa.next(2 * time.Second)
	ps.next(2 * time.Second)

	b.hub.Publish(ringing(opA.Login, "from-b"))
	if f := pa.next(2 * time.Second); callID(f) != "from-b" {
		t.Fatalf("page on node a got %v", f)
	}
	a.hub.Publish(ringing(opA.Login, "from-a"))
	for _, want := range []string{"from-b", "from-a"} {
		if f := ps.next(2 * time.Second); callID(f) != want {
			t.Fatalf("supervisor on node b got %v, want %s", f, want)
		}
	}
}

func TestRedisDownDeliversLocally(t *testing.T) {
	port := redistest.FreePort(t) // nothing listens there
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	n := startNode(t, rdb, redistest.Prefix())
	p := n.open(t, opA, -1, "")
	snap := p.next(3 * time.Second)
	if snap["type"] != "snapshot" || !strings.HasPrefix(snap["epoch"].(string), "local-") {
		t.Fatalf("want a snapshot on the local epoch, got %v", snap)
	}
	start := time.Now()
	n.hub.Publish(ringing(opA.Login, "outage"))
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Fatalf("Publish blocked for %v", took)
	}
	f := p.next(3 * time.Second)
	if callID(f) != "outage" || seqOf(f) != seqOf(snap)+1 {
		t.Fatalf("local delivery: got %v", f)
	}
	n.hub.Publish(ringing(opA.Login, "outage2"))
	if f := p.next(3 * time.Second); callID(f) != "outage2" || seqOf(f) != seqOf(snap)+2 {
		t.Fatalf("second local delivery: got %v", f)
	}
}

// TestRedisComesBack: frames delivered locally during an outage, then Redis
// returns (empty, as after a restart without persistence) and the page is resynced
// from a snapshot on the new epoch before it gets the next frame.
func TestRedisComesBack(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	n := startNode(t, rdb, redistest.Prefix())
	p := n.open(t, opA, -1, "")
	first := p.next(2 * time.Second)
	redisEpoch := first["epoch"].(string)

	srv.Stop()
	n.hub.Publish(ringing(opA.Login, "during"))
	f := p.next(3 * time.Second)
	// The page is on the Redis epoch, the frame on the local one: it is resynced first.
	if f["type"] != "snapshot" || !strings.HasPrefix(f["epoch"].(string), "local-") {
		t.Fatalf("want a snapshot on the local epoch, got %v", f)
	}
	if f := p.next(2 * time.Second); callID(f) != "during" {
		t.Fatalf("want the pop during the outage, got %v", f)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// The resubscription asks every page to check the head: the epoch differs, so
	// the page gets a snapshot on the (new) Redis epoch.
	f = p.next(10 * time.Second)
	if f["type"] != "snapshot" || strings.HasPrefix(f["epoch"].(string), "local-") || f["epoch"] == redisEpoch {
		t.Fatalf("want a snapshot on a fresh Redis epoch, got %v", f)
	}
	newEpoch := f["epoch"].(string)
	time.Sleep(1100 * time.Millisecond) // let the publish breaker close
	n.hub.Publish(ringing(opA.Login, "after"))
	f = p.next(3 * time.Second)
	if callID(f) != "after" {
		t.Fatalf("after recovery: got %v", f)
	}
	p.ws.Close()
	// A page resuming on the new epoch is replayed from Redis again.
	p2 := n.open(t, opA, seqOf(f)-1, newEpoch)
	if f2 := p2.next(2 * time.Second); callID(f2) != "after" {
		t.Fatalf("replay after recovery: got %v", f2)
	}
}

func TestClientFrames(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	n := startNode(t, rdb, prefix)
	p := n.open(t, opA, -1, "")
	p.next(2 * time.Second)
	cases := []struct {
		name    string
		send    string
		wantErr string // "" means no reply
	}{
		{"bad json", `{"type":`, "bad json"},
		{"unknown type ignored", `{"type":"hello"}`, ""},
		{"presence without a store", `{"type":"presence","away":true}`, "presence: not available"},
		{"presence without away", `{"type":"presence"}`, "presence: away is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			if err := p.ws.WriteMessage(websocket.TextMessage, []byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			if tc.wantErr == "" {
				p.none(150 * time.Millisecond)
				return
			}
			f := p.next(2 * time.Second)
			if f["type"] != "error" || !strings.Contains(fmt.Sprint(f["error"]), tc.wantErr) {
				t.Fatalf("got %v, want an error frame with %q", f, tc.wantErr)
			}
		})
	}
	// The connection survived all of that.
	p.t = t
	n.hub.Publish(ringing(opA.Login, "still-here"))
	if f := p.next(2 * time.Second); callID(f) != "still-here" {
		t.Fatalf("after client errors: %v", f)
	}
}

// TestSlowPageDropped: a page that does not read is dropped without holding back
// a page that does.
func TestSlowPageDropped(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	n := startNode(t, rdb, prefix, hub.WithQueues(4096, 8))
	fast := n.open(t, sup, -1, "")
	fast.next(2 * time.Second)

	// The slow page reads its snapshot and then never again.
	q := url.Values{"as": {opA.Login}}
	slow, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.srv.URL, "http")+"/ws?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.ReadMessage()

	big := strings.Repeat("x", 64<<10)
	const total = 200
	// Publish in small batches that the fast page keeps up with, so that only the
	// page that does not read can fill its queue (its socket buffers fill first).
	const batch = 4
	for i := 0; i < total; i += batch {
		for j := i; j < i+batch; j++ {
			n.hub.Publish(desk.Event{Type: "bulk", Operators: []string{opA.Login}, Payload: map[string]any{"i": j, "pad": big}})
		}
		for j := i; j < i+batch; j++ {
			f := fast.next(5 * time.Second)
			if f["i"] != float64(j) {
				t.Fatalf("fast page frame %d: got i=%v", j, f["i"])
			}
		}
	}
	// The slow page's connection has been closed by the hub.
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := slow.ReadMessage(); err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatalf("slow page was not dropped")
			}
			break
		}
	}
}

func TestPayloadMustBeObject(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	n := startNode(t, rdb, prefix)
	p := n.open(t, sup, -1, "")
	snap := p.next(2 * time.Second)
	n.hub.Publish(desk.Event{Type: "bad", Payload: []int{1, 2}})
	n.hub.Publish(desk.Event{Type: "good", Payload: nil})
	f := p.next(2 * time.Second)
	if f["type"] != "good" || seqOf(f) != seqOf(snap)+1 {
		t.Fatalf("want only the good event, next seq; got %v", f)
	}
}

// TestBurstPublishedInOrder: a burst of events goes to Redis in pipelined batches;
// on a fresh Redis the script is not loaded yet, so the first batch fails with
// NOSCRIPT and is published again one by one. A page must get every event once,
// in order, with consecutive seqs of the Redis epoch.
func TestBurstPublishedInOrder(t *testing.T) {
	srv := redistest.StartServer(t) // fresh: no script cached
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	n := startNode(t, rdb, redistest.Prefix())
	p := n.open(t, opA, -1, "")
	last := seqOf(p.next(2 * time.Second))
	const total = 500
	for i := range total {
		n.hub.Publish(ringing(opA.Login, fmt.Sprint("burst", i)))
	}
	for i := range total {
		f := p.next(5 * time.Second)
		if got, want := callID(f), fmt.Sprint("burst", i); got != want {
			t.Fatalf("frame %d is call %q, want %q", i, got, want)
		}
		if s := seqOf(f); s != last+1 {
			t.Fatalf("frame %d: seq %d follows %d", i, s, last)
		}
		last++
	}
	p.none(150 * time.Millisecond)
}
