package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/redis/go-redis/v9"
)

// userJSON is a user as the store keeps it in {users}:all.
func userJSON(t *testing.T, login, name string, role desk.Role) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"login": login, "name": name, "role": role, "created": time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// opNames is "login=name" of each operator, in order.
func opNames(ops []*desk.Operator) []string {
	out := []string{}
	for _, o := range ops {
		out = append(out, o.Login+"="+o.Name)
	}
	return out
}

// mustOperators reads the operators and checks they equal what a fresh Store (whose
// first read decodes the users hash: the uncached path) reads from the same Redis.
func mustOperators(t *testing.T, b backend, s *redisstore.Store, what string) []*desk.Operator {
	t.Helper()
	ctx := context.Background()
	got, err := s.Operators(ctx)
	if err != nil {
		t.Fatalf("%s: Operators: %v", what, err)
	}
	fresh := redisstore.New(b.client(), redisstore.WithPrefix(b.prefix))
	defer fresh.Close()
	want, err := fresh.Operators(ctx)
	if err != nil {
		t.Fatalf("%s: uncached Operators: %v", what, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: cached Operators differ from uncached:\n got %s\nwant %s", what, fmtOps(got), fmtOps(want))
	}
	// Operator, the one-login read of the REGISTER path, must agree with both.
	for _, o := range want {
		one, err := s.Operator(ctx, o.Login)
		if err != nil {
			t.Fatalf("%s: Operator(%s): %v", what, o.Login, err)
		}
		if !reflect.DeepEqual(one, o) {
			t.Errorf("%s: Operator(%s) = %+v, Operators has %+v", what, o.Login, *one, *o)
		}
	}
	for _, login := range []string{"no-such-login", "sup"} {
		if slices.ContainsFunc(want, func(o *desk.Operator) bool { return o.Login == login }) {
			continue // the supervisor is promoted in some cases
		}
		if _, err := s.Operator(ctx, login); !errors.Is(err, desk.ErrNotFound) {
			t.Errorf("%s: Operator(%s): %v, want ErrNotFound", what, login, err)
		}
	}
	return got
}

func fmtOps(ops []*desk.Operator) string {
	s := ""
	for _, o := range ops {
		s += fmt.Sprintf("%+v ", *o)
	}
	return s
}

// TestOperatorsUserChanges: Operators keeps the decoded users between calls, yet
// sees every change of the users, made through this Store, another node's Store,
// or by hand in Redis, on the next call.
func TestOperatorsUserChanges(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		rdb := b.client()
		other := redisstore.New(b.client(), redisstore.WithPrefix(b.prefix)) // another desk node
		t.Cleanup(func() { _ = other.Close() })
		kAll, kVer := b.prefix+"{users}:all", b.prefix+"{users}:version"
		mustOp(t, s, "alice", "bob")
		if err := s.CreateUser(ctx, &desk.User{Login: "sup", Name: "Sup", Role: desk.RoleSupervisor}); err != nil {
			t.Fatal(err)
		}
		// A writer of the users hash that follows the rule: the version changes in
		// the same transaction.
		versioned := func(f func(p redis.Pipeliner)) error {
			_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				f(p)
				p.Set(ctx, kVer, fmt.Sprintf("v%d", time.Now().UnixNano()), 0)
				return nil
			})
			return err
		}
		steps := []struct {
			name string
			do   func() error
			want []string // operators seen by both nodes afterwards
		}{
			{"start", func() error { return nil }, []string{"alice=Op alice", "bob=Op bob"}},
			{"created here", func() error {
				return s.CreateUser(ctx, &desk.User{Login: "carol", Name: "Carol", Role: desk.RoleOperator})
			}, []string{"alice=Op alice", "bob=Op bob", "carol=Carol"}},
			{"created on another node", func() error {
				return other.CreateUser(ctx, &desk.User{Login: "dave", Name: "Dave", Role: desk.RoleOperator})
			}, []string{"alice=Op alice", "bob=Op bob", "carol=Carol", "dave=Dave"}},
			{"login taken changes nothing", func() error {
				if err := other.CreateUser(ctx, &desk.User{Login: "dave", Name: "Imposter", Role: desk.RoleOperator}); err == nil {
					return fmt.Errorf("CreateUser of a taken login succeeded")
				}
				return nil
			}, []string{"alice=Op alice", "bob=Op bob", "carol=Carol", "dave=Dave"}},
			{"supervisor created", func() error {
				return other.CreateUser(ctx, &desk.User{Login: "sup2", Name: "Sup 2", Role: desk.RoleSupervisor})
			}, []string{"alice=Op alice", "bob=Op bob", "carol=Carol", "dave=Dave"}},
			{"role change", func() error {
				return versioned(func(p redis.Pipeliner) { p.HSet(ctx, kAll, "bob", userJSON(t, "bob", "Op bob", desk.RoleSupervisor)) })
			}, []string{"alice=Op alice", "carol=Carol", "dave=Dave"}},
			{"promoted to operator", func() error {
				return versioned(func(p redis.Pipeliner) { p.HSet(ctx, kAll, "sup", userJSON(t, "sup", "Sup", desk.RoleOperator)) })
			}, []string{"alice=Op alice", "carol=Carol", "dave=Dave", "sup=Sup"}},
			{"deleted", func() error {
				return versioned(func(p redis.Pipeliner) { p.HDel(ctx, kAll, "carol") })
			}, []string{"alice=Op alice", "dave=Dave", "sup=Sup"}},
			{"deleted by hand, version untouched", func() error {
				return rdb.HDel(ctx, kAll, "dave").Err()
			}, []string{"alice=Op alice", "sup=Sup"}},
			{"added by an older desk, version untouched", func() error {
				return rdb.HSetNX(ctx, kAll, "erin", userJSON(t, "erin", "Erin", desk.RoleOperator)).Err()
			}, []string{"alice=Op alice", "erin=Erin", "sup=Sup"}},
			{"renamed by hand, version deleted", func() error {
				_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.HSet(ctx, kAll, "alice", userJSON(t, "alice", "Alice", desk.RoleOperator))
					p.Del(ctx, kVer)
					return nil
				})
				return err
			}, []string{"alice=Alice", "erin=Erin", "sup=Sup"}},
			{"created after the version was re-created", func() error {
				return other.CreateUser(ctx, &desk.User{Login: "fred", Name: "Fred", Role: desk.RoleOperator})
			}, []string{"alice=Alice", "erin=Erin", "fred=Fred", "sup=Sup"}},
		}
		for _, st := range steps {
			// Both nodes have read (and cached) the users before the change.
			if _, err := s.Operators(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Operators(ctx); err != nil {
				t.Fatal(err)
			}
			if err := st.do(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			for i, n := range []*redisstore.Store{s, other} {
				for call := range 2 { // the call that reloads and the one served from the cache
					what := fmt.Sprintf("%s (node %d, call %d)", st.name, i+1, call+1)
					if got := opNames(mustOperators(t, b, n, what)); !slices.Equal(got, st.want) {
						t.Errorf("%s: operators %v; want %v", what, got, st.want)
					}
				}
			}
		}
	})
}

