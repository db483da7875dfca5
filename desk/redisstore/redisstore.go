// Package redisstore keeps the desk's state in Redis: users, sessions, contacts,
// phone registrations, operator presence, calls, and the sales records and data
// that outlive them. It implements desk.Store.
//
// It talks to redis.UniversalClient, so a single server, Sentinel or Cluster all
// work. Keys that must change together in one atomic step share a hash tag:
//
//	PREFIX{users}:all                hash  login -> user JSON (with credentials)
//	PREFIX{users}:version            string random token, changed by every write of {users}:all
//	PREFIXsession:TOKEN              string login, expires with the session
//	PREFIX{contacts}:contact:ID      string contact JSON
//	PREFIX{contacts}:phone:E164      string contact ID (one owner per number)
//	PREFIX{presence}:bindings:LOGIN  string []Binding JSON, expires with the last binding
//	PREFIX{presence}:registered      set   logins that have bindings
//	PREFIX{presence}:away            set   logins that set themselves away
//	PREFIX{presence}:claim:LOGIN     string "callID|status|unixms", the operator's reservation and since when
//	PREFIX{presence}:since           hash  "away:LOGIN" / "back:LOGIN" -> unix ms he went away / came back
//	PREFIX{presence}:idle            zset  login -> unix ms he last became free
//	PREFIX{presence}:pages:NODE      hash  login -> open pages on that node
//	PREFIX{presence}:nodes           zset  node -> unix ms of its last heartbeat
//	PREFIX{calls}:call:ID            string call JSON, kept
//	PREFIX{calls}:sip:SIPCALLID      string call ID, kept 7 days
//	PREFIX{calls}:live               set   IDs of ringing or talking calls
//
// Sales records of calls (records.go) share the {calls} tag; interests, promises,
// meetings, notes, history, pending wrap-ups and the audit log (sales.go) share
// {sales}. Those files list their keys.
//
// Every write of {users}:all must set {users}:version to a new token in the same
// MULTI or script, so that Stores on every node drop their decoded copy of the users
// (see Operators). A hand edit of the hash should DEL the version (it is then
// re-created), as a write through an older version of this package should; a user
// added or removed without touching the version is still noticed (by HLEN).
//
// Page counts are per node so a crashed node cannot keep an operator's page "open"
// forever: each Store that opened pages heartbeats its node and rewrites its own
// counts from memory; readers ignore (and prune) nodes whose heartbeat is older
// than the stale limit. Heartbeats use the nodes' clocks, so keep them in sync
// (NTP) to well under the stale limit.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/redis/go-redis/v9"
)

// sipIndexTTL is how long a SIP Call-ID still finds its call: long after any BYE.
const sipIndexTTL = 7 * 24 * time.Hour

// Store implements desk.Store on Redis. It is safe for concurrent use.
type Store struct {
	rdb       redis.UniversalClient
	prefix    string
	log       *slog.Logger
	heartbeat time.Duration
	stale     time.Duration
	now       func() time.Time

	mu     sync.Mutex
	pages  map[string]map[string]int // node -> login -> count opened through this Store
	hbStop chan struct{}
	hbDone chan struct{}
	closed bool

	// opUsers is the decoded operator list of the users hash, valid while
	// {users}:version and the hash's length are unchanged (see Operators).
	opUsers atomic.Pointer[opUsersCache]
	// bindMu guards bindMemo: per login, the last bindings value read and the
	// latest expiry in it, so Operators decodes a login's bindings only when they change.
	bindMu   sync.Mutex
	bindMemo map[string]bindingsMemo
}

var _ desk.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithPrefix sets the prefix of every key (default "desk:"). It must not contain
// "{" or "}", which would break the hash tags.
func WithPrefix(p string) Option { return func(s *Store) { s.prefix = p } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.log = l
		}
	}
}

