package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
	"github.com/redis/go-redis/v9"
)

// backend is one Redis the suite runs against.
type backend struct {
	name string
	// client returns a new client on the same Redis, so two clients act as two nodes.
	client func() redis.UniversalClient
	prefix string
	// advance lets Redis TTLs elapse by d: real Redis sleeps, miniredis fast-forwards.
	advance func(d time.Duration)
}

func randomPrefix() string { return redistest.Prefix() }

// backends returns the real Redis and a miniredis, each fresh for t.
func backends(t *testing.T) []backend {
	t.Helper()
	prefix := randomPrefix()
	realRedis := redistest.Addr(t) // the tests use their own prefix there and delete only their keys
	real := backend{
		name:    "redis",
		prefix:  prefix,
		advance: time.Sleep,
		client: func() redis.UniversalClient {
			c := redis.NewClient(&redis.Options{Addr: realRedis})
			t.Cleanup(func() { _ = c.Close() })
			return c
		},
	}
	admin := redis.NewClient(&redis.Options{Addr: realRedis})
	t.Cleanup(func() {
		deleteUnder(t, admin, prefix)
		_ = admin.Close()
	})

	m := miniredis.RunT(t)
	mini := backend{
		name:    "miniredis",
		prefix:  randomPrefix(),
		advance: func(d time.Duration) { time.Sleep(d); m.FastForward(d) },
		client: func() redis.UniversalClient {
			c := redis.NewClient(&redis.Options{Addr: m.Addr()})
			t.Cleanup(func() { _ = c.Close() })
			return c
		},
	}
	return []backend{real, mini}
}

// deleteUnder removes the keys under prefix, and nothing else.
func deleteUnder(t *testing.T, c *redis.Client, prefix string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("scan %s*: %v", prefix, err)
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := c.Del(ctx, keys[:n]...).Err(); err != nil {
			t.Errorf("delete test keys: %v", err)
		}
		keys = keys[n:]
	}
}

// forEach runs f once per backend with a Store on it.
func forEach(t *testing.T, f func(t *testing.T, b backend, s *redisstore.Store)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := redisstore.New(b.client(), redisstore.WithPrefix(b.prefix))
			t.Cleanup(func() { _ = s.Close() })
			f(t, b, s)
		})
	}
}
