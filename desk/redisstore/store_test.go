package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/redis/go-redis/v9"
)

func TestUsers(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		alice := &desk.User{Login: "alice", Name: "Alice", Role: desk.RoleOperator, PasswordHash: "$argon2id$x", SIPHA1: "abc"}
		if err := s.CreateUser(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if alice.Created.IsZero() {
			t.Error("Created not set")
		}
		tests := []struct {
			name string
			u    *desk.User
			want error
		}{
			{"taken login", &desk.User{Login: "alice", Role: desk.RoleAdmin}, desk.ErrExists},
			{"bad role", &desk.User{Login: "bob", Role: "boss"}, desk.ErrInvalid},
			{"no login", &desk.User{Role: desk.RoleAdmin}, desk.ErrInvalid},
			{"second user", &desk.User{Login: "adm", Name: "Admin", Role: desk.RoleAdmin}, nil},
		}
		for _, tt := range tests {
			if err := s.CreateUser(ctx, tt.u); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("%s: CreateUser = %v; want %v", tt.name, err, tt.want)
			}
		}
		got, err := s.User(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if got.PasswordHash != "$argon2id$x" || got.SIPHA1 != "abc" || got.Name != "Alice" || got.Role != desk.RoleOperator {
			t.Errorf("User = %+v; credentials or fields lost", got)
		}
		if _, err := s.User(ctx, "nobody"); !errors.Is(err, desk.ErrNotFound) {
			t.Errorf("User(nobody) = %v; want ErrNotFound", err)
		}
		all, err := s.Users(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 || all[0].Login != "adm" || all[1].Login != "alice" {
			t.Errorf("Users = %v; want adm, alice", all)
		}
	})
}

func TestSessions(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		tok, err := s.CreateSession(ctx, "alice", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != 43 { // 32 bytes, base64url without padding
			t.Errorf("token %q has length %d; want 43", tok, len(tok))
		}
		tok2, _ := s.CreateSession(ctx, "alice", time.Hour)
		if tok == tok2 {
			t.Error("two sessions got one token")
		}
		if login, err := s.Session(ctx, tok); err != nil || login != "alice" {
			t.Errorf("Session = %q, %v; want alice", login, err)
		}
		if err := s.DeleteSession(ctx, tok); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{tok, "", "forged"} {
			if _, err := s.Session(ctx, bad); !errors.Is(err, desk.ErrNotFound) {
				t.Errorf("Session(%q) = %v; want ErrNotFound", bad, err)
			}
		}
		short, _ := s.CreateSession(ctx, "bob", 100*time.Millisecond)
		b.advance(200 * time.Millisecond)
		if _, err := s.Session(ctx, short); !errors.Is(err, desk.ErrNotFound) {
			t.Errorf("expired session = %v; want ErrNotFound", err)
		}
	})
}

func TestContacts(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		ivan := &desk.Contact{Name: "Ivan", Company: "Acme", Phones: []string{"+79160000001", "+74951234567", "+79160000001"}, Manager: "alice"}
		if err := s.CreateContact(ctx, ivan); err != nil {
			t.Fatal(err)
		}
		if len(ivan.ID) != 32 || ivan.Created.IsZero() || ivan.Updated.IsZero() {
			t.Errorf("contact = %+v; want a 32-hex ID and times", ivan)
		}
		if len(ivan.Phones) != 2 {
			t.Errorf("phones %v; want duplicates dropped", ivan.Phones)
		}
		tests := []struct {
			name string
			c    *desk.Contact
			want error
		}{
			{"phone of another contact", &desk.Contact{Name: "Petr", Phones: []string{"+79990000000", "+74951234567"}}, desk.ErrExists},
			{"not e164", &desk.Contact{Name: "Oleg", Phones: []string{"8 916 000 00 02"}}, desk.ErrInvalid},
			{"no phones", &desk.Contact{Name: "Anna"}, nil},
			{"own phone", &desk.Contact{Name: "Olga", Phones: []string{"+79160000009"}}, nil},
		}
		for _, tt := range tests {
			if err := s.CreateContact(ctx, tt.c); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("%s: CreateContact = %v; want %v", tt.name, err, tt.want)
			}
		}
		// The refused contact must not have claimed its other, free number.
		if _, err := s.ContactByPhone(ctx, "+79990000000"); !errors.Is(err, desk.ErrNotFound) {
			t.Errorf("phone of a refused contact is indexed: %v", err)
		}
		for _, p := range []string{"+79160000001", "+74951234567"} {
			got, err := s.ContactByPhone(ctx, p)
			if err != nil || got.ID != ivan.ID || got.Manager != "alice" || got.Company != "Acme" {
				t.Errorf("ContactByPhone(%s) = %+v, %v; want Ivan", p, got, err)
			}
		}
		if _, err := s.Contact(ctx, "nope"); !errors.Is(err, desk.ErrNotFound) {
			t.Errorf("Contact(nope) = %v; want ErrNotFound", err)
		}
	})
}

