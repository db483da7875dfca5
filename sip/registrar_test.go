package sip

import (
	"context"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

func TestRegister(t *testing.T) {
	cases := []struct {
		name       string
		login      string
		password   string // what the phone answers with; "" sends no credentials
		wantStatus int
		wantStored bool
	}{
		{name: "digest ok", login: "anna", password: "secret", wantStatus: 200, wantStored: true},
		{name: "no credentials", login: "anna", password: "", wantStatus: 401},
		{name: "bad password", login: "anna", password: "wrong", wantStatus: 403},
		{name: "unknown user", login: "nobody", password: "secret", wantStatus: 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newMemHandler()
			h.users["anna"] = "secret"
			s := startServer(t, h)
			p := newPhone(t, tc.login, "", "udp", "answer")
			res := p.register(t, s.Addr(), 600, tc.password)
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus == 401 {
				wa := res.GetHeader("WWW-Authenticate")
				if wa == nil {
					t.Fatal("401 without WWW-Authenticate")
				}
				chal, err := digest.ParseChallenge(wa.Value())
				if err != nil || chal.Nonce == "" || chal.Realm != testDomain || !chal.SupportsQOP("auth") {
					t.Fatalf("bad challenge %q: %v", wa.Value(), err)
				}
			}
			if tc.wantStatus == 403 && res.Reason != "Forbidden" {
				t.Fatalf("403 reason %q must not tell unknown user from bad password", res.Reason)
			}
			bs := h.userBindings(tc.login)
			if !tc.wantStored {
				if len(bs) != 0 {
					t.Fatalf("bindings stored: %+v", bs)
				}
				return
			}
			if len(bs) != 1 {
				t.Fatalf("want 1 binding, got %+v", bs)
			}
			b := bs[0]
			if b.Source != p.addr || b.Transport != "udp" || b.UserAgent != "test-phone" || b.CallID == "" {
				t.Fatalf("binding %+v, want source %s over udp", b, p.addr)
			}
			if d := time.Until(b.Expires); d < 590*time.Second || d > 601*time.Second {
				t.Fatalf("expires in %v", d)
			}
			if c := res.GetHeader("Contact"); c == nil || !strings.Contains(c.Value(), "expires=") {
				t.Fatalf("200 OK lacks the contact with expires: %v", c)
			}
		})
	}
}

func TestRegisterExpires(t *testing.T) {
	h := newMemHandler()
	h.users["anna"] = "secret"
	s := startServer(t, h, WithExpiresRange(60, 3600))
	p := newPhone(t, "anna", "", "udp", "answer")

	if res := p.register(t, s.Addr(), 30, "secret"); res.StatusCode != 423 || res.GetHeader("Min-Expires") == nil {
		t.Fatalf("too brief: got %d", res.StatusCode)
	}
	if res := p.register(t, s.Addr(), 7200, "secret"); res.StatusCode != 200 {
		t.Fatalf("register: %d", res.StatusCode)
	}
	bs := h.userBindings("anna")
	if len(bs) != 1 || time.Until(bs[0].Expires) > 3601*time.Second {
		t.Fatalf("expires not clamped: %+v", bs)
	}
	if res := p.register(t, s.Addr(), 0, "secret"); res.StatusCode != 200 {
		t.Fatalf("unregister: %d", res.StatusCode)
	}
	if bs := h.userBindings("anna"); len(bs) != 0 {
		t.Fatalf("Expires 0 left bindings: %+v", bs)
	}
}

