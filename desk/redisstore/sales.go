package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/redis/go-redis/v9"
)

// What outlives a call shares the {sales} tag, so a promise and all its indexes
// change in one MULTI:
//
//	PREFIX{sales}:interest:ID           string interest JSON
//	PREFIX{sales}:interests             set    every interest ID (the funnel board)
//	PREFIX{sales}:open-interest:CONTACT string ID of the contact's open interest
//	PREFIX{sales}:promise:ID            string promise JSON
//	PREFIX{sales}:promises:all          zset   ID -> due (unix ms), every promise
//	PREFIX{sales}:promises:open         zset   open ones
//	PREFIX{sales}:promises:due          zset   open ones not yet notified overdue
//	PREFIX{sales}:promises:owner:LOGIN  zset   the owner's promises, "~pool" for the pool
//	PREFIX{sales}:promises:oowner:LOGIN zset   the owner's open promises
//	PREFIX{sales}:promises:ocontact:C   zset   the contact's open promises
//	PREFIX{sales}:meeting:ID            string meeting JSON
//	PREFIX{sales}:meetings:contact:C    zset   ID -> at (unix ms)
//	PREFIX{sales}:notes:CONTACT         list   note JSON, newest first, capped
//	PREFIX{sales}:history:CONTACT       list   call summary JSON, newest first, capped
//	PREFIX{sales}:wrapup:LOGIN          string the call ID the operator owes a wrap-up for
//	PREFIX{sales}:audit                 list   audit entry JSON, newest first, capped
//	PREFIXlease:NAME                    string holder, expires with the lease

// Caps of the per-contact and global lists: the card shows far fewer.
const (
	listCap  = 200
	auditCap = 10000
)

// poolOwner stands for the pool (owner "") in key names; "~" cannot start a login.
const poolOwner = "~pool"

// txRetries bounds optimistic (WATCH) retries before giving up as unavailable.
const txRetries = 20

func (s *Store) kInterest(id string) string       { return s.prefix + "{sales}:interest:" + id }
func (s *Store) kInterests() string               { return s.prefix + "{sales}:interests" }
func (s *Store) kOpenInterest(c string) string    { return s.prefix + "{sales}:open-interest:" + c }
func (s *Store) kPromise(id string) string        { return s.prefix + "{sales}:promise:" + id }
func (s *Store) kPromisesAll() string             { return s.prefix + "{sales}:promises:all" }
func (s *Store) kPromisesOpen() string            { return s.prefix + "{sales}:promises:open" }
func (s *Store) kPromisesDue() string             { return s.prefix + "{sales}:promises:due" }
func (s *Store) kPromisesContact(c string) string { return s.prefix + "{sales}:promises:ocontact:" + c }
func (s *Store) kMeeting(id string) string        { return s.prefix + "{sales}:meeting:" + id }
func (s *Store) kMeetingsSet() string             { return s.prefix + "{sales}:meetings" }
func (s *Store) kMeetingsContact(c string) string { return s.prefix + "{sales}:meetings:contact:" + c }
func (s *Store) kNotes(c string) string           { return s.prefix + "{sales}:notes:" + c }
func (s *Store) kHistory(c string) string         { return s.prefix + "{sales}:history:" + c }
func (s *Store) kPendingWrapup(l string) string   { return s.prefix + "{sales}:wrapup:" + l }
func (s *Store) kAudit() string                   { return s.prefix + "{sales}:audit" }
func (s *Store) kLease(name string) string        { return s.prefix + "lease:" + name }

func (s *Store) kPromisesOwner(owner string) string {
	return s.prefix + "{sales}:promises:owner:" + ownerKey(owner)
}

func (s *Store) kPromisesOwnerOpen(owner string) string {
	return s.prefix + "{sales}:promises:oowner:" + ownerKey(owner)
}

func ownerKey(owner string) string {
	if owner == "" {
		return poolOwner
	}
	return owner
}

// Contacts.