func TestBindings(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		now := time.Now()
		live := desk.Binding{Login: "alice", Contact: "sip:alice@127.0.0.1:5070", Source: "127.0.0.1:5070", Transport: "udp", Expires: now.Add(time.Hour)}
		dead := desk.Binding{Login: "alice", Contact: "sip:alice@127.0.0.1:5071", Expires: now.Add(-time.Second)}
		if err := s.PutBindings(ctx, "alice", []desk.Binding{live, dead}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Bindings(ctx, "alice")
		if err != nil || len(got) != 1 || got[0].Contact != live.Contact || got[0].Source != live.Source {
			t.Fatalf("Bindings = %+v, %v; want the live one only", got, err)
		}
		short := desk.Binding{Login: "bob", Contact: "sip:bob@127.0.0.1:5072", Expires: time.Now().Add(150 * time.Millisecond)}
		if err := s.PutBindings(ctx, "bob", []desk.Binding{short}); err != nil {
			t.Fatal(err)
		}
		if reg, _ := s.Registered(ctx); !slices.Equal(reg, []string{"alice", "bob"}) {
			t.Errorf("Registered = %v; want alice, bob", reg)
		}
		b.advance(300 * time.Millisecond)
		if got, err := s.Bindings(ctx, "bob"); err != nil || len(got) != 0 {
			t.Errorf("expired Bindings(bob) = %+v, %v; want none", got, err)
		}
		if err := s.PutBindings(ctx, "alice", nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Bindings(ctx, "alice"); len(got) != 0 {
			t.Errorf("after unregister Bindings = %+v", got)
		}
		if reg, err := s.Registered(ctx); err != nil || len(reg) != 0 {
			t.Errorf("Registered = %v, %v; want none", reg, err)
		}
	})
}

