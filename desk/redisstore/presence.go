package redisstore

import (
	"context"
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
// two round trips.
func (s *Store) Operators(ctx context.Context) ([]*desk.Operator, error) {
	now := s.now()
	freshFrom := strconv.FormatInt(now.Add(-s.stale).UnixMilli(), 10)
	var (
		usersCmd *redis.MapStringStringCmd
		awayCmd  *redis.StringSliceCmd
		idleCmd  *redis.ZSliceCmd
		sinceCmd *redis.MapStringStringCmd
		nodesCmd *redis.StringSliceCmd
		staleCmd *redis.StringSliceCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		usersCmd = p.HGetAll(ctx, s.kUsers())
		awayCmd = p.SMembers(ctx, s.kAway())
		idleCmd = p.ZRangeWithScores(ctx, s.kIdle(), 0, -1)
		sinceCmd = p.HGetAll(ctx, s.kSince())
		nodesCmd = p.ZRangeByScore(ctx, s.kNodes(), &redis.ZRangeBy{Min: freshFrom, Max: "+inf"})
		staleCmd = p.ZRangeByScore(ctx, s.kNodes(), &redis.ZRangeBy{Min: "-inf", Max: "(" + freshFrom})
		return nil
	})
	if err != nil {
		return nil, wrap("operators", err)
	}
	var ops []*desk.Operator
	for _, u := range decodeUsers(s.log, usersCmd.Val()) {
		if u.Role == desk.RoleOperator {
			ops = append(ops, &desk.Operator{Login: u.Login, Name: u.Name})
		}
	}
	if len(ops) == 0 {
		return ops, nil
	}
	away := awayCmd.Val()
	since := sinceCmd.Val()
	idle := map[string]time.Time{}
	for _, z := range idleCmd.Val() {
		if m, ok := z.Member.(string); ok {
			idle[m] = time.UnixMilli(int64(z.Score)).UTC()
		}
	}

	pagesCmds := map[string]*redis.MapStringStringCmd{}
	claimCmds := make([]*redis.StringCmd, len(ops))
	bindCmds := make([]*redis.StringCmd, len(ops))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, node := range nodesCmd.Val() {
			pagesCmds[node] = p.HGetAll(ctx, s.kPages(node))
		}
		for i, o := range ops {
			claimCmds[i] = p.Get(ctx, s.kClaim(o.Login))
			bindCmds[i] = p.Get(ctx, s.kBindings(o.Login))
		}
		return nil
	})
	if err != nil && !isNil(err) {
		return nil, wrap("operators", err)
	}
	pageOpen := map[string]bool{}
	for _, c := range pagesCmds {
		for login, n := range c.Val() {
			if v, _ := strconv.Atoi(n); v > 0 {
				pageOpen[login] = true
			}
		}
	}
	for i, o := range ops {
		o.Away = slices.Contains(away, o.Login)
		o.PageOpen = pageOpen[o.Login]
		o.IdleSince = idle[o.Login]
		if raw, err := bindCmds[i].Bytes(); err == nil {
			o.Registered = len(s.liveBindings(o.Login, raw)) > 0
		}
		claim, _ := claimCmds[i].Result()
		switch {
		case claim != "":
			o.CallID, o.Status, o.Since = splitClaim(claim)
		case o.Away:
			o.Status = desk.StatusAway
			o.Since = msTime(since["away:"+o.Login])
		case o.PageOpen || o.Registered:
			o.Status = desk.StatusAvailable
			o.Since = o.IdleSince
			if back := msTime(since["back:"+o.Login]); back.After(o.Since) {
				o.Since = back
			}
		default:
			o.Status = desk.StatusOffline
		}
	}
	if stale := staleCmd.Val(); len(stale) > 0 {
		s.pruneNodes(ctx, stale)
	}
	return ops, nil
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
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

func isNil(err error) bool { return err == redis.Nil }
