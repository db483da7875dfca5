package httpapi

import (
	"sync"
	"time"
)

// LoginLimit throttles failed logins. Within any Window, a client address may fail
// PerIP times and a login PerLogin times (whatever the address); the next attempt,
// even with the right password, is answered 429 with Retry-After until the oldest
// counted failure leaves the window. A successful login clears its login's count,
// not its address's. The counts live in the node's memory: with several nodes
// behind a balancer each node counts on its own (the limits then apply per node).
type LoginLimit struct {
	PerIP    int
	PerLogin int
	Window   time.Duration
}

// DefaultLoginLimit is 10 failures per address and 5 per login in 5 minutes.
var DefaultLoginLimit = LoginLimit{PerIP: 10, PerLogin: 5, Window: 5 * time.Minute}

// WithLoginLimit replaces DefaultLoginLimit. A zero PerIP or PerLogin turns that
// limit off. The clock is the server's (WithClock).
func WithLoginLimit(l LoginLimit) Option { return func(s *Server) { s.loginLimit = l } }

// maxLimiterKeys bounds the limiter's memory: past it, expired keys are swept, and
// if that is not enough, keys are forgotten until half remain (a flood from very
// many addresses then forgets some of them early rather than exhausting memory).
const maxLimiterKeys = 50000

// loginLimiter counts failures per key ("ip " + address, "login " + login) in a
// sliding window.
type loginLimiter struct {
	mu    sync.Mutex
	limit LoginLimit
	now   func() time.Time
	fails map[string][]time.Time
}

func newLoginLimiter(l LoginLimit, now func() time.Time) *loginLimiter {
	return &loginLimiter{limit: l, now: now, fails: map[string][]time.Time{}}
}

// recent drops the key's failures older than the window and returns the rest;
// callers hold mu.
func (l *loginLimiter) recent(key string, now time.Time) []time.Time {
	ts := l.fails[key]
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-l.limit.Window)) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, key)
		return nil
	}
	l.fails[key] = ts
	return ts
}

// wait returns how long the client at ip must wait before trying login again, and
// which limit holds it ("ip" or "login"); 0 when it may try now.
func (l *loginLimiter) wait(ip, login string) (time.Duration, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var worst time.Duration
	var which string
	for _, k := range []struct {
		key, name string
		max       int
	}{{"ip " + ip, "ip", l.limit.PerIP}, {"login " + login, "login", l.limit.PerLogin}} {
		if k.max <= 0 {
			continue
		}
		ts := l.recent(k.key, now)
		if len(ts) < k.max {
			continue
		}
		// The attempt is allowed again once enough failures have aged out.
		d := ts[len(ts)-k.max].Add(l.limit.Window).Sub(now)
		if d > worst {
			worst, which = d, k.name
		}
	}
	return worst, which
}

// fail counts a failed login of login from ip.
func (l *loginLimiter) fail(ip, login string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.fails) >= maxLimiterKeys {
		l.sweep(now)
	}
	for _, key := range []string{"ip " + ip, "login " + login} {
		ts := append(l.recent(key, now), now)
		if max := max(l.limit.PerIP, l.limit.PerLogin); len(ts) > max {
			ts = ts[len(ts)-max:] // older ones can no longer decide anything
		}
		l.fails[key] = ts
	}
}

// succeed clears the login's failures after a right password.
func (l *loginLimiter) succeed(login string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, "login "+login)
}

func (l *loginLimiter) sweep(now time.Time) {
	for k := range l.fails {
		l.recent(k, now)
	}
	if len(l.fails) < maxLimiterKeys/2 {
		return
	}
	cut := now.Add(-l.limit.Window / 2)
	for k, ts := range l.fails {
		if ts[len(ts)-1].Before(cut) || len(l.fails) >= maxLimiterKeys/2 {
			delete(l.fails, k)
		}
	}
}
