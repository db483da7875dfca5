package hub

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redistest"
)

// benchRedis returns a client of the shared test Redis with a prefix of its own
// (its keys, and only those, are deleted at cleanup), or skips the benchmark when
// no Redis answers: unlike the tests, a benchmark proves nothing by failing.
func benchRedis(b *testing.B) (*redis.Client, string) {
	b.Helper()
	addr := os.Getenv(redistest.EnvAddr)
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	probe := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := probe.Ping(ctx).Err()
	cancel()
	probe.Close()
	if err != nil {
		b.Skipf("no Redis at %s (%v); set %s", addr, err, redistest.EnvAddr)
	}
	return redistest.Client(b)
}

func benchLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// redisLog is a go-redis logger on w, like its default one on stderr.
type redisLog struct{ l *log.Logger }

func (r redisLog) Printf(_ context.Context, format string, v ...any) {
	r.l.Output(2, fmt.Sprintf(format, v...))
}

// quietRedisLog silences go-redis's own (global) logger for the rest of b: every
// page of a hub without Redis fails to dial it once, and its complaints would cut
// the benchmark's result lines. The default logger is put back at cleanup.
func quietRedisLog(b *testing.B) {
	redis.SetLogger(redisLog{log.New(io.Discard, "", 0)})
	b.Cleanup(func() { redis.SetLogger(redisLog{log.New(os.Stderr, "redis: ", log.LstdFlags|log.Lshortfile)}) })
}

// benchEvent is a pop for one operator: two channels (op:anna and sup), with the
// payload of a real call.ringing.
func benchEvent() desk.Event {
	return desk.Event{Type: desk.EventCallRinging, Operators: []string{"anna"}, Payload: benchPop()}
}

// BenchmarkPublish is the Redis side of one event: encode the frame once and run
// the publish script (seq, stream append, wake-up) for its two channels, in one
// round trip. No page is connected.
func BenchmarkPublish(b *testing.B) {
	rdb, prefix := benchRedis(b)
	h := New(rdb, WithPrefix(prefix), WithLogger(benchLogger()))
	ev := benchEvent()
	ctx := context.Background()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		h.publish(ctx, ev, time.Now())
		n++
	}
	b.StopTimer()
	if h.breakerUntil.Load() != 0 {
		b.Fatal("a publish fell back to local delivery")
	}
	seq, err := rdb.HGet(ctx, h.metaKey(ChannelSupervisors), "seq").Int()
	if err != nil || seq != n {
		b.Fatalf("sup seq %d (%v), want %d", seq, err, n)
	}
}

// BenchmarkFanout measures one event from Publish to its delivery on every one of
// N pages (real websockets over loopback, all on the supervisors' channel): ns/op
// is the time until the last page has read the frame. The pages' reading runs in
// the same process, so ns/op and allocs/op include the client side too: about one
// allocation per page is gorilla's NextReader on the client; the hub allocates per
// event (encoding, wake-up), not per page.
//
// "local" is the hub's own fan-out (Redis unreachable, local epoch); "redis" adds
// the publish script and the pub/sub wake-up on the way.
func BenchmarkFanout(b *testing.B) {
	for _, path := range []string{"local", "redis"} {
		for _, n := range []int{100, 2000} {
			b.Run(fmt.Sprintf("path=%s/pages=%d", path, n), func(b *testing.B) {
				var rdb redis.UniversalClient
				prefix := redistest.Prefix()
				if path == "redis" {
					rdb, prefix = benchRedis(b)
				} else {
					quietRedisLog(b)
					down := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(b)),
						MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
					b.Cleanup(func() { down.Close() })
					rdb = down
				}
				benchFanout(b, rdb, prefix, n)
			})
		}
	}
}

func benchFanout(b *testing.B, rdb redis.UniversalClient, prefix string, pages int) {
	h := New(rdb, WithPrefix(prefix), WithLogger(benchLogger()), WithQueues(4096, 256))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { h.Run(ctx); close(stopped) }()
	user := &desk.User{Login: "sveta", Name: "Sveta", Role: desk.RoleSupervisor}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeWS(w, r, user)
	}))
	b.Cleanup(func() {
		cancel()
		<-stopped
		srv.Close()
	})

	// Each page counts the frames it reads down; the one that reaches zero says so.
	var remaining atomic.Int64
	done := make(chan struct{}, 1)
	remaining.Store(int64(pages))
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	for range pages {
		ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
		if err != nil {
			b.Fatalf("dial: %v", err)
		}
		b.Cleanup(func() { ws.Close() })
		go func() {
			for {
				_, r, err := ws.NextReader()
				if err != nil {
					return
				}
				io.Copy(io.Discard, r)
				if remaining.Add(-1) == 0 {
					done <- struct{}{}
				}
			}
		}()
	}
	wait := func(what string) {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Fatalf("%s: %d of %d pages still waiting", what, remaining.Load(), pages)
		}
	}
	wait("snapshots") // every page is registered and has its first frame

	ev := benchEvent()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		remaining.Store(int64(pages))
		h.Publish(ev)
		wait("fan-out")
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*pages), "ns/page")
}
