package redisstore_test

import (
	"context"
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