// TestOperatorsCacheIsUsed: between writes the users are not decoded again, so an
// edit by hand that breaks the rule (changing the hash but not the version) shows
// only once the version changes. This is what makes the rule necessary.
func TestOperatorsCacheIsUsed(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		rdb := b.client()
		kAll, kVer := b.prefix+"{users}:all", b.prefix+"{users}:version"
		mustOp(t, s, "alice")
		names := func() []string {
			ops, err := s.Operators(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return opNames(ops)
		}
		if got := names(); !slices.Equal(got, []string{"alice=Op alice"}) {
			t.Fatalf("operators %v", got)
		}
		if err := rdb.HSet(ctx, kAll, "alice", userJSON(t, "alice", "Renamed", desk.RoleOperator)).Err(); err != nil {
			t.Fatal(err)
		}
		if got := names(); !slices.Equal(got, []string{"alice=Op alice"}) {
			t.Errorf("operators %v; want the cached list while the version is unchanged", got)
		}
		if err := rdb.Del(ctx, kVer).Err(); err != nil {
			t.Fatal(err)
		}
		if got := names(); !slices.Equal(got, []string{"alice=Renamed"}) {
			t.Errorf("operators %v after the version was deleted; want the new name", got)
		}
	})
}

// TestOperatorsLegacyUsers: users written before the version key existed are read,
// the version is created, and a later CreateUser is still seen.
func TestOperatorsLegacyUsers(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		rdb := b.client()
		kAll, kVer := b.prefix+"{users}:all", b.prefix+"{users}:version"
		if err := rdb.HSet(ctx, kAll,
			"alice", userJSON(t, "alice", "Alice", desk.RoleOperator),
			"adm", userJSON(t, "adm", "Admin", desk.RoleAdmin),
			"broken", "{not json").Err(); err != nil {
			t.Fatal(err)
		}
		for call := range 2 {
			if got := opNames(mustOperators(t, b, s, fmt.Sprintf("legacy call %d", call+1))); !slices.Equal(got, []string{"alice=Alice"}) {
				t.Errorf("call %d: operators %v; want alice", call+1, got)
			}
		}
		if n, err := rdb.Exists(ctx, kVer).Result(); err != nil || n != 1 {
			t.Errorf("version key exists = %d, %v; want created by the first read", n, err)
		}
		if err := s.CreateUser(ctx, &desk.User{Login: "bob", Name: "Bob", Role: desk.RoleOperator}); err != nil {
			t.Fatal(err)
		}
		if got := opNames(mustOperators(t, b, s, "after CreateUser")); !slices.Equal(got, []string{"alice=Alice", "bob=Bob"}) {
			t.Errorf("operators %v; want alice, bob", got)
		}
	})
}