func TestRegisterStaleNonce(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	h := newMemHandler()
	h.users["anna"] = "secret"
	s := startServer(t, h, WithNonceKey(key), WithNonceTTL(time.Minute))
	p := newPhone(t, "anna", "", "udp", "answer")

	old := &nonces{key: key, realm: testDomain, ttl: time.Minute, now: func() time.Time { return time.Now().Add(-10 * time.Minute) }}
	chal, err := digest.ParseChallenge(old.challenge(false))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		password string
		want     int
		stale    bool
	}{
		{"correct answer to an expired nonce", "secret", 401, true},
		{"wrong answer to an expired nonce", "wrong", 403, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := sipmsg.NewRequest(sipmsg.REGISTER, sipmsg.Uri{Scheme: "sip", Host: testDomain})
			aor := sipmsg.Uri{Scheme: "sip", User: "anna", Host: testDomain}
			from := &sipmsg.FromHeader{Address: aor, Params: sipmsg.NewParams()}
			from.Params.Add("tag", "x1")
			req.AppendHeader(from)
			req.AppendHeader(&sipmsg.ToHeader{Address: aor, Params: sipmsg.NewParams()})
			req.AppendHeader(sipmsg.HeaderClone(&p.contact))
			cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: req.Recipient.Addr(), Username: "anna", Password: tc.password})
			if err != nil {
				t.Fatal(err)
			}
			req.AppendHeader(sipmsg.NewHeader("Authorization", cred.String()))
			req.SetDestination(s.Addr())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := p.client.Do(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
			if tc.stale {
				wa := res.GetHeader("WWW-Authenticate")
				if wa == nil || !strings.Contains(wa.Value(), "stale=true") {
					t.Fatalf("no stale=true in %v", wa)
				}
			}
		})
	}
	if bs := h.userBindings("anna"); len(bs) != 0 {
		t.Fatalf("stale nonce registered: %+v", bs)
	}
}

func TestRegisterStoreDownKeepsBindingInMemory(t *testing.T) {
	h := newMemHandler()
	h.users["anna"] = "secret"
	h.putErr = errStore
	s := startServer(t, h)
	p := newPhone(t, "anna", "", "udp", "answer")
	if res := p.register(t, s.Addr(), 600, "secret"); res.StatusCode != 200 {
		t.Fatalf("status %d, want 200 although the store is down", res.StatusCode)
	}
	bs := s.CachedBindings("anna")
	if len(bs) != 1 || bs[0].Source != p.addr {
		t.Fatalf("cached bindings %+v", bs)
	}
}

func TestNonceFormat(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	n := &nonces{key: []byte("k"), realm: "r", ttl: time.Minute, now: func() time.Time { return now }}
	v := n.issue()
	if stale, err := n.check(v); err != nil || stale {
		t.Fatalf("fresh nonce: stale=%v err=%v", stale, err)
	}
	for _, bad := range []string{"", "x", v[:len(v)-1] + "0", strings.Replace(v, v[:16], "0000000000000001", 1)} {
		if bad == v {
			continue
		}
		if _, err := n.check(bad); err == nil {
			t.Errorf("forged nonce %q accepted", bad)
		}
	}
	other := &nonces{key: []byte("k"), realm: "other", ttl: time.Minute, now: n.now}
	if _, err := other.check(v); err == nil {
		t.Error("nonce of another realm accepted")
	}
	now = now.Add(2 * time.Minute)
	if stale, err := n.check(v); err != nil || !stale {
		t.Fatalf("old nonce: stale=%v err=%v", stale, err)
	}
}

func TestRegisterCredentialsStoreDown(t *testing.T) {
	h := newMemHandler()
	h.addUser("anna", "secret")
	h.addUser("boris", "secret")
	s := startServer(t, h)
	anna := newPhone(t, "anna", "", "udp", "answer")
	if res := anna.register(t, s.Addr(), 600, "secret"); res.StatusCode != 200 {
		t.Fatalf("first register: %d", res.StatusCode)
	}
	h.mu.Lock()
	h.ha1Err, h.putErr = errStore, errStore
	h.mu.Unlock()
	if res := anna.register(t, s.Addr(), 600, "secret"); res.StatusCode != 200 {
		t.Fatalf("re-register with the store down: %d, want 200 from cached credentials", res.StatusCode)
	}
	if res := anna.register(t, s.Addr(), 600, "wrong"); res.StatusCode != 403 {
		t.Fatalf("wrong password with the store down: %d, want 403", res.StatusCode)
	}
	boris := newPhone(t, "boris", "", "udp", "answer")
	if res := boris.register(t, s.Addr(), 600, "secret"); res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("never-seen user with the store down: %d, want 503 with Retry-After", res.StatusCode)
	}
}
