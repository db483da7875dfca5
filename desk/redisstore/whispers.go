package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/calldesk/desk/desk"
	"github.com/redis/go-redis/v9"
)

// Whispers share the {whispers} tag, so a whisper and its indexes change in one
// MULTI. Every index is a zset scored by the whisper's time (unix ms):
//
//	PREFIX{whispers}:w:ID              string whisper JSON
//	PREFIX{whispers}:op:LOGIN          zset   the operator's whispers, newest whisperCap kept
//	PREFIX{whispers}:call:CALLID       zset   the whispers sent during the call
//	PREFIX{whispers}:unacked           zset   whispers not yet acknowledged, every operator
//	PREFIX{whispers}:unacked:LOGIN     zset   the operator's unacknowledged whispers
//	PREFIX{whispers}:all               zset   every whisper, newest whispersAllCap kept

// Caps of the whisper indexes; the whispers themselves are kept (with their call).
const (
	whisperCap     = 500
	whispersAllCap = 10000
)

func (s *Store) kWhisper(id string) string     { return s.prefix + "{whispers}:w:" + id }
func (s *Store) kWhispersOp(l string) string   { return s.prefix + "{whispers}:op:" + l }
func (s *Store) kWhispersCall(c string) string { return s.prefix + "{whispers}:call:" + c }
func (s *Store) kWhispersUnacked() string      { return s.prefix + "{whispers}:unacked" }
func (s *Store) kWhispersUnackedOp(l string) string {
	return s.prefix + "{whispers}:unacked:" + l
}
func (s *Store) kWhispersAll() string { return s.prefix + "{whispers}:all" }

// SaveWhisper stores the whisper (assigning an ID and time when empty) and indexes
// it by operator, by call and, until it is acknowledged, among the unacknowledged.
// Saving it again with AckedAt set takes it out of the unacknowledged.
func (s *Store) SaveWhisper(ctx context.Context, w *desk.Whisper) error {
	if w == nil || w.Operator == "" {
		return fmt.Errorf("save whisper: %w", desk.ErrInvalid)
	}
	if w.ID == "" {
		w.ID = randomHex(16)
	}
	if w.At.IsZero() {
		w.At = s.now().UTC()
	}
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("save whisper %s: %w", w.ID, err)
	}
	z := redis.Z{Score: float64(w.At.UnixMilli()), Member: w.ID}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.kWhisper(w.ID), b, 0)
		p.ZAdd(ctx, s.kWhispersOp(w.Operator), z)
		p.ZRemRangeByRank(ctx, s.kWhispersOp(w.Operator), 0, -whisperCap-1)
		p.ZAdd(ctx, s.kWhispersAll(), z)
		p.ZRemRangeByRank(ctx, s.kWhispersAll(), 0, -whispersAllCap-1)
		if w.CallID != "" {
			p.ZAdd(ctx, s.kWhispersCall(w.CallID), z)
		}
		if w.AckedAt == nil {
			p.ZAdd(ctx, s.kWhispersUnacked(), z)
			p.ZAdd(ctx, s.kWhispersUnackedOp(w.Operator), z)
		} else {
			p.ZRem(ctx, s.kWhispersUnacked(), w.ID)
			p.ZRem(ctx, s.kWhispersUnackedOp(w.Operator), w.ID)
		}
		return nil
	})
	return wrap("save whisper "+w.ID, err)
}

// Whisper returns a whisper by ID.
func (s *Store) Whisper(ctx context.Context, id string) (*desk.Whisper, error) {
	if id == "" {
		return nil, fmt.Errorf("whisper: empty id: %w", desk.ErrNotFound)
	}
	b, err := s.rdb.Get(ctx, s.kWhisper(id)).Bytes()
	if err != nil {
		return nil, wrap("whisper "+id, err)
	}
	var w desk.Whisper
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("whisper %s: decode: %w", id, err)
	}
	return &w, nil
}

// Whispers returns the operator's whispers ("" for every operator), oldest first;
// with unackedOnly only those not yet acknowledged.
func (s *Store) Whispers(ctx context.Context, operator string, unackedOnly bool) ([]*desk.Whisper, error) {
	var key string
	switch {
	case operator == "" && unackedOnly:
		key = s.kWhispersUnacked()
	case operator == "":
		key = s.kWhispersAll()
	case unackedOnly:
		key = s.kWhispersUnackedOp(operator)
	default:
		key = s.kWhispersOp(operator)
	}
	ws, err := s.whispersIn(ctx, "whispers of "+operator, key)
	if err != nil || !unackedOnly {
		return ws, err
	}
	// The index is kept by SaveWhisper; the check guards against a half-applied write.
	return slices.DeleteFunc(ws, func(w *desk.Whisper) bool { return w.AckedAt != nil }), nil
}

// CallWhispers returns the whispers sent while the operator was on the call, oldest first.
func (s *Store) CallWhispers(ctx context.Context, callID string) ([]*desk.Whisper, error) {
	if callID == "" {
		return []*desk.Whisper{}, nil
	}
	return s.whispersIn(ctx, "whispers of call "+callID, s.kWhispersCall(callID))
}

func (s *Store) whispersIn(ctx context.Context, op, key string) ([]*desk.Whisper, error) {
	ids, err := s.rdb.ZRange(ctx, key, 0, -1).Result()
	if err != nil {
		return nil, wrap(op, err)
	}
	out := make([]*desk.Whisper, 0, len(ids))
	err = s.getJSON(ctx, op, ids, s.kWhisper, func(id string, b []byte) {
		var w desk.Whisper
		if err := json.Unmarshal(b, &w); err != nil {
			s.log.Warn("redisstore: skipping undecodable whisper", "id", id, "err", err)
			return
		}
		out = append(out, &w)
	})
	if err != nil {
		return nil, err
	}
	// Whispers of one millisecond keep a stable order.
	slices.SortStableFunc(out, func(a, b *desk.Whisper) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}
