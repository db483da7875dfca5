package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/redis/go-redis/v9"
)

// claimScript reserves an operator: SET NX PX, except that the call already
// holding him may claim again (a retransmitted INVITE) and refresh its status.
// The value is "callID|status|unixms" so presence readers see what he is doing and
// since when: the time is kept while the status stays, and restarts when it changes.
// KEYS claim; ARGV callID, status, ttl ms, now ms.
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
local since = ARGV[4]
if v then
  local held, st, t = string.match(v, '^([^|]*)|?([^|]*)|?([^|]*)$')
  if held ~= ARGV[1] then return 0 end
  if st == ARGV[2] and t ~= '' then since = t end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2] .. '|' .. since, 'PX', ARGV[3])
return 1
`)

// updateClaimScript changes the status and ttl of a claim only its call holds; the
// state's start time restarts when the status changes. ARGV as claimScript.
var updateClaimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return -1 end
local held, st, t = string.match(v, '^([^|]*)|?([^|]*)|?([^|]*)$')
if held ~= ARGV[1] then return 0 end
local since = ARGV[4]
if st == ARGV[2] and t ~= '' then since = t end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2] .. '|' .. since, 'PX', ARGV[3])
return 1
`)

// releaseScript is compare-and-delete: a late Release from a call that lost the
// operator (its claim expired and another call took him) must not free him. The
// operator becomes idle now unless another call holds him.
var releaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  local held = string.match(v, '^([^|]*)')
  if held ~= ARGV[1] then return 0 end
  redis.call('DEL', KEYS[1])
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
`)

func ttlMillis(ttl time.Duration) int64 { return max(ttl.Milliseconds(), 1) }

// Claim reserves a free operator for callID for ttl; ErrClaimed when another call
// holds him, on any node.
func (s *Store) Claim(ctx context.Context, login, callID string, status desk.Status, ttl time.Duration) error {
	if login == "" || callID == "" || strings.Contains(callID, "|") {
		return fmt.Errorf("claim %s: %w", login, desk.ErrInvalid)
	}
	n, err := claimScript.Run(ctx, s.rdb, []string{s.kClaim(login)}, callID, string(status), ttlMillis(ttl),
		s.now().UnixMilli()).Int64()
	if err != nil {
		return wrap("claim "+login, err)
	}
	if n == 0 {
		return fmt.Errorf("claim %s for %s: %w", login, callID, desk.ErrClaimed)
	}
	return nil
}

// UpdateClaim changes the status and ttl of the claim callID holds on login, e.g.
// ringing → talking with a long ttl once answered. ErrNotFound when the claim is
// gone, ErrClaimed when another call holds him.
func (s *Store) UpdateClaim(ctx context.Context, login, callID string, status desk.Status, ttl time.Duration) error {
	n, err := updateClaimScript.Run(ctx, s.rdb, []string{s.kClaim(login)}, callID, string(status), ttlMillis(ttl),
		s.now().UnixMilli()).Int64()
	if err != nil {
		return wrap("update claim "+login, err)
	}
	switch n {
	case -1:
		return fmt.Errorf("update claim %s for %s: %w", login, callID, desk.ErrNotFound)
	case 0:
		return fmt.Errorf("update claim %s for %s: %w", login, callID, desk.ErrClaimed)
	}
	return nil
}

// Release frees the operator if callID still holds him and marks him idle now.
func (s *Store) Release(ctx context.Context, login, callID string) error {
	err := releaseScript.Run(ctx, s.rdb, []string{s.kClaim(login), s.kIdle()},
		callID, s.now().UnixMilli(), login).Err()
	return wrap("release "+login, err)
}

// setAwayScript sets or clears the away flag and remembers, for Operator.Since,
// when he went away (kept while he stays away) and when he came back (only when he
// was away). KEYS away set, since hash; ARGV login, "1" to go away, now ms.
var setAwayScript = redis.NewScript(`
if ARGV[2] == '1' then
  if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
    redis.call('HSET', KEYS[2], 'away:' .. ARGV[1], ARGV[3])
  end
