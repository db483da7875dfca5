package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/calldesk/desk/desk"
	"github.com/redis/go-redis/v9"
)

// Reassignment moves one item at a time, each a compare-and-set under WATCH: the
// item moves only while its owner is still the one the supervisor saw, so a
// wrap-up, a kept promise or another supervisor's move in between is never undone.

// ContactsOf returns the contacts whose personal manager is manager, by name.
// Contacts have no index by manager, so it scans them: bulk moves are rare and a
// scan also finds contacts stored before any index could have existed.
func (s *Store) ContactsOf(ctx context.Context, manager string) ([]*desk.Contact, error) {
	if manager == "" {
		return nil, fmt.Errorf("contacts of: empty manager: %w", desk.ErrInvalid)
	}
	keys, err := s.scanKeys(ctx, globEscape(s.kContact(""))+"*")
	if err != nil {
		return nil, wrap("contacts of "+manager, err)
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = strings.TrimPrefix(k, s.kContact(""))
	}
	var out []*desk.Contact
	err = s.getJSON(ctx, "contacts of "+manager, ids, s.kContact, func(id string, b []byte) {
		var c desk.Contact
		if err := json.Unmarshal(b, &c); err != nil {
			s.log.Warn("redisstore: skipping undecodable contact", "id", id, "err", err)
			return
		}
		if c.Manager == manager {
			out = append(out, &c)
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *desk.Contact) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// scanKeys returns the keys matching pattern. On a cluster it scans every master:
// the keys share a hash tag, so they all sit on one of them.
func (s *Store) scanKeys(ctx context.Context, pattern string) ([]string, error) {
	var out []string
	scan := func(ctx context.Context, c redis.Cmdable) ([]string, error) {
		var keys []string
		iter := c.Scan(ctx, 0, pattern, 500).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return keys, iter.Err()
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			keys, err := scan(ctx, c)
			mu.Lock()
			out = append(out, keys...)
			mu.Unlock()
			return err
		})
		return out, err
	}
	return scan(ctx, s.rdb)
}

// globEscape escapes the characters SCAN MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// InterestsOf returns the interests owned by owner, open or closed, newest first.
func (s *Store) InterestsOf(ctx context.Context, owner string) ([]*desk.Interest, error) {
	all, err := s.Interests(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(i *desk.Interest) bool { return i.Owner != owner }), nil
}

// moveJSON is the compare-and-set every reassignment is: under WATCH it reads the
// JSON item at key, lets move change it (false leaves it as it is), and writes it
// back together with extra's commands (index moves). It returns the item as it now
// stands and whether it moved.
func moveJSON[T any](ctx context.Context, s *Store, op, key string, move func(v *T) bool, extra func(p redis.Pipeliner, v *T)) (*T, bool, error) {
	var out *T
	var moved bool
	err := s.retryTx(ctx, op, func(tx *redis.Tx) error {
		out, moved = nil, false
		b, err := tx.Get(ctx, key).Bytes()
		if err != nil {
			return err
		}
		v := new(T)
		if err := json.Unmarshal(b, v); err != nil {
			return permanent{fmt.Errorf("decode: %w", err)}
		}
		if !move(v) {
			out = v
			return nil
		}
		nb, err := json.Marshal(v)
		if err != nil {
			return permanent{err}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, nb, 0)
			if extra != nil {
				extra(p, v)
			}
			return nil
		})
		if err == nil {
			out, moved = v, true
		}
		return err
	}, key)
	return out, moved, err
}

// ReassignContact makes to the contact's personal manager if from still is. It
// returns the contact as it now stands and whether it moved; ErrNotFound when
// there is no such contact.
func (s *Store) ReassignContact(ctx context.Context, id, from, to string) (*desk.Contact, bool, error) {
	return moveJSON(ctx, s, "reassign contact "+id, s.kContact(id), func(c *desk.Contact) bool {
		if c.Manager != from || from == to {
			return false
		}
		c.Manager, c.Updated = to, s.now().UTC()
		return true
	}, nil)
}

// ReassignInterest makes to the interest's owner if from still owns it (and, with
// openOnly, it is still open). It returns the interest and whether it moved.
func (s *Store) ReassignInterest(ctx context.Context, id, from, to string, openOnly bool) (*desk.Interest, bool, error) {
	return moveJSON(ctx, s, "reassign interest "+id, s.kInterest(id), func(it *desk.Interest) bool {
		if it.Owner != from || from == to || (openOnly && it.State != "open") {
			return false
		}
		it.Owner, it.Updated = to, s.now().UTC()
		return true
	}, nil)
}

// ReassignPromise makes to the promise's owner if from ("" the pool) still owns it
// (and, with openOnly, it is still open), moving it between the owners' indexes.
// It returns the promise and whether it moved.
func (s *Store) ReassignPromise(ctx context.Context, id, from, to string, openOnly bool) (*desk.Promise, bool, error) {
	return moveJSON(ctx, s, "reassign promise "+id, s.kPromise(id), func(p *desk.Promise) bool {
		if p.Owner != from || from == to || (openOnly && p.State != desk.PromiseOpen) {
			return false
		}
		p.Owner = to
		return true
	}, func(pp redis.Pipeliner, p *desk.Promise) {
		z := redis.Z{Score: float64(p.Due.UnixMilli()), Member: p.ID}
		pp.ZRem(ctx, s.kPromisesOwner(from), p.ID)
		pp.ZRem(ctx, s.kPromisesOwnerOpen(from), p.ID)
		pp.ZAdd(ctx, s.kPromisesOwner(to), z)
		if p.State == desk.PromiseOpen {
			pp.ZAdd(ctx, s.kPromisesOwnerOpen(to), z)
		}
	})
}
