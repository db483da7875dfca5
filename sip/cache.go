package sip

import (
	"sync"
	"time"
)

// bindingCache keeps the bindings the registrar last accepted, so calls can still be
// routed, and REGISTERs answered, while the Handler's store (Redis) is unreachable.
type bindingCache struct {
	mu    sync.Mutex
	users map[string][]Binding
	ha1   map[string]string
}

func newBindingCache() *bindingCache {
	return &bindingCache{users: make(map[string][]Binding), ha1: make(map[string]string)}
}

func (c *bindingCache) put(user string, b []Binding) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(b) == 0 {
		delete(c.users, user)
		return
	}
	c.users[user] = append([]Binding(nil), b...)
}

func (c *bindingCache) get(user string, now time.Time) []Binding {
	c.mu.Lock()
	defer c.mu.Unlock()
	return unexpired(c.users[user], now)
}

// bySource finds a live binding whose packets came from addr.
func (c *bindingCache) bySource(addr string, now time.Time) (Binding, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, bs := range c.users {
		for _, b := range bs {
			if b.Source == addr && b.Expires.After(now) {
				return b, true
			}
		}
	}
	return Binding{}, false
}

// byContact finds a live binding registered with this Contact URI (without parameters
// compared loosely by user@host:port), for in-dialog requests to NATed phones.
func (c *bindingCache) byContact(hostport, user string, now time.Time) (Binding, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, bs := range c.users {
		for _, b := range bs {
			if !b.Expires.After(now) {
				continue
			}
			u, hp, ok := contactKey(b.Contact)
			if ok && hp == hostport && u == user {
				return b, true
			}
		}
	}
	return Binding{}, false
}

func (c *bindingCache) putHA1(user, ha1 string) {
	c.mu.Lock()
	c.ha1[user] = ha1
	c.mu.Unlock()
}

func (c *bindingCache) getHA1(user string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.ha1[user]
	return h, ok
}

func (c *bindingCache) forgetHA1(user string) {
	c.mu.Lock()
	delete(c.ha1, user)
	c.mu.Unlock()
}

func unexpired(bs []Binding, now time.Time) []Binding {
	var out []Binding
	for _, b := range bs {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	return out
}

// dialogInfo is what the proxy remembers of an answered call, to tell who hung up.
type dialogInfo struct {
	callerTag string
	target    string
	created   time.Time
	quiet     bool // a bridge transit or supervisor leg: no events
}

// maxDialogAge bounds how long an answered call whose BYE never came is remembered.
const maxDialogAge = 12 * time.Hour

type dialogStore struct {
	mu sync.Mutex
	m  map[string]dialogInfo
}

func newDialogStore() *dialogStore { return &dialogStore{m: make(map[string]dialogInfo)} }

func (d *dialogStore) add(callID string, di dialogInfo) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, v := range d.m {
		if di.created.Sub(v.created) > maxDialogAge {
			delete(d.m, k)
		}
	}
	d.m[callID] = di
}

func (d *dialogStore) get(callID string) (dialogInfo, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	di, ok := d.m[callID]
	return di, ok
}

func (d *dialogStore) remove(callID string) (dialogInfo, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	di, ok := d.m[callID]
	delete(d.m, callID)
	return di, ok
}

func (d *dialogStore) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.m)
}