// UpdateContact replaces a contact and re-indexes its phones: new phones are
// claimed, phones no longer on the contact are released. A phone owned by another
// contact is ErrExists and nothing changes; an unknown contact is ErrNotFound.
func (s *Store) UpdateContact(ctx context.Context, c *desk.Contact) error {
	if c == nil || c.ID == "" {
		return fmt.Errorf("update contact: %w", desk.ErrInvalid)
	}
	var phones []string
	for _, p := range c.Phones {
		if !validE164(p) {
			return fmt.Errorf("update contact: phone %q is not E.164: %w", p, desk.ErrInvalid)
		}
		if !slices.Contains(phones, p) {
			phones = append(phones, p)
		}
	}
	op := "update contact " + c.ID
	newKeys := []string{s.kContact(c.ID)}
	for _, p := range phones {
		newKeys = append(newKeys, s.kPhone(p))
	}
	err := s.retryTx(ctx, op, func(tx *redis.Tx) error {
		b, err := tx.Get(ctx, s.kContact(c.ID)).Bytes()
		if err != nil {
			return err
		}
		var cur desk.Contact
		if err := json.Unmarshal(b, &cur); err != nil {
			return permanent{fmt.Errorf("decode: %w", err)}
		}
		// The stored phones are known only now; watching them after the read is
		// still safe, because the contact key is watched and any change to its
		// phones changes it.
		var oldKeys []string
		for _, p := range cur.Phones {
			if !slices.Contains(phones, p) {
				oldKeys = append(oldKeys, s.kPhone(p))
			}
		}
		if len(oldKeys) > 0 {
			if err := tx.Watch(ctx, oldKeys...).Err(); err != nil {
				return err
			}
		}
		for _, p := range phones {
			owner, err := tx.Get(ctx, s.kPhone(p)).Result()
			if err != nil && !isNil(err) {
				return err
			}
			if owner != "" && owner != c.ID {
				return fmt.Errorf("phone %s belongs to another contact: %w", p, desk.ErrExists)
			}
		}
		var released []string
		for _, k := range oldKeys {
			owner, err := tx.Get(ctx, k).Result()
			if err != nil && !isNil(err) {
				return err
			}
			if owner == c.ID {
				released = append(released, k)
			}
		}
		upd := *c
		upd.Phones = phones
		if upd.Created.IsZero() {
			upd.Created = cur.Created
		}
		upd.Updated = s.now().UTC()
		nb, err := json.Marshal(&upd)
		if err != nil {
			return permanent{err}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.kContact(c.ID), nb, 0)
			for _, ph := range phones {
				p.Set(ctx, s.kPhone(ph), c.ID, 0)
			}
			if len(released) > 0 {
				p.Del(ctx, released...)
			}
			return nil
		})
		if err == nil {
			*c = upd
		}
		return err
	}, newKeys...)
	return err
}

// permanent marks an error of a transaction function that is not Redis's (a
// record that does not decode), so retryTx does not report it as ErrUnavailable.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// retryTx runs fn under WATCH keys, again when another client changed a watched
// key before EXEC, and maps the error. Errors fn returns that already carry a desk
// sentinel pass through with op added.
func (s *Store) retryTx(ctx context.Context, op string, fn func(tx *redis.Tx) error, keys ...string) error {
	for range txRetries {
		err := s.rdb.Watch(ctx, fn, keys...)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, redis.TxFailedErr):
			continue
		case errors.Is(err, desk.ErrExists), errors.Is(err, desk.ErrInvalid), errors.As(err, new(permanent)):
			return fmt.Errorf("%s: %w", op, err)
		default:
			return wrap(op, err)
		}
	}
	return fmt.Errorf("%s: too much contention: %w", op, desk.ErrUnavailable)
}

// Interests.

