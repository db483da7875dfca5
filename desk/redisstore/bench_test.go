package redisstore_test

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

// benchStore is a Store on the real Redis under a private prefix.
func benchStore(b *testing.B) *redisstore.Store {
	b.Helper()
	prefix := redistest.Prefix()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(b)})
	b.Cleanup(func() { _ = redistest.DeletePrefix(context.Background(), rdb, prefix); _ = rdb.Close() })
	st := redisstore.New(rdb, redisstore.WithPrefix(prefix))
	b.Cleanup(func() { _ = st.Close() })
	return st
}

// BenchmarkContactByPhone: the caller lookup of every route.
func BenchmarkContactByPhone(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	if err := st.CreateContact(ctx, &desk.Contact{Name: "Ivan Petrov", Company: "Acme", Phones: []string{"+79160000001"}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.ContactByPhone(ctx, "+79160000001"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkContactByPhoneMiss: an unknown caller (the common case on a campaign).
func BenchmarkContactByPhoneMiss(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.ContactByPhone(ctx, "+79990000000"); err == nil {
			b.Fatal("found a contact that does not exist")
		}
	}
}

// BenchmarkClaimRelease: reserve an operator for a call and free him again.
func BenchmarkClaimRelease(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	if err := st.CreateUser(ctx, &desk.User{Login: "anna", Name: "Anna", Role: desk.RoleOperator}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := st.Claim(ctx, "anna", "call-1", desk.StatusRinging, time.Minute); err != nil {
			b.Fatal(err)
		}
		if err := st.Release(ctx, "anna", "call-1"); err != nil {
			b.Fatal(err)
		}
	}
}

// seedOperators fills st like the load harness: n operators and a few supervisors
// and admins; every other operator registered, one in ten on a call, one in twenty
// away, a third with a desk page open.
func seedOperators(b *testing.B, st *redisstore.Store, n int) {
	b.Helper()
	ctx := context.Background()
	for i := range 50 {
		role := desk.RoleSupervisor
		if i%5 == 0 {
			role = desk.RoleAdmin
		}
		login := fmt.Sprintf("sup%03d", i)
		if err := st.CreateUser(ctx, &desk.User{Login: login, Name: "Supervisor " + login, Role: role,
			PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}); err != nil {
			b.Fatal(err)
		}
	}
	exp := time.Now().Add(time.Hour)
	for i := range n {
		login := fmt.Sprintf("op%04d", i)
		if err := st.CreateUser(ctx, &desk.User{Login: login, Name: "Operator " + login, Role: desk.RoleOperator,
			PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
			SIPHA1:       "0123456789abcdef0123456789abcdef"}); err != nil {
			b.Fatal(err)
		}
		if i%2 == 0 {
			if err := st.PutBindings(ctx, login, []desk.Binding{{Login: login, Contact: "sip:" + login + "@10.0.0.1:5060",
				Source: "10.0.0.1:5060", Transport: "udp", Expires: exp, CallID: "reg-" + login, CSeq: 1, UserAgent: "bench"}}); err != nil {
				b.Fatal(err)
			}
		}
		if i%10 == 0 {
			if err := st.Claim(ctx, login, "call-"+login, desk.StatusTalking, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
		if i%20 == 5 {
			if err := st.SetAway(ctx, login, true); err != nil {
				b.Fatal(err)
			}
		}
		if i%3 == 0 {
			if err := st.PageOpened(ctx, login, "node-1"); err != nil {
				b.Fatal(err)
			}
		}
		if i%7 == 0 {
			if err := st.Release(ctx, login, "no-call"); err != nil { // marks him idle
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkOperators: the presence read of every routing decision, with 2,000
// operators (2,050 users).
func BenchmarkOperators(b *testing.B) {
	st := benchStore(b)
	seedOperators(b, st, 2000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ops, err := st.Operators(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(ops) != 2000 {
			b.Fatalf("Operators returned %d; want 2000", len(ops))
		}
	}
}