elseif redis.call('SREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[2], 'away:' .. ARGV[1])
  redis.call('HSET', KEYS[2], 'back:' .. ARGV[1], ARGV[3])
end
return 1
`)

// kSince is the hash of presence start times: "away:LOGIN" and "back:LOGIN" -> unix ms.
func (s *Store) kSince() string { return s.prefix + "{presence}:since" }

// SetAway sets or clears the operator's own away flag.
func (s *Store) SetAway(ctx context.Context, login string, away bool) error {
	flag := "0"
	if away {
		flag = "1"
	}
	err := setAwayScript.Run(ctx, s.rdb, []string{s.kAway(), s.kSince()}, login, flag, s.now().UnixMilli()).Err()
	return wrap("set away "+login, err)
}

// PageOpened counts one more desk page of login on node.
func (s *Store) PageOpened(ctx context.Context, login, node string) error {
	return s.pageDelta(ctx, login, node, +1)
}

// PageClosed counts one page fewer; never below zero.
func (s *Store) PageClosed(ctx context.Context, login, node string) error {
	return s.pageDelta(ctx, login, node, -1)
}

// pageDelta keeps the node's counts in memory and writes the absolute value, under
// the lock so writes reach Redis in the order they happened. Memory is the truth for
// this node: the heartbeat rewrites it, which also repairs a failed write.
func (s *Store) pageDelta(ctx context.Context, login, node string, d int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.pages[node]
	if m == nil {
		m = map[string]int{}
		s.pages[node] = m
	}
	n := max(m[login]+d, 0)
	if n == 0 {
		delete(m, login)
	} else {
		m[login] = n
	}
	s.startHeartbeatLocked()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if n == 0 {
			p.HDel(ctx, s.kPages(node), login)
		} else {
			p.HSet(ctx, s.kPages(node), login, n)
		}
		p.ZAdd(ctx, s.kNodes(), redis.Z{Score: float64(s.now().UnixMilli()), Member: node})
		return nil
	})
	return wrap("page count "+login, err)
}

func (s *Store) startHeartbeatLocked() {
	if s.closed || s.hbStop != nil {
		return
	}
	s.hbStop, s.hbDone = make(chan struct{}), make(chan struct{})
	go s.heartbeatLoop(s.hbStop, s.hbDone)
}

func (s *Store) heartbeatLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.heartbeat)
			if err := s.Heartbeat(ctx); err != nil {
				s.log.Warn("redisstore: page heartbeat failed", "err", err)
			}
			cancel()
		}
	}
}

// Heartbeat rewrites this Store's page counts and marks its nodes alive. It runs
// on its own once a page was opened; it is exported for tests and for wiring that
// wants to beat on its own schedule.
func (s *Store) Heartbeat(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := float64(s.now().UnixMilli())
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for node, m := range s.pages {
			p.Del(ctx, s.kPages(node))
			if len(m) > 0 {
				vals := make([]any, 0, 2*len(m))
				for l, n := range m {
					vals = append(vals, l, n)
				}
				p.HSet(ctx, s.kPages(node), vals...)
			}
			p.ZAdd(ctx, s.kNodes(), redis.Z{Score: now, Member: node})
		}
		return nil
	})
	return wrap("heartbeat", err)
}

// Operators returns every user with role operator and his presence, by login, in
// two round trips (three when the users changed).
//
// The operators among the users are decoded once and kept while the users hash is
// unchanged: every write of it changes {users}:version, which this reads with the
// presence, together with the hash's length (so a user added or removed by a writer
// that does not know the version is seen too). Claims and bindings all carry the
// {presence} tag, so they are read with a few MGETs rather than two GETs each, and
// an operator's bindings are decoded again only when their value changed.
func (s *Store) Operators(ctx context.Context) ([]*desk.Operator, error) {
	now := s.now()
	freshFrom := strconv.FormatInt(now.Add(-s.stale).UnixMilli(), 10)
	var (
		countCmd *redis.IntCmd
		awayCmd  *redis.StringSliceCmd
		idleCmd  *redis.ZSliceCmd
		sinceCmd *redis.MapStringStringCmd
		nodesCmd *redis.StringSliceCmd
		staleCmd *redis.StringSliceCmd
		verCmd   *redis.StringCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		countCmd = p.HLen(ctx, s.kUsers())
		awayCmd = p.SMembers(ctx, s.kAway())
		idleCmd = p.ZRangeWithScores(ctx, s.kIdle(), 0, -1)
		sinceCmd = p.HGetAll(ctx, s.kSince())
		nodesCmd = p.ZRangeByScore(ctx, s.kNodes(), &redis.ZRangeBy{Min: freshFrom, Max: "+inf"})
		staleCmd = p.ZRangeByScore(ctx, s.kNodes(), &redis.ZRangeBy{Min: "-inf", Max: "(" + freshFrom})
		verCmd = p.Get(ctx, s.kUsersVersion()) // last: the only command that may be redis.Nil
		return nil
	})
	if err != nil && !isNil(err) {
		return nil, wrap("operators", err)
	}
	if err := verCmd.Err(); err != nil && !isNil(err) {
		return nil, wrap("operators", err)
	}
	users := s.opUsers.Load()
	if users == nil || verCmd.Val() == "" || users.version != verCmd.Val() || users.count != countCmd.Val() {
		if users, err = s.loadOpUsers(ctx); err != nil {
			return nil, err
		}
	}
	if len(users.ops) == 0 {
		return nil, nil
	}
	awayList := awayCmd.Val()
	away := make(map[string]struct{}, len(awayList))
	for _, l := range awayList {
		away[l] = struct{}{}
	}
	since := sinceCmd.Val()
	idleList := idleCmd.Val()
	idle := make(map[string]time.Time, len(idleList))
	for _, z := range idleList {
		if m, ok := z.Member.(string); ok {
			idle[m] = time.UnixMilli(int64(z.Score)).UTC()
		}
	}

	nodes := nodesCmd.Val()
	pagesCmds := make([]*redis.MapStringStringCmd, len(nodes))
	getCmds := make([]*redis.SliceCmd, len(users.mgets))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, node := range nodes {
			pagesCmds[i] = p.HGetAll(ctx, s.kPages(node))
		}
		for i, args := range users.mgets {
			getCmds[i] = redis.NewSliceCmd(ctx, args...)
			_ = p.Process(ctx, getCmds[i])
		}
		return nil
	})
	if err != nil {
		return nil, wrap("operators", err)
	}
	vals := make([]any, 0, 2*len(users.ops))
	for _, c := range getCmds {
		vals = append(vals, c.Val()...)
	}
	if len(vals) != 2*len(users.ops) {
		return nil, fmt.Errorf("operators: MGET returned %d values for %d keys", len(vals), 2*len(users.ops))
	}
	pageOpen := map[string]bool{}
	for _, c := range pagesCmds {
		for login, n := range c.Val() {
			if v, _ := strconv.Atoi(n); v > 0 {
				pageOpen[login] = true
			}
		}
	}
	bindNow := s.now()
	all := make([]desk.Operator, len(users.ops))
	ops := make([]*desk.Operator, len(users.ops))
	s.bindMu.Lock()
	for i, u := range users.ops {
		o := &all[i]
		ops[i] = o
		o.Login, o.Name = u.login, u.name
		_, o.Away = away[o.Login]
		o.PageOpen = pageOpen[o.Login]
		o.IdleSince = idle[o.Login]
		if raw, ok := vals[2*i+1].(string); ok {
			o.Registered = s.latestBindingLocked(o.Login, raw).After(bindNow)
		} else {
			delete(s.bindMemo, o.Login)
		}
		claim, _ := vals[2*i].(string)
		setStatus(o, claim, since["away:"+o.Login], since["back:"+o.Login])
	}
	s.bindMu.Unlock()
	if stale := staleCmd.Val(); len(stale) > 0 {
		s.pruneNodes(ctx, stale)
	}
	return ops, nil
}

// setStatus derives an operator's status and its start from his claim, and from
// when he last went away and came back (unix ms strings), once Away, PageOpen,
// Registered and IdleSince are set.
func setStatus(o *desk.Operator, claim, awayMS, backMS string) {
	switch {
	case claim != "":
		o.CallID, o.Status, o.Since = splitClaim(claim)
	case o.Away:
		o.Status = desk.StatusAway
		o.Since = msTime(awayMS)
	case o.PageOpen || o.Registered:
		o.Status = desk.StatusAvailable
		o.Since = o.IdleSince
		if back := msTime(backMS); back.After(o.Since) {
			o.Since = back
		}
	default:
		o.Status = desk.StatusOffline
	}
}

// Operator returns one operator as Operators would, in two round trips whatever
// the size of the team: the REGISTER path publishes one phone's presence, and
// must not read every operator to do it. ErrNotFound when login is no operator.
func (s *Store) Operator(ctx context.Context, login string) (*desk.Operator, error) {
	freshFrom := strconv.FormatInt(s.now().Add(-s.stale).UnixMilli(), 10)
	var (
		userCmd  *redis.StringCmd
		awayCmd  *redis.BoolCmd
		idleCmd  *redis.FloatCmd
		sinceCmd *redis.SliceCmd
		nodesCmd *redis.StringSliceCmd
		claimCmd *redis.StringCmd
		bindCmd  *redis.StringCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		userCmd = p.HGet(ctx, s.kUsers(), login)
		awayCmd = p.SIsMember(ctx, s.kAway(), login)
		idleCmd = p.ZScore(ctx, s.kIdle(), login)
		sinceCmd = p.HMGet(ctx, s.kSince(), "away:"+login, "back:"+login)
		nodesCmd = p.ZRangeByScore(ctx, s.kNodes(), &redis.ZRangeBy{Min: freshFrom, Max: "+inf"})
		claimCmd = p.Get(ctx, s.kClaim(login))
		bindCmd = p.Get(ctx, s.kBindings(login))
		return nil
	})
	if err != nil && !isNil(err) {
		return nil, wrap("operator "+login, err)
	}
	raw, err := userCmd.Bytes()
	if err != nil {
		return nil, wrap("operator "+login, err)
	}
	var r userRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("operator %s: decode: %w", login, err)
	}
	if r.Role != desk.RoleOperator {
		return nil, fmt.Errorf("operator %s: %w", login, desk.ErrNotFound)
	}
	o := &desk.Operator{Login: r.Login, Name: r.Name, Away: awayCmd.Val()}
	if score, err := idleCmd.Result(); err == nil {
		o.IdleSince = time.UnixMilli(int64(score)).UTC()
	}
	nodes := nodesCmd.Val()
	if len(nodes) > 0 {
		pages := make([]*redis.StringCmd, len(nodes))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, n := range nodes {
				pages[i] = p.HGet(ctx, s.kPages(n), login)
			}
			return nil
		})
		if err != nil && !isNil(err) {
			return nil, wrap("operator "+login, err)
		}
		for _, c := range pages {
			if v, _ := strconv.Atoi(c.Val()); v > 0 {
				o.PageOpen = true
			}
		}
	}
	if b, err := bindCmd.Result(); err == nil {
		s.bindMu.Lock()
		o.Registered = s.latestBindingLocked(login, b).After(s.now())
		s.bindMu.Unlock()
	}
	since := sinceCmd.Val()
	str := func(i int) string {
		if i < len(since) {
			if v, ok := since[i].(string); ok {
				return v
			}
		}
		return ""
	}
	setStatus(o, claimCmd.Val(), str(0), str(1))
	return o, nil
}

// mgetChunk is how many keys one MGET of Operators reads: a few large commands
// rather than one huge one, all in one pipeline.
const mgetChunk = 1024

// opUsersCache is the operators among the users, read under one version token.
type opUsersCache struct {
	version string   // {users}:version when the hash was read
	count   int64    // the hash's length then (undecodable users included)
	ops     []opUser // by login
	// mgets are the arguments of the MGETs that read, per operator, his claim and
	// then his bindings; built once, shared read-only by concurrent calls.
	mgets [][]any
}

type opUser struct{ login, name string }

// bindingsMemo is the last bindings value read for a login and the latest expiry
// among its bindings (zero when undecodable or empty).
type bindingsMemo struct {
	raw    string
	latest time.Time
}

// loadOpUsers reads the users hash with its version token, in one MULTI (both carry
// the {users} tag), and keeps the operators among them. A store written before the
// token existed gets one now, so it is cached too; a later write changes it.
func (s *Store) loadOpUsers(ctx context.Context) (*opUsersCache, error) {
	var (
		verCmd   *redis.StringCmd
		usersCmd *redis.MapStringStringCmd
	)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, s.kUsersVersion(), randomHex(8), 0)
		verCmd = p.Get(ctx, s.kUsersVersion())
		usersCmd = p.HGetAll(ctx, s.kUsers())
		return nil
	})
	if err != nil {
		return nil, wrap("operators", err)
	}
	all := usersCmd.Val()
	c := &opUsersCache{version: verCmd.Val(), count: int64(len(all))}
	var keys []any
	for _, u := range decodeUsers(s.log, all) {
		if u.Role == desk.RoleOperator {
			c.ops = append(c.ops, opUser{login: u.Login, name: u.Name})
			keys = append(keys, s.kClaim(u.Login), s.kBindings(u.Login))
		}
	}
	for chunk := range slices.Chunk(keys, mgetChunk) {
		c.mgets = append(c.mgets, append([]any{"mget"}, chunk...))
	}
	if c.version != "" {
		s.opUsers.Store(c)
	}
	s.bindMu.Lock()
	for login := range s.bindMemo {
		if _, ok := slices.BinarySearchFunc(c.ops, login, func(u opUser, l string) int { return strings.Compare(u.login, l) }); !ok {
			delete(s.bindMemo, login)
		}
	}
	s.bindMu.Unlock()
	return c, nil
}

// latestBindingLocked returns the latest expiry among the bindings in raw, decoding
// them only when raw differs from what was last read for login. bindMu is held.
func (s *Store) latestBindingLocked(login, raw string) time.Time {
	if m, ok := s.bindMemo[login]; ok && m.raw == raw {
		return m.latest
	}
	var latest time.Time
	var all []desk.Binding
	if err := json.Unmarshal([]byte(raw), &all); err != nil {
		s.log.Warn("redisstore: undecodable bindings", "login", login, "err", err)
		all = nil
	}
	for _, b := range all {
		if b.Expires.After(latest) {
			latest = b.Expires
		}
	}
	s.bindMemo[login] = bindingsMemo{raw: raw, latest: latest}
	return latest
}

// pruneNodes forgets nodes that stopped heartbeating (crashed or partitioned). A
// node that was only slow rewrites its counts on its next heartbeat.
func (s *Store) pruneNodes(ctx context.Context, nodes []string) {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, n := range nodes {
			p.Del(ctx, s.kPages(n))
			p.ZRem(ctx, s.kNodes(), n)
		}
		return nil
	})
	if err != nil {
		s.log.Warn("redisstore: pruning stale nodes failed", "nodes", nodes, "err", err)
	}
}

// splitClaim reads a claim value "callID|status|unixms" (older values lack the
// time, or the status too).
func splitClaim(v string) (callID string, st desk.Status, since time.Time) {
	callID, rest, _ := strings.Cut(v, "|")
	status, ms, _ := strings.Cut(rest, "|")
	st = desk.Status(status)
	if st == "" {
		st = desk.StatusRinging
	}
	return callID, st, msTime(ms)
}

// msTime reads unix milliseconds; zero time when empty or not a number.
func msTime(ms string) time.Time {
	if ms == "" {
		return time.Time{}
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

func isNil(err error) bool { return err == redis.Nil }