// SaveInterest stores the interest (assigning an ID when empty) and keeps the
// contact's open-interest index: an open interest becomes the contact's open one,
// a closed one stops being it.
func (s *Store) SaveInterest(ctx context.Context, i *desk.Interest) error {
	if i == nil {
		return fmt.Errorf("save interest: %w", desk.ErrInvalid)
	}
	if i.ID == "" {
		i.ID = randomHex(16)
	}
	now := s.now().UTC()
	if i.Created.IsZero() {
		i.Created = now
	}
	if i.Updated.IsZero() {
		i.Updated = now
	}
	b, err := json.Marshal(i)
	if err != nil {
		return fmt.Errorf("save interest %s: %w", i.ID, err)
	}
	args := []any{b, i.ID, i.State == "open", i.ContactID}
	keys := []string{s.kInterest(i.ID), s.kInterests(), s.kOpenInterest(i.ContactID)}
	err = saveInterest.Run(ctx, s.rdb, keys, args...).Err()
	return wrap("save interest "+i.ID, err)
}

// saveInterest: KEYS interest, all, open index of the contact; ARGV json, id,
// open (1/0), contact ID.
var saveInterest = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
if ARGV[4] ~= '' then
  if ARGV[3] == '1' then
    redis.call('SET', KEYS[3], ARGV[2])
  elseif redis.call('GET', KEYS[3]) == ARGV[2] then
    redis.call('DEL', KEYS[3])
  end