func TestClaim(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		mustOp(t, s, "alice")
		status := func() *desk.Operator {
			ops, err := s.Operators(ctx)
			if err != nil || len(ops) != 1 {
				t.Fatalf("Operators = %v, %v", ops, err)
			}
			return ops[0]
		}
		steps := []struct {
			name       string
			do         func() error
			want       error
			wantStatus desk.Status
			wantCall   string
		}{
			{"claim free", func() error { return s.Claim(ctx, "alice", "c1", desk.StatusRinging, time.Minute) }, nil, desk.StatusRinging, "c1"},
			{"other call", func() error { return s.Claim(ctx, "alice", "c2", desk.StatusRinging, time.Minute) }, desk.ErrClaimed, desk.StatusRinging, "c1"},
			{"same call again", func() error { return s.Claim(ctx, "alice", "c1", desk.StatusRinging, time.Minute) }, nil, desk.StatusRinging, "c1"},
			{"answered", func() error { return s.UpdateClaim(ctx, "alice", "c1", desk.StatusTalking, time.Hour) }, nil, desk.StatusTalking, "c1"},
			{"update by other", func() error { return s.UpdateClaim(ctx, "alice", "c2", desk.StatusTalking, time.Hour) }, desk.ErrClaimed, desk.StatusTalking, "c1"},
			{"release by other", func() error { return s.Release(ctx, "alice", "c2") }, nil, desk.StatusTalking, "c1"},
			{"release", func() error { return s.Release(ctx, "alice", "c1") }, nil, desk.StatusOffline, ""},
			{"update released", func() error { return s.UpdateClaim(ctx, "alice", "c1", desk.StatusTalking, time.Hour) }, desk.ErrNotFound, desk.StatusOffline, ""},
			{"bad call id", func() error { return s.Claim(ctx, "alice", "a|b", desk.StatusRinging, time.Minute) }, desk.ErrInvalid, desk.StatusOffline, ""},
			{"short claim", func() error { return s.Claim(ctx, "alice", "c3", desk.StatusRinging, 100*time.Millisecond) }, nil, desk.StatusRinging, "c3"},
			{"claim expired", func() error { b.advance(250 * time.Millisecond); return nil }, nil, desk.StatusOffline, ""},
			{"claim after expiry", func() error { return s.Claim(ctx, "alice", "c4", desk.StatusRinging, time.Minute) }, nil, desk.StatusRinging, "c4"},
		}
		before := time.Now().Add(-time.Second)
		for _, st := range steps {
			err := st.do()
			if !errors.Is(err, st.want) || (st.want == nil && err != nil) {
				t.Fatalf("%s: err = %v; want %v", st.name, err, st.want)
			}
			if op := status(); op.Status != st.wantStatus || op.CallID != st.wantCall {
				t.Fatalf("%s: status %s call %q; want %s %q", st.name, op.Status, op.CallID, st.wantStatus, st.wantCall)
			}
		}
		if idle := status().IdleSince; idle.Before(before) || idle.After(time.Now()) {
			t.Errorf("IdleSince = %v; want set by Release", idle)
		}
	})
}

