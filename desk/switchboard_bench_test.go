package desk_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
	"github.com/redis/go-redis/v9"
)

// nopPublisher drops events: the benchmark measures the decision, not the hub.
type nopPublisher struct{}

func (nopPublisher) Publish(desk.Event) {}

// benchDesk is a switchboard on the real Redis under a private prefix, with ops
// registered operators with open pages and one contact owning caller.
func benchDesk(b *testing.B, ops int, caller string) (*redisstore.Store, *desk.Switchboard) {
	b.Helper()
	ctx := context.Background()
	prefix := redistest.Prefix()
	admin := redis.NewClient(&redis.Options{Addr: redistest.Addr(b)})
	b.Cleanup(func() { _ = redistest.DeletePrefix(context.Background(), admin, prefix); _ = admin.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(b)})
	b.Cleanup(func() { _ = rdb.Close() })
	st := redisstore.New(rdb, redisstore.WithPrefix(prefix))
	b.Cleanup(func() { _ = st.Close() })
	for i := range ops {
		login := fmt.Sprintf("op%02d", i)
		if err := st.CreateUser(ctx, &desk.User{Login: login, Name: login, Role: desk.RoleOperator}); err != nil {
			b.Fatal(err)
		}
		bd := desk.Binding{Login: login, Contact: "sip:" + login + "@127.0.0.1:5070", Source: "127.0.0.1:5070", Transport: "udp", Expires: time.Now().Add(time.Hour)}
		if err := st.PutBindings(ctx, login, []desk.Binding{bd}); err != nil {
			b.Fatal(err)
		}
		_ = st.PageOpened(ctx, login, "node-bench")
		_ = st.Release(ctx, login, "warmup")
	}
	if err := st.CreateContact(ctx, &desk.Contact{Name: "Ivan Petrov", Company: "Acme", Phones: []string{caller}}); err != nil {
		b.Fatal(err)
	}
	sb := desk.NewSwitchboard(st, nopPublisher{}, desk.WithLines(testLines, "general"), desk.WithScripts(testScripts),
		desk.WithRegion("RU"), desk.WithRingTimeout(15*time.Second), desk.WithRefresh(-1))
	b.Cleanup(sb.Close)
	return st, sb
}

// BenchmarkRouteDecision: one call in and given up: Route (normalise the caller,
// look up his contact, read operators, pick, claim, pop) then Missed, which
// releases the operator asynchronously. With 32 operators a release is done long
// before the operator comes round again; "rejected/op" shows any 480 (should be 0).
func BenchmarkRouteDecision(b *testing.B) {
	const caller = "+79160000001"
	_, sb := benchDesk(b, 32, caller)
	ctx := context.Background()
	rejected := 0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("bench-%d@127.0.0.1", i)
		r := sb.Route(ctx, desk.Incoming{SIPCallID: id, Caller: "8 (916) 000-00-01", Dialled: "sales", Received: time.Now()})
		if r.Status != 0 {
			rejected++
			continue
		}
		sb.Missed(id, 487)
	}
	b.ReportMetric(float64(rejected)/float64(b.N), "rejected/op")
}

// BenchmarkContactLookup is the lookup half of a route: the contact by E.164 on
// the real Redis (two round trips: phone index, then the contact).
func BenchmarkContactLookup(b *testing.B) {
	const caller = "+79160000001"
	st, _ := benchDesk(b, 1, caller)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.ContactByPhone(ctx, caller); err != nil {
			b.Fatal(err)
		}
	}
}