end
return 1
`)

// Interest returns an interest by ID.
func (s *Store) Interest(ctx context.Context, id string) (*desk.Interest, error) {
	b, err := s.rdb.Get(ctx, s.kInterest(id)).Bytes()
	if err != nil {
		return nil, wrap("interest "+id, err)
	}
	var i desk.Interest
	if err := json.Unmarshal(b, &i); err != nil {
		return nil, fmt.Errorf("interest %s: decode: %w", id, err)
	}
	return &i, nil
}

// OpenInterest returns the contact's open interest; ErrNotFound when none.
func (s *Store) OpenInterest(ctx context.Context, contactID string) (*desk.Interest, error) {
	if contactID == "" {
		return nil, fmt.Errorf("open interest: %w", desk.ErrNotFound)
	}
	id, err := s.rdb.Get(ctx, s.kOpenInterest(contactID)).Result()
	if err != nil {
		return nil, wrap("open interest of "+contactID, err)
	}
	return s.Interest(ctx, id)
}

// Interests returns every interest, newest first.
func (s *Store) Interests(ctx context.Context) ([]*desk.Interest, error) {
	ids, err := s.rdb.SMembers(ctx, s.kInterests()).Result()
	if err != nil {
		return nil, wrap("interests", err)
	}
	var out []*desk.Interest
	err = s.getJSON(ctx, "interests", ids, s.kInterest, func(id string, b []byte) {
		var i desk.Interest
		if err := json.Unmarshal(b, &i); err != nil {
			s.log.Warn("redisstore: skipping undecodable interest", "id", id, "err", err)
			return
		}
		out = append(out, &i)
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *desk.Interest) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// getJSON fetches the string keys of ids in one pipeline and hands each found value
// to f, in the order of ids. Missing keys are skipped.
func (s *Store) getJSON(ctx context.Context, op string, ids []string, key func(string) string, f func(id string, b []byte)) error {
	if len(ids) == 0 {
		return nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, key(id))
		}
		return nil
	})
	if err != nil && !isNil(err) {
		return wrap(op, err)
	}
	for i, cmd := range cmds {
		b, err := cmd.Bytes()
		if err != nil {
			continue
		}
		f(ids[i], b)
	}
	return nil
}

// Promises.

// SavePromise stores the promise (assigning an ID when empty) and moves it between
// the indexes: a kept promise leaves the open, due and contact sets; a notified one
// leaves the due set; a new owner or contact moves it.
func (s *Store) SavePromise(ctx context.Context, p *desk.Promise) error {
	if p == nil {
		return fmt.Errorf("save promise: %w", desk.ErrInvalid)
	}
	if p.ID == "" {
		p.ID = randomHex(16)
	}
	if p.Created.IsZero() {
		p.Created = s.now().UTC()
	}
	if p.State == "" {
		p.State = desk.PromiseOpen
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("save promise %s: %w", p.ID, err)
	}
	return s.retryTx(ctx, "save promise "+p.ID, func(tx *redis.Tx) error {
		cur, err := tx.Get(ctx, s.kPromise(p.ID)).Bytes()
		if err != nil && !isNil(err) {
			return err
		}
		var old *desk.Promise
		if len(cur) > 0 {
			old = new(desk.Promise)
			if err := json.Unmarshal(cur, old); err != nil {
				old = nil // undecodable: index it afresh
			}
		}
		z := redis.Z{Score: float64(p.Due.UnixMilli()), Member: p.ID}
		open := p.State == desk.PromiseOpen
		_, err = tx.TxPipelined(ctx, func(pp redis.Pipeliner) error {
			pp.Set(ctx, s.kPromise(p.ID), b, 0)
			if old != nil && old.Owner != p.Owner {
				pp.ZRem(ctx, s.kPromisesOwner(old.Owner), p.ID)
				pp.ZRem(ctx, s.kPromisesOwnerOpen(old.Owner), p.ID)
			}
			if old != nil && old.ContactID != "" && old.ContactID != p.ContactID {
				pp.ZRem(ctx, s.kPromisesContact(old.ContactID), p.ID)
			}
			pp.ZAdd(ctx, s.kPromisesAll(), z)
			pp.ZAdd(ctx, s.kPromisesOwner(p.Owner), z)
			if open {
				pp.ZAdd(ctx, s.kPromisesOpen(), z)
				pp.ZAdd(ctx, s.kPromisesOwnerOpen(p.Owner), z)
				if p.ContactID != "" {
					pp.ZAdd(ctx, s.kPromisesContact(p.ContactID), z)
				}
			} else {
				pp.ZRem(ctx, s.kPromisesOpen(), p.ID)
				pp.ZRem(ctx, s.kPromisesOwnerOpen(p.Owner), p.ID)
				if p.ContactID != "" {
					pp.ZRem(ctx, s.kPromisesContact(p.ContactID), p.ID)
				}
			}
			if open && !p.Notified {
				pp.ZAdd(ctx, s.kPromisesDue(), z)
			} else {
				pp.ZRem(ctx, s.kPromisesDue(), p.ID)
			}
			return nil
		})
		return err
	}, s.kPromise(p.ID))
}

// Promise returns a promise by ID.
func (s *Store) Promise(ctx context.Context, id string) (*desk.Promise, error) {
	b, err := s.rdb.Get(ctx, s.kPromise(id)).Bytes()
	if err != nil {
		return nil, wrap("promise "+id, err)
	}
	var p desk.Promise
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("promise %s: decode: %w", id, err)
	}
	return &p, nil
}

// Promises returns the promises of owner ("*" for every owner, "" for the pool) in
// state ("open", "kept", or "" for all; "overdue" gives open ones past due on the
// store's clock), by due time.
func (s *Store) Promises(ctx context.Context, owner, state string) ([]*desk.Promise, error) {
	open := state == desk.PromiseOpen || state == desk.PromiseOverdue
	var key string
	switch {
	case owner == "*" && open:
		key = s.kPromisesOpen()
	case owner == "*":
		key = s.kPromisesAll()
	case open:
		key = s.kPromisesOwnerOpen(owner)
	default:
		key = s.kPromisesOwner(owner)
	}
	ps, err := s.promisesIn(ctx, "promises", key, "-inf", "+inf")
	if err != nil {
		return nil, err
	}
	if state == "" {
		return ps, nil
	}
	now := s.now()
	out := ps[:0]
	for _, p := range ps {
		if p.State == state || (state == desk.PromiseOverdue && p.Overdue(now)) {
			out = append(out, p)
		}
	}
	return out, nil
}

// DuePromises returns open, not yet notified promises due at or before t, by due time.
func (s *Store) DuePromises(ctx context.Context, t time.Time) ([]*desk.Promise, error) {
	ps, err := s.promisesIn(ctx, "due promises", s.kPromisesDue(), "-inf", fmt.Sprint(t.UnixMilli()))
	if err != nil {
		return nil, err
	}
	// The index is kept by SavePromise; the check guards against a promise saved
	// outside it (or a half-applied write of an older version).
	out := ps[:0]
	for _, p := range ps {
		if p.State == desk.PromiseOpen && !p.Notified && !p.Due.After(t) {
			out = append(out, p)
		}
	}
	return out, nil
}

// ContactPromises returns the contact's open promises, by due time.
func (s *Store) ContactPromises(ctx context.Context, contactID string) ([]*desk.Promise, error) {
	return s.promisesIn(ctx, "contact promises", s.kPromisesContact(contactID), "-inf", "+inf")
}

// promisesIn loads the promises of a zset between scores min and max, in score order.
func (s *Store) promisesIn(ctx context.Context, op, key, min, max string) ([]*desk.Promise, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: min, Max: max}).Result()
	if err != nil {
		return nil, wrap(op, err)
	}
	out := make([]*desk.Promise, 0, len(ids))
	err = s.getJSON(ctx, op, ids, s.kPromise, func(id string, b []byte) {
		var p desk.Promise
		if err := json.Unmarshal(b, &p); err != nil {
			s.log.Warn("redisstore: skipping undecodable promise", "id", id, "err", err)
			return
		}
		out = append(out, &p)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Meetings.

// SaveMeeting stores the meeting (assigning an ID when empty) and lists it on the
// contact.
func (s *Store) SaveMeeting(ctx context.Context, m *desk.Meeting) error {
	if m == nil {
		return fmt.Errorf("save meeting: %w", desk.ErrInvalid)
	}
	if m.ID == "" {
		m.ID = randomHex(16)
	}
	if m.Created.IsZero() {
		m.Created = s.now().UTC()
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("save meeting %s: %w", m.ID, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.kMeeting(m.ID), b, 0)
		if m.ContactID != "" {
			p.ZAdd(ctx, s.kMeetingsContact(m.ContactID), redis.Z{Score: float64(m.At.UnixMilli()), Member: m.ID})
		}
		p.ZAdd(ctx, s.kMeetingsSet(), redis.Z{Score: float64(m.Created.UnixMilli()), Member: m.ID})
		return nil
	})
	return wrap("save meeting "+m.ID, err)
}

// MeetingsBetween returns the meetings set (created) in [from, to), oldest first.
func (s *Store) MeetingsBetween(ctx context.Context, from, to time.Time) ([]*desk.Meeting, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.kMeetingsSet(), &redis.ZRangeBy{
		Min: strconv.FormatInt(from.UnixMilli(), 10), Max: "(" + strconv.FormatInt(to.UnixMilli(), 10)}).Result()
	if err != nil {
		return nil, wrap("meetings between", err)
	}
	var out []*desk.Meeting
	err = s.getJSON(ctx, "meetings between", ids, s.kMeeting, func(_ string, b []byte) {
		var m desk.Meeting
		if json.Unmarshal(b, &m) == nil {
			out = append(out, &m)
		}
	})
	return out, err
}

// Notes and history.

// pushCapped prepends v to a list and trims it to limit, in one transaction.
func (s *Store) pushCapped(ctx context.Context, op, key string, v any, limit int64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, key, b)
		p.LTrim(ctx, key, 0, limit-1)
		return nil
	})
	return wrap(op, err)
}

// newest reads up to limit items of a newest-first list (limit <= 0: all kept).
func newest[T any](ctx context.Context, s *Store, op, key string, limit int) ([]T, error) {
	stop := int64(-1)
	if limit > 0 {
		stop = int64(limit) - 1
	}
	vals, err := s.rdb.LRange(ctx, key, 0, stop).Result()
	if err != nil {
		return nil, wrap(op, err)
	}
	out := make([]T, 0, len(vals))
	for _, v := range vals {
		var x T
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			s.log.Warn("redisstore: skipping undecodable entry", "op", op, "err", err)
			continue
		}
		out = append(out, x)
	}
	return out, nil
}

// AddNote adds a note to its contact (assigning ID and time when empty). A contact
// keeps its newest listCap notes.
func (s *Store) AddNote(ctx context.Context, n *desk.Note) error {
	if n == nil || n.ContactID == "" {
		return fmt.Errorf("add note: %w", desk.ErrInvalid)
	}
	if n.ID == "" {
		n.ID = randomHex(16)
	}
	if n.At.IsZero() {
		n.At = s.now().UTC()
	}
	return s.pushCapped(ctx, "add note to "+n.ContactID, s.kNotes(n.ContactID), n, listCap)
}

// Notes returns the contact's notes, newest first, at most limit (0: all kept).
func (s *Store) Notes(ctx context.Context, contactID string, limit int) ([]desk.Note, error) {
	return newest[desk.Note](ctx, s, "notes of "+contactID, s.kNotes(contactID), limit)
}

// AddHistory appends a past call to the contact's history, which keeps its newest
// listCap calls.
func (s *Store) AddHistory(ctx context.Context, contactID string, cs desk.CallSummary) error {
	if contactID == "" {
		return fmt.Errorf("add history: %w", desk.ErrInvalid)
	}
	return s.pushCapped(ctx, "add history to "+contactID, s.kHistory(contactID), cs, listCap)
}

// History returns the contact's past calls, newest first, at most limit (0: all kept).
func (s *Store) History(ctx context.Context, contactID string, limit int) ([]desk.CallSummary, error) {
	return newest[desk.CallSummary](ctx, s, "history of "+contactID, s.kHistory(contactID), limit)
}

// Pending wrap-ups.

// SetPendingWrapup remembers that the operator owes a wrap-up for callID; an empty
// callID clears it.
func (s *Store) SetPendingWrapup(ctx context.Context, login, callID string) error {
	if login == "" {
		return fmt.Errorf("set pending wrap-up: %w", desk.ErrInvalid)
	}
	if callID == "" {
		return wrap("clear pending wrap-up of "+login, s.rdb.Del(ctx, s.kPendingWrapup(login)).Err())
	}
	return wrap("set pending wrap-up of "+login, s.rdb.Set(ctx, s.kPendingWrapup(login), callID, 0).Err())
}

// PendingWrapup returns the call the operator owes a wrap-up for; "" when none.
func (s *Store) PendingWrapup(ctx context.Context, login string) (string, error) {
	id, err := s.rdb.Get(ctx, s.kPendingWrapup(login)).Result()
	if isNil(err) {
		return "", nil
	}
	if err != nil {
		return "", wrap("pending wrap-up of "+login, err)
	}
	return id, nil
}

// Audit.

// Audit records an action (stamping the time when empty). The log keeps its newest
// auditCap entries.
func (s *Store) Audit(ctx context.Context, e desk.AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now().UTC()
	}
	return s.pushCapped(ctx, "audit", s.kAudit(), e, auditCap)
}

// AuditLog returns the newest limit audit entries, newest first (0: all kept).
func (s *Store) AuditLog(ctx context.Context, limit int) ([]desk.AuditEntry, error) {
	return newest[desk.AuditEntry](ctx, s, "audit log", s.kAudit(), limit)
}

// Leases.

// takeLease takes a free lease or extends it for its holder, in one step so the
// lease cannot expire between the two. KEYS lease; ARGV holder, ttl ms.
var takeLease = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// Lease takes the named lease for holder for ttl, or renews it when holder already
// has it. It reports whether holder has it now.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" || ttl < time.Millisecond {
		return false, fmt.Errorf("lease: %w", desk.ErrInvalid)
	}
	n, err := takeLease.Run(ctx, s.rdb, []string{s.kLease(name)}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, wrap("lease "+name, err)
	}
	return n == 1, nil
}
