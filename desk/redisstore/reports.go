package redisstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/calldesk/desk/desk"
	"github.com/redis/go-redis/v9"
)

// Batch readers for reports, and the admin's channel costs:
//
//	PREFIX config:costs   string  JSON desk.ChannelCosts

func (s *Store) kCosts() string { return s.prefix + "config:costs" }

// batchSize bounds one pipeline, so a report over many calls does not build one
// enormous reply in memory at once.
const batchSize = 1000

// chunks calls f with consecutive slices of ids of at most batchSize.
func chunks(ids []string, f func(part []string) error) error {
	for len(ids) > 0 {
		n := min(len(ids), batchSize)
		if err := f(ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// Records returns the sales records of the calls that have one, by call ID, read in
// pipelines (one round trip per batchSize calls).
func (s *Store) Records(ctx context.Context, callIDs []string) (map[string]*desk.Record, error) {
	out := make(map[string]*desk.Record, len(callIDs))
	err := chunks(callIDs, func(ids []string) error {
		meta := make([]*redis.MapStringStringCmd, len(ids))
		answers := make([]*redis.MapStringStringCmd, len(ids))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				meta[i] = p.HGetAll(ctx, s.kRecord(id))
				answers[i] = p.HGetAll(ctx, s.kAnswers(id))
			}
			return nil
		})
		if err != nil {
			return wrap("records", err)
		}
		for i, id := range ids {
			if len(meta[i].Val()) == 0 {
				continue
			}
			rec, err := decodeRecord(id, meta[i].Val(), answers[i].Val())
			if err != nil {
				s.log.Warn("redisstore: skipping undecodable record", "call", id, "err", err)
				continue
			}
			out[id] = rec
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CallsByID returns the calls that exist among ids, by ID.
func (s *Store) CallsByID(ctx context.Context, ids []string) (map[string]*desk.Call, error) {
	out := make(map[string]*desk.Call, len(ids))
	err := chunks(ids, func(part []string) error {
		return s.getJSON(ctx, "calls by id", part, s.kCall, func(id string, b []byte) {
			var c desk.Call
			if err := json.Unmarshal(b, &c); err != nil {
				s.log.Warn("redisstore: skipping undecodable call", "id", id, "err", err)
				return
			}
			out[id] = &c
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Histories returns the contacts' past calls, newest first, by contact ID.
func (s *Store) Histories(ctx context.Context, contactIDs []string) (map[string][]desk.CallSummary, error) {
	out := make(map[string][]desk.CallSummary, len(contactIDs))
	err := chunks(contactIDs, func(ids []string) error {
		cmds := make([]*redis.StringSliceCmd, len(ids))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.LRange(ctx, s.kHistory(id), 0, -1)
			}
			return nil
		})
		if err != nil {
			return wrap("histories", err)
		}
		for i, id := range ids {
			for _, raw := range cmds[i].Val() {
				var cs desk.CallSummary
				if err := json.Unmarshal([]byte(raw), &cs); err != nil {
					s.log.Warn("redisstore: skipping undecodable history entry", "contact", id, "err", err)
					continue
				}
				out[id] = append(out[id], cs)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ChannelCosts returns the admin's channel costs; nil when none were entered.
func (s *Store) ChannelCosts(ctx context.Context) (*desk.ChannelCosts, error) {
	b, err := s.rdb.Get(ctx, s.kCosts()).Bytes()
	if isNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("channel costs", err)
	}
	var c desk.ChannelCosts
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("channel costs: decode: %w", err)
	}
	return &c, nil
}

// SetChannelCosts stores the admin's channel costs; nil or no costs clears them.
func (s *Store) SetChannelCosts(ctx context.Context, c *desk.ChannelCosts) error {
	if c == nil || len(c.Costs) == 0 {
		return wrap("clear channel costs", s.rdb.Del(ctx, s.kCosts()).Err())
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("set channel costs: %w", err)
	}
	return wrap("set channel costs", s.rdb.Set(ctx, s.kCosts(), b, 0).Err())
}
