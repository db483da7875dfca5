package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/redis/go-redis/v9"
)

// SaveCall stores the call, its SIP index and its place in the live set at once.
func (s *Store) SaveCall(ctx context.Context, c *desk.Call) error {
	if c == nil || c.ID == "" {
		return fmt.Errorf("save call: %w", desk.ErrInvalid)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("save call %s: %w", c.ID, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.kCall(c.ID), b, 0)
		if c.SIPCallID != "" {
			p.Set(ctx, s.kSIP(c.SIPCallID), c.ID, sipIndexTTL)
		}
		if !c.Started.IsZero() {
			p.ZAdd(ctx, s.kByTime(), redis.Z{Score: float64(c.Started.UnixMilli()), Member: c.ID})
		}
		if c.Live() {
			p.SAdd(ctx, s.kLive(), c.ID)
		} else {
			p.SRem(ctx, s.kLive(), c.ID)
		}
		return nil
	})
	return wrap("save call "+c.ID, err)
}

// Call returns a call by ID.
func (s *Store) Call(ctx context.Context, id string) (*desk.Call, error) {
	b, err := s.rdb.Get(ctx, s.kCall(id)).Bytes()
	if err != nil {
		return nil, wrap("call "+id, err)
	}
	var c desk.Call
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("call %s: decode: %w", id, err)
	}
	return &c, nil
}

// CallBySIPID finds a call by its SIP Call-ID.
func (s *Store) CallBySIPID(ctx context.Context, sipCallID string) (*desk.Call, error) {
	id, err := s.rdb.Get(ctx, s.kSIP(sipCallID)).Result()
	if err != nil {
		return nil, wrap("call by sip id "+sipCallID, err)
	}
	return s.Call(ctx, id)
}

// CallsBetween returns the calls started in [from, to), oldest first: what reports
// and the board's counts aggregate.
func (s *Store) CallsBetween(ctx context.Context, from, to time.Time) ([]*desk.Call, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.kByTime(), &redis.ZRangeBy{
		Min: strconv.FormatInt(from.UnixMilli(), 10), Max: "(" + strconv.FormatInt(to.UnixMilli(), 10)}).Result()
	if err != nil {
		return nil, wrap("calls between", err)
	}
	return s.callsByID(ctx, ids)
}

// callsByID reads calls in one pipeline, in the order of ids, skipping any gone.
func (s *Store) callsByID(ctx context.Context, ids []string) ([]*desk.Call, error) {
	out := make([]*desk.Call, 0, len(ids))
	err := s.getJSON(ctx, "calls", ids, s.kCall, func(_ string, b []byte) {
		var c desk.Call
		if json.Unmarshal(b, &c) == nil {
			out = append(out, &c)
		}
	})
	return out, err
}

// LiveCalls returns the calls ringing or in talk, oldest first.
func (s *Store) LiveCalls(ctx context.Context) ([]*desk.Call, error) {
	ids, err := s.rdb.SMembers(ctx, s.kLive()).Result()
	if err != nil {
		return nil, wrap("live calls", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, s.kCall(id))
		}
		return nil
	})
	if err != nil && !isNil(err) {
		return nil, wrap("live calls", err)
	}
	var out []*desk.Call
	var gone []any
	for i, cmd := range cmds {
		b, err := cmd.Bytes()
		if err != nil {
			gone = append(gone, ids[i])
			continue
		}
		var c desk.Call
		if err := json.Unmarshal(b, &c); err != nil || !c.Live() {
			gone = append(gone, ids[i])
			continue
		}
		out = append(out, &c)
	}
	if len(gone) > 0 {
		_ = s.rdb.SRem(ctx, s.kLive(), gone...).Err()
	}
	slices.SortFunc(out, func(a, b *desk.Call) int { return a.Started.Compare(b.Started) })
	return out, nil
}