// WithHeartbeat sets how often a node refreshes its page counts (default 10s) and
// after how long without a heartbeat its pages no longer count (default 30s).
func WithHeartbeat(every, staleAfter time.Duration) Option {
	return func(s *Store) {
		if every > 0 {
			s.heartbeat = every
		}
		if staleAfter > 0 {
			s.stale = staleAfter
		}
	}
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// New returns a Store on rdb. The caller owns rdb; Close stops only the heartbeat.
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	s := &Store{
		rdb:       rdb,
		prefix:    "desk:",
		log:       slog.Default(),
		heartbeat: 10 * time.Second,
		stale:     30 * time.Second,
		now:       time.Now,
		pages:     map[string]map[string]int{},
		bindMemo:  map[string]bindingsMemo{},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Close stops the page heartbeat. The node's pages then go stale on other nodes.
func (s *Store) Close() error {
	s.mu.Lock()
	stop, done := s.hbStop, s.hbDone
	s.hbStop, s.hbDone = nil, nil
	s.closed = true
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	return nil
}

// Keys.

func (s *Store) kUsers() string             { return s.prefix + "{users}:all" }
func (s *Store) kUsersVersion() string      { return s.prefix + "{users}:version" }
func (s *Store) kSession(tok string) string { return s.prefix + "session:" + tok }
func (s *Store) kContact(id string) string  { return s.prefix + "{contacts}:contact:" + id }
func (s *Store) kPhone(e164 string) string  { return s.prefix + "{contacts}:phone:" + e164 }
func (s *Store) kBindings(l string) string  { return s.prefix + "{presence}:bindings:" + l }
func (s *Store) kRegistered() string        { return s.prefix + "{presence}:registered" }
func (s *Store) kAway() string              { return s.prefix + "{presence}:away" }
func (s *Store) kClaim(l string) string     { return s.prefix + "{presence}:claim:" + l }
func (s *Store) kIdle() string              { return s.prefix + "{presence}:idle" }
func (s *Store) kPages(node string) string  { return s.prefix + "{presence}:pages:" + node }
func (s *Store) kNodes() string             { return s.prefix + "{presence}:nodes" }
func (s *Store) kCall(id string) string     { return s.prefix + "{calls}:call:" + id }
func (s *Store) kSIP(sipID string) string   { return s.prefix + "{calls}:sip:" + sipID }
func (s *Store) kByTime() string            { return s.prefix + "{calls}:bytime" }
func (s *Store) kLive() string              { return s.prefix + "{calls}:live" }

// Errors.

// unavailablePrefixes are Redis replies that mean "the server cannot serve now",
// not "the request is wrong".
var unavailablePrefixes = []string{"LOADING", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN", "READONLY", "BUSY"}

// wrap maps go-redis errors onto the desk sentinels: redis.Nil is ErrNotFound and
// anything that means the server could not be reached is ErrUnavailable.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("%s: %w", op, desk.ErrNotFound)
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		for _, p := range unavailablePrefixes {
			if strings.HasPrefix(rerr.Error(), p) {
				return fmt.Errorf("%s: %w: %w", op, desk.ErrUnavailable, err)
			}
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	// Network errors, timeouts, a closed client, a cancelled context: the store
	// could not answer, which is what callers need to know.
	return fmt.Errorf("%s: %w: %w", op, desk.ErrUnavailable, err)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// Ping checks the connection.
func (s *Store) Ping(ctx context.Context) error {
	return wrap("ping", s.rdb.Ping(ctx).Err())
}

// Users.

// userRecord is the stored form of a user: desk.User hides credentials from JSON
// on purpose, but the store must keep them.
type userRecord struct {
	Login        string    `json:"login"`
	Name         string    `json:"name"`
	Role         desk.Role `json:"role"`
	PasswordHash string    `json:"password_hash,omitempty"`
	SIPHA1       string    `json:"sip_ha1,omitempty"`
	Created      time.Time `json:"created"`
}

func (r *userRecord) user() *desk.User {
	return &desk.User{Login: r.Login, Name: r.Name, Role: r.Role, PasswordHash: r.PasswordHash, SIPHA1: r.SIPHA1, Created: r.Created}
}

// createUserScript adds a user unless the login is taken and, when it did, changes
// the users' version token. KEYS users hash, version; ARGV login, JSON, new token.
var createUserScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
return 1
`)

// CreateUser stores u; ErrExists when the login is taken.
func (s *Store) CreateUser(ctx context.Context, u *desk.User) error {
	if u == nil || u.Login == "" || !u.Role.Valid() {
		return fmt.Errorf("create user: %w", desk.ErrInvalid)
	}
	if u.Created.IsZero() {
		u.Created = s.now().UTC()
	}
	b, err := json.Marshal(userRecord{Login: u.Login, Name: u.Name, Role: u.Role, PasswordHash: u.PasswordHash, SIPHA1: u.SIPHA1, Created: u.Created})
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.Login, err)
	}
	n, err := createUserScript.Run(ctx, s.rdb, []string{s.kUsers(), s.kUsersVersion()}, u.Login, b, randomHex(8)).Int64()
	if err != nil {
		return wrap("create user "+u.Login, err)
	}
	if n == 0 {
		return fmt.Errorf("create user %s: %w", u.Login, desk.ErrExists)
	}
	return nil
}

// User returns one user; ErrNotFound when unknown.
func (s *Store) User(ctx context.Context, login string) (*desk.User, error) {
	b, err := s.rdb.HGet(ctx, s.kUsers(), login).Bytes()
	if err != nil {
		return nil, wrap("user "+login, err)
	}
	var r userRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("user %s: decode: %w", login, err)
	}
	return r.user(), nil
}

// Users returns every user, by login.
func (s *Store) Users(ctx context.Context) ([]*desk.User, error) {
	m, err := s.rdb.HGetAll(ctx, s.kUsers()).Result()
	if err != nil {
		return nil, wrap("users", err)
	}
	return decodeUsers(s.log, m), nil
}

func decodeUsers(log *slog.Logger, m map[string]string) []*desk.User {
	out := make([]*desk.User, 0, len(m))
	for login, v := range m {
		var r userRecord
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			log.Warn("redisstore: skipping undecodable user", "login", login, "err", err)
			continue
		}
		out = append(out, r.user())
	}
	slices.SortFunc(out, func(a, b *desk.User) int { return strings.Compare(a.Login, b.Login) })
	return out
}

// Sessions.

// CreateSession returns a random 32-byte base64url token that expires after ttl.
func (s *Store) CreateSession(ctx context.Context, login string, ttl time.Duration) (string, error) {
	if login == "" || ttl <= 0 {
		return "", fmt.Errorf("create session: %w", desk.ErrInvalid)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	if err := s.rdb.Set(ctx, s.kSession(tok), login, ttl).Err(); err != nil {
		return "", wrap("create session", err)
	}
	return tok, nil
}

// Session returns the login of a live session; ErrNotFound when expired or unknown.
func (s *Store) Session(ctx context.Context, token string) (string, error) {
	if token == "" {
		return "", fmt.Errorf("session: %w", desk.ErrNotFound)
	}
	login, err := s.rdb.Get(ctx, s.kSession(token)).Result()
	if err != nil {
		return "", wrap("session", err)
	}
	return login, nil
}

// DeleteSession ends a session; deleting an unknown one is not an error.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	return wrap("delete session", s.rdb.Del(ctx, s.kSession(token)).Err())
}

// Contacts.

// createContact stores the contact and claims its phones in one step, so two
// contacts can never own one number. KEYS[1] is the contact, the rest its phones.
var createContact = redis.NewScript(`
for i = 2, #KEYS do
  local owner = redis.call('GET', KEYS[i])
  if owner and owner ~= ARGV[2] then
    return {0, KEYS[i]}
  end
end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2])
end
redis.call('SET', KEYS[1], ARGV[1])
return {1, ''}
`)

func validE164(p string) bool {
	if len(p) < 3 || len(p) > 16 || p[0] != '+' || p[1] == '0' {
		return false
	}
	for _, r := range p[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// CreateContact assigns ID, Created and Updated and indexes every phone. A phone
// already indexed to another contact is ErrExists; a phone not in E.164 is ErrInvalid.
func (s *Store) CreateContact(ctx context.Context, c *desk.Contact) error {
	if c == nil {
		return fmt.Errorf("create contact: %w", desk.ErrInvalid)
	}
	var phones []string
	for _, p := range c.Phones {
		if !validE164(p) {
			return fmt.Errorf("create contact: phone %q is not E.164: %w", p, desk.ErrInvalid)
		}
		if !slices.Contains(phones, p) {
			phones = append(phones, p)
		}
	}
	c.Phones = phones
	if c.ID == "" {
		c.ID = randomHex(16)
	}
	now := s.now().UTC()
	if c.Created.IsZero() {
		c.Created = now
	}
	c.Updated = now
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("create contact: %w", err)
	}
	keys := []string{s.kContact(c.ID)}
	for _, p := range phones {
		keys = append(keys, s.kPhone(p))
	}
	res, err := createContact.Run(ctx, s.rdb, keys, b, c.ID).Slice()
	if err != nil {
		return wrap("create contact", err)
	}
	if len(res) == 2 {
		if n, _ := res[0].(int64); n == 0 {
			key, _ := res[1].(string)
			return fmt.Errorf("create contact: phone %s belongs to another contact: %w",
				strings.TrimPrefix(key, s.kPhone("")), desk.ErrExists)
		}
	}
	return nil
}

// Contact returns a contact by ID.
func (s *Store) Contact(ctx context.Context, id string) (*desk.Contact, error) {
	b, err := s.rdb.Get(ctx, s.kContact(id)).Bytes()
	if err != nil {
		return nil, wrap("contact "+id, err)
	}
	var c desk.Contact
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("contact %s: decode: %w", id, err)
	}
	return &c, nil
}

// ContactByPhone finds the contact owning an E.164 number.
func (s *Store) ContactByPhone(ctx context.Context, e164 string) (*desk.Contact, error) {
	id, err := s.rdb.Get(ctx, s.kPhone(e164)).Result()
	if err != nil {
		return nil, wrap("contact by phone "+e164, err)
	}
	return s.Contact(ctx, id)
}

// Bindings.

// PutBindings replaces the login's bindings. Bindings already expired are dropped;
// none left unregisters. The key expires with the last binding, so a phone that
// stops refreshing disappears even if no node is alive to notice.
func (s *Store) PutBindings(ctx context.Context, login string, bs []desk.Binding) error {
	now := s.now()
	live := make([]desk.Binding, 0, len(bs))
	var last time.Time
	for _, b := range bs {
		if b.Expires.After(now) {
			live = append(live, b)
			if b.Expires.After(last) {
				last = b.Expires
			}
		}
	}
	if len(live) == 0 {
		_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, s.kBindings(login))
			p.SRem(ctx, s.kRegistered(), login)
			return nil
		})
		return wrap("put bindings "+login, err)
	}
	b, err := json.Marshal(live)
	if err != nil {
		return fmt.Errorf("put bindings %s: %w", login, err)
	}
	ttl := max(last.Sub(now), time.Millisecond)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.kBindings(login), b, ttl)
		p.SAdd(ctx, s.kRegistered(), login)
		return nil
	})
	return wrap("put bindings "+login, err)
}

// Bindings returns the login's bindings that have not expired (none is not an error).
func (s *Store) Bindings(ctx context.Context, login string) ([]desk.Binding, error) {
	b, err := s.rdb.Get(ctx, s.kBindings(login)).Bytes()
	if errors.Is(err, redis.Nil) {
		// Keep the registered set honest when the key expired on its own.
		_ = s.rdb.SRem(ctx, s.kRegistered(), login).Err()
		return nil, nil
	}
	if err != nil {
		return nil, wrap("bindings "+login, err)
	}
	return s.liveBindings(login, b), nil
}

func (s *Store) liveBindings(login string, raw []byte) []desk.Binding {
	var all []desk.Binding
	if err := json.Unmarshal(raw, &all); err != nil {
		s.log.Warn("redisstore: undecodable bindings", "login", login, "err", err)
		return nil
	}
	now := s.now()
	live := all[:0]
	for _, b := range all {
		if b.Expires.After(now) {
			live = append(live, b)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live
}

// Registered returns the logins that have live bindings.
func (s *Store) Registered(ctx context.Context) ([]string, error) {
	logins, err := s.rdb.SMembers(ctx, s.kRegistered()).Result()
	if err != nil {
		return nil, wrap("registered", err)
	}
	var out []string
	for _, l := range logins {
		bs, err := s.Bindings(ctx, l)
		if err != nil {
			return nil, err
		}
		if len(bs) > 0 {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out, nil
}