func mustOp(t *testing.T, s *redisstore.Store, logins ...string) {
	t.Helper()
	for _, l := range logins {
		if err := s.CreateUser(context.Background(), &desk.User{Login: l, Name: "Op " + l, Role: desk.RoleOperator}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOperatorsStatus(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		reg := func(login string) {
			if err := s.PutBindings(ctx, login, []desk.Binding{{Login: login, Contact: "sip:" + login + "@127.0.0.1", Expires: time.Now().Add(time.Hour)}}); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			login string
			setup func(login string)
			want  desk.Operator
		}{
			{"offline", func(string) {}, desk.Operator{Status: desk.StatusOffline}},
			{"pageonly", func(l string) { _ = s.PageOpened(ctx, l, "n1") }, desk.Operator{Status: desk.StatusAvailable, PageOpen: true}},
			{"phoneonly", reg, desk.Operator{Status: desk.StatusAvailable, Registered: true}},
			{"both", func(l string) { reg(l); _ = s.PageOpened(ctx, l, "n1"); _ = s.PageOpened(ctx, l, "n2") }, desk.Operator{Status: desk.StatusAvailable, Registered: true, PageOpen: true}},
			{"closedall", func(l string) {
				_ = s.PageOpened(ctx, l, "n1")
				_ = s.PageClosed(ctx, l, "n1")
				_ = s.PageClosed(ctx, l, "n1")
			}, desk.Operator{Status: desk.StatusOffline}},
			{"away", func(l string) { reg(l); _ = s.SetAway(ctx, l, true) }, desk.Operator{Status: desk.StatusAway, Away: true, Registered: true}},
			{"back", func(l string) { reg(l); _ = s.SetAway(ctx, l, true); _ = s.SetAway(ctx, l, false) }, desk.Operator{Status: desk.StatusAvailable, Registered: true}},
			{"awayringing", func(l string) {
				reg(l)
				_ = s.SetAway(ctx, l, true)
				_ = s.Claim(ctx, l, "call-"+l, desk.StatusRinging, time.Minute)
			}, desk.Operator{Status: desk.StatusRinging, Away: true, Registered: true, CallID: "call-awayringing"}},
			{"talking", func(l string) {
				reg(l)
				_ = s.Claim(ctx, l, "call-"+l, desk.StatusRinging, time.Minute)
				_ = s.UpdateClaim(ctx, l, "call-"+l, desk.StatusTalking, time.Hour)
			}, desk.Operator{Status: desk.StatusTalking, Registered: true, CallID: "call-talking"}},
		}
		for _, tt := range tests {
			mustOp(t, s, tt.login)
			tt.setup(tt.login)
		}
		// A supervisor is not an operator.
		_ = s.CreateUser(ctx, &desk.User{Login: "sup", Role: desk.RoleSupervisor})
		ops, err := s.Operators(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ops) != len(tests) {
			t.Fatalf("Operators returned %d; want %d", len(ops), len(tests))
		}
		byLogin := map[string]*desk.Operator{}
		for _, o := range ops {
			byLogin[o.Login] = o
		}
		for _, tt := range tests {
			o := byLogin[tt.login]
			if o == nil {
				t.Errorf("%s missing", tt.login)
				continue
			}
			if o.Status != tt.want.Status || o.Away != tt.want.Away || o.PageOpen != tt.want.PageOpen ||
				o.Registered != tt.want.Registered || o.CallID != tt.want.CallID || o.Name != "Op "+tt.login {
				t.Errorf("%s = %+v; want %+v", tt.login, *o, tt.want)
			}
		}
	})
}

// A node that stops heartbeating (crashed) must not keep its operators' pages open.
func TestPagesOfDeadNodeExpire(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			opts := []redisstore.Option{redisstore.WithPrefix(b.prefix), redisstore.WithHeartbeat(20*time.Millisecond, 150*time.Millisecond)}
			n1 := redisstore.New(b.client(), opts...)
			n2 := redisstore.New(b.client(), opts...)
			defer n2.Close()
			mustOp(t, n1, "alice", "bob")
			if err := n1.PageOpened(ctx, "alice", "node1"); err != nil {
				t.Fatal(err)
			}
			if err := n2.PageOpened(ctx, "bob", "node2"); err != nil {
				t.Fatal(err)
			}
			pages := func() map[string]bool {
				ops, err := n2.Operators(ctx)
				if err != nil {
					t.Fatal(err)
				}
				m := map[string]bool{}
				for _, o := range ops {
					m[o.Login] = o.PageOpen
				}
				return m
			}
			if p := pages(); !p["alice"] || !p["bob"] {
				t.Fatalf("pages = %v; want both open", p)
			}
			time.Sleep(300 * time.Millisecond) // heartbeats keep both alive
			if p := pages(); !p["alice"] || !p["bob"] {
				t.Fatalf("after heartbeats pages = %v; want both open", p)
			}
			n1.Close() // node1 "crashes": no more heartbeats
			time.Sleep(300 * time.Millisecond)
			if p := pages(); p["alice"] || !p["bob"] {
				t.Fatalf("after node1 died pages = %v; want only bob open", p)
			}
		})
	}
}