// TestOperatorsBindingsChanges: Registered follows the bindings value and the clock,
// though a login's bindings are decoded only when their value changes.
func TestOperatorsBindingsChanges(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		rdb := b.client()
		mustOp(t, s, "alice")
		kBind := b.prefix + "{presence}:bindings:alice"
		bind := func(exp time.Time) string {
			raw, _ := json.Marshal([]desk.Binding{{Login: "alice", Contact: "sip:alice@10.0.0.1", Expires: exp}})
			return string(raw)
		}
		steps := []struct {
			name string
			do   func() error
			want bool
		}{
			{"none", func() error { return nil }, false},
			{"registered", func() error {
				return s.PutBindings(ctx, "alice", []desk.Binding{{Login: "alice", Contact: "sip:alice@10.0.0.1", Expires: time.Now().Add(time.Hour)}})
			}, true},
			{"value holds only an expired binding", func() error { return rdb.Set(ctx, kBind, bind(time.Now().Add(-time.Second)), 0).Err() }, false},
			{"value live again", func() error { return rdb.Set(ctx, kBind, bind(time.Now().Add(300*time.Millisecond)), 0).Err() }, true},
			{"same value, binding now past", func() error { time.Sleep(400 * time.Millisecond); return nil }, false},
			{"undecodable", func() error { return rdb.Set(ctx, kBind, "[{", 0).Err() }, false},
			{"unregistered", func() error { return s.PutBindings(ctx, "alice", nil) }, false},
		}
		for _, st := range steps {
			if err := st.do(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			for call := range 2 {
				ops := mustOperators(t, b, s, st.name)
				if len(ops) != 1 || ops[0].Registered != st.want {
					t.Errorf("%s, call %d: %s; want registered %v", st.name, call+1, fmtOps(ops), st.want)
				}
			}
		}
	})
}

// TestOperatorsConcurrentWithCreate: reads racing with writes on two nodes (run
// with -race); every user is seen once the writes are done.
func TestOperatorsConcurrentWithCreate(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		other := redisstore.New(b.client(), redisstore.WithPrefix(b.prefix))
		t.Cleanup(func() { _ = other.Close() })
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for _, n := range []*redisstore.Store{s, s, other} {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := n.Operators(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		for i := range 40 {
			n := []*redisstore.Store{s, other}[i%2]
			if err := n.CreateUser(ctx, &desk.User{Login: fmt.Sprintf("op%02d", i), Role: desk.RoleOperator}); err != nil {
				t.Fatal(err)
			}
		}
		close(stop)
		wg.Wait()
		for _, n := range []*redisstore.Store{s, other} {
			if ops := mustOperators(t, b, n, "after concurrent creates"); len(ops) != 40 {
				t.Errorf("operators %d; want 40", len(ops))
			}
		}
	})
}

// TestCreateUserChangesVersion: a user added changes {users}:version in the same
// step; a refused one does not.
func TestCreateUserChangesVersion(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		rdb := b.client()
		version := func() string {
			v, err := rdb.Get(ctx, b.prefix+"{users}:version").Result()
			if err != nil && err != redis.Nil {
				t.Fatal(err)
			}
			return v
		}
		tests := []struct {
			name    string
			u       *desk.User
			changes bool
		}{
			{"first user", &desk.User{Login: "alice", Role: desk.RoleOperator}, true},
			{"second user", &desk.User{Login: "adm", Role: desk.RoleAdmin}, true},
			{"taken login", &desk.User{Login: "alice", Role: desk.RoleSupervisor}, false},
			{"invalid", &desk.User{Login: "x", Role: "boss"}, false},
		}
		for _, tt := range tests {
			before := version()
			_ = s.CreateUser(ctx, tt.u)
			after := version()
			if changed := after != before; changed != tt.changes || after == "" && tt.changes {
				t.Errorf("%s: version %q -> %q; want changed %v", tt.name, before, after, tt.changes)
			}
		}
	})
}