func TestCalls(t *testing.T) {
	forEach(t, func(t *testing.T, b backend, s *redisstore.Store) {
		ctx := context.Background()
		t0 := time.Now().UTC().Truncate(time.Millisecond)
		c1 := &desk.Call{ID: "c1", SIPCallID: "sip-1@host", From: "+79160000001", To: "sales", Line: "sales", Operator: "alice", State: desk.CallRinging, Started: t0,
			Attempts: []desk.Attempt{{Operator: "alice", Started: t0}}}
		c2 := &desk.Call{ID: "c2", SIPCallID: "sip-2@host", From: "anonymous", State: desk.CallAnswered, Started: t0.Add(time.Second)}
		for _, c := range []*desk.Call{c1, c2} {
			if err := s.SaveCall(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SaveCall(ctx, &desk.Call{}); !errors.Is(err, desk.ErrInvalid) {
			t.Errorf("SaveCall without ID = %v; want ErrInvalid", err)
		}
		got, err := s.CallBySIPID(ctx, "sip-1@host")
		if err != nil || got.ID != "c1" || got.From != c1.From || len(got.Attempts) != 1 || !got.Started.Equal(t0) {
			t.Fatalf("CallBySIPID = %+v, %v", got, err)
		}
		live, err := s.LiveCalls(ctx)
		if err != nil || len(live) != 2 || live[0].ID != "c1" || live[1].ID != "c2" {
			t.Fatalf("LiveCalls = %v, %v; want c1, c2", live, err)
		}
		end := t0.Add(time.Minute)
		c1.State, c1.Ended, c1.Reason = desk.CallEnded, &end, "caller hung up"
		if err := s.SaveCall(ctx, c1); err != nil {
			t.Fatal(err)
		}
		live, _ = s.LiveCalls(ctx)
		if len(live) != 1 || live[0].ID != "c2" {
			t.Errorf("LiveCalls after end = %v; want c2", live)
		}
		if got, err := s.Call(ctx, "c1"); err != nil || got.State != desk.CallEnded || got.Ended == nil || !got.Ended.Equal(end) {
			t.Errorf("ended call kept as %+v, %v", got, err)
		}
		for _, f := range []func() error{
			func() error { _, err := s.Call(ctx, "zz"); return err },
			func() error { _, err := s.CallBySIPID(ctx, "zz"); return err },
		} {
			if err := f(); !errors.Is(err, desk.ErrNotFound) {
				t.Errorf("unknown call = %v; want ErrNotFound", err)
			}
		}
	})
}

// 50 goroutines on each of two nodes race to claim one operator for different
// calls: exactly one call wins.
func TestClaimRace(t *testing.T) {
	for _, b := range backends(t) {
		for _, nodes := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/%dnodes", b.name, nodes), func(t *testing.T) {
				ctx := context.Background()
				stores := make([]*redisstore.Store, nodes)
				for i := range stores {
					stores[i] = redisstore.New(b.client(), redisstore.WithPrefix(b.prefix))
				}
				login := fmt.Sprintf("racer%d", nodes)
				var (
					wg      sync.WaitGroup
					mu      sync.Mutex
					winners []string
					lost    int
				)
				start := make(chan struct{})
				for i := range 50 * nodes {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						call := fmt.Sprintf("call-%d", i)
						err := stores[i%nodes].Claim(ctx, login, call, desk.StatusRinging, time.Minute)
						mu.Lock()
						defer mu.Unlock()
						switch {
						case err == nil:
							winners = append(winners, call)
						case errors.Is(err, desk.ErrClaimed):
							lost++
						default:
							t.Errorf("Claim: %v", err)
						}
					}()
				}
				close(start)
				wg.Wait()
				if len(winners) != 1 || lost != 50*nodes-1 {
					t.Fatalf("winners %v, lost %d; want exactly one winner", winners, lost)
				}
			})
		}
	}
}

func TestUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	s := redisstore.New(c)
	ctx := context.Background()
	calls := map[string]func() error{
		"ping":      func() error { return s.Ping(ctx) },
		"user":      func() error { _, err := s.User(ctx, "a"); return err },
		"operators": func() error { _, err := s.Operators(ctx); return err },
		"claim":     func() error { return s.Claim(ctx, "a", "c", desk.StatusRinging, time.Second) },
		"contact":   func() error { _, err := s.ContactByPhone(ctx, "+79160000001"); return err },
		"save call": func() error { return s.SaveCall(ctx, &desk.Call{ID: "c"}) },
	}
	for name, f := range calls {
		if err := f(); !errors.Is(err, desk.ErrUnavailable) || errors.Is(err, desk.ErrNotFound) {
			t.Errorf("%s: err = %v; want ErrUnavailable", name, err)
		}
	}
}
