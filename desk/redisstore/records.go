package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/redis/go-redis/v9"
)

// A call's sales record lives in three keys under the {calls} tag, so the Lua
// script that applies an answer touches one Cluster slot:
//
//	PREFIX{calls}:record:ID   hash  metadata (call_id, operator, ..., ops, updated, range, wrapup)
//	PREFIX{calls}:answers:ID  hash  bind -> value
//	PREFIX{calls}:ops:ID      set   op ids applied, expires opsTTL after the last op
//
// Answers are a hash of their own so an op changes only its fields: two tabs that
// answer different questions never overwrite each other.

// opsTTL is how long an applied op id is remembered: far longer than any page
// could hold an unsent op, short enough that the set does not grow for ever.
const opsTTL = 30 * 24 * time.Hour

func (s *Store) kRecord(id string) string  { return s.prefix + "{calls}:record:" + id }
func (s *Store) kAnswers(id string) string { return s.prefix + "{calls}:answers:" + id }
func (s *Store) kOps(id string) string     { return s.prefix + "{calls}:ops:" + id }

// Metadata fields of the record hash.
const (
	fCallID         = "call_id"
	fOperator       = "operator"
	fContactID      = "contact_id"
	fLine           = "line"
	fScript         = "script"
	fStep           = "step"
	fOps            = "ops"
	fUpdated        = "updated"
	fPresetSource   = "preset_source"
	fSourceMismatch = "source_mismatch"
	fRange          = "range"
	fWrapup         = "wrapup"
)

// applyAnswers applies one op once.
//
//	KEYS: record, answers, ops
//	ARGV: op id, step, updated, ops ttl ms, n meta pairs, meta pairs..., answer pairs...
//
// Metadata pairs fill fields that are absent or empty (the record's creation data:
// operator, contact, line, script, preset source) and never overwrite. An empty
// answer value deletes the answer. An empty op id is applied without being
// remembered. Returns {applied, HGETALL record, HGETALL answers}.
var applyAnswers = redis.NewScript(`
local op = ARGV[1]
if op ~= '' and redis.call('SISMEMBER', KEYS[3], op) == 1 then
  return {0, redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
end
local nmeta = tonumber(ARGV[5])
local i = 6
for _ = 1, nmeta do
  local f, v = ARGV[i], ARGV[i + 1]
  local cur = redis.call('HGET', KEYS[1], f)
  if v ~= '' and (not cur or cur == '') then
    redis.call('HSET', KEYS[1], f, v)
  end
  i = i + 2
end
while i <= #ARGV do
  local f, v = ARGV[i], ARGV[i + 1]
  if v == '' then
    redis.call('HDEL', KEYS[2], f)
  else
    redis.call('HSET', KEYS[2], f, v)
  end
  i = i + 2
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'step', ARGV[2])
end
redis.call('HINCRBY', KEYS[1], 'ops', 1)
redis.call('HSET', KEYS[1], 'updated', ARGV[3])
if op ~= '' then
  redis.call('SADD', KEYS[3], op)
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
return {1, redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
`)

// ApplyAnswers applies op to the call's record once, in one Lua script: a replayed
// op id returns the stored record unchanged with applied false. rec carries the
// creation metadata (call ID, operator, contact, line, script, preset source),
// which fills fields not yet set and never overwrites them.
func (s *Store) ApplyAnswers(ctx context.Context, rec *desk.Record, op desk.AnswerOp) (*desk.Record, bool, error) {
	if rec == nil || rec.CallID == "" {
		return nil, false, fmt.Errorf("apply answers: %w", desk.ErrInvalid)
	}
	id := rec.CallID
	at := op.At
	if at.IsZero() {
		at = s.now()
	}
	meta := [][2]string{
		{fCallID, id},
		{fOperator, rec.Operator},
		{fContactID, rec.ContactID},
		{fLine, rec.Line},
		{fScript, rec.Script},
		{fPresetSource, rec.PresetSource},
	}
	args := make([]any, 0, 5+2*len(meta)+2*len(op.Fields))
	args = append(args, op.Op, op.Step, at.UTC().Format(time.RFC3339Nano), opsTTL.Milliseconds(), len(meta))
	for _, m := range meta {
		args = append(args, m[0], m[1])
	}
	for f, v := range op.Fields {
		if f == "" {
			return nil, false, fmt.Errorf("apply answers %s: empty field name: %w", id, desk.ErrInvalid)
		}
		args = append(args, f, v)
	}
	res, err := applyAnswers.Run(ctx, s.rdb, []string{s.kRecord(id), s.kAnswers(id), s.kOps(id)}, args...).Slice()
	if err != nil {
		return nil, false, wrap("apply answers "+id, err)
	}
	if len(res) != 3 {
		return nil, false, fmt.Errorf("apply answers %s: unexpected reply %v", id, res)
	}
	applied, _ := res[0].(int64)
	out, err := decodeRecord(id, pairs(res[1]), pairs(res[2]))
	if err != nil {
		return nil, false, err
	}
	return out, applied == 1, nil
}

// pairs turns a Lua HGETALL reply into a map.
func pairs(v any) map[string]string {
	arr, _ := v.([]any)
	m := make(map[string]string, len(arr)/2)
	for i := 0; i+1 < len(arr); i += 2 {
		k, _ := arr[i].(string)
		val, _ := arr[i+1].(string)
		m[k] = val
	}
	return m
}

// Record returns the call's record; ErrNotFound when nothing was captured yet.
func (s *Store) Record(ctx context.Context, callID string) (*desk.Record, error) {
	var meta, answers *redis.MapStringStringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		meta = p.HGetAll(ctx, s.kRecord(callID))
		answers = p.HGetAll(ctx, s.kAnswers(callID))
		return nil
	})
	if err != nil {
		return nil, wrap("record "+callID, err)
	}
	if len(meta.Val()) == 0 {
		return nil, fmt.Errorf("record %s: %w", callID, desk.ErrNotFound)
	}
	return decodeRecord(callID, meta.Val(), answers.Val())
}

func decodeRecord(id string, meta, answers map[string]string) (*desk.Record, error) {
	r := &desk.Record{
		CallID:       meta[fCallID],
		Operator:     meta[fOperator],
		ContactID:    meta[fContactID],
		Line:         meta[fLine],
		Script:       meta[fScript],
		Step:         meta[fStep],
		PresetSource: meta[fPresetSource],
		Answers:      answers,
	}
	if r.CallID == "" {
		r.CallID = id
	}
	if r.Answers == nil {
		r.Answers = map[string]string{}
	}
	r.Ops, _ = strconv.ParseInt(meta[fOps], 10, 64)
	if v := meta[fUpdated]; v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, fmt.Errorf("record %s: decode updated: %w", id, err)
		}
		r.Updated = t
	}
	r.SourceMismatch = meta[fSourceMismatch] == "1"
	if v := meta[fRange]; v != "" {
		r.Range = new(desk.PriceRange)
		if err := json.Unmarshal([]byte(v), r.Range); err != nil {
			return nil, fmt.Errorf("record %s: decode range: %w", id, err)
		}
	}
	if v := meta[fWrapup]; v != "" {
		r.Wrapup = new(desk.Wrapup)
		if err := json.Unmarshal([]byte(v), r.Wrapup); err != nil {
			return nil, fmt.Errorf("record %s: decode wrapup: %w", id, err)
		}
	}
	return r, nil
}

// saveRecord writes a record's metadata.
//
//	KEYS: record, answers
//	ARGV: n set pairs, set pairs..., n delete fields, delete fields..., step, ops, answer pairs...
//
// When the record exists its answers, step and ops stay as they are: they belong to
// applyAnswers, and a save made from a record read a moment ago must not undo an
// answer applied in between. A new record also gets step, ops and answers.
var saveRecord = redis.NewScript(`
local exists = redis.call('EXISTS', KEYS[1]) == 1
local i = 2
for _ = 1, tonumber(ARGV[1]) do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
local ndel = tonumber(ARGV[i])
i = i + 1
for _ = 1, ndel do
  redis.call('HDEL', KEYS[1], ARGV[i])
  i = i + 1
end
local step, ops = ARGV[i], ARGV[i + 1]
i = i + 2
if exists then
  return 0
end
if step ~= '' then
  redis.call('HSET', KEYS[1], 'step', step)
end
redis.call('HSET', KEYS[1], 'ops', ops)
redis.call('DEL', KEYS[2])
while i <= #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
return 1
`)

// SaveRecord writes the record's metadata, flags (source mismatch, range) and
// wrap-up. Answers, step and ops are ApplyAnswers' and are written only when the
// record does not exist yet, so saving a record read earlier never undoes an
// answer applied since. Empty metadata in rec leaves the stored value.
func (s *Store) SaveRecord(ctx context.Context, rec *desk.Record) error {
	if rec == nil || rec.CallID == "" {
		return fmt.Errorf("save record: %w", desk.ErrInvalid)
	}
	id := rec.CallID
	updated := rec.Updated
	if updated.IsZero() {
		updated = s.now()
	}
	set := [][2]string{{fCallID, id}, {fUpdated, updated.UTC().Format(time.RFC3339Nano)}}
	for _, m := range [][2]string{
		{fOperator, rec.Operator},
		{fContactID, rec.ContactID},
		{fLine, rec.Line},
		{fScript, rec.Script},
		{fPresetSource, rec.PresetSource},
	} {
		if m[1] != "" {
			set = append(set, m)
		}
	}
	var del []string
	if rec.SourceMismatch {
		set = append(set, [2]string{fSourceMismatch, "1"})
	} else {
		del = append(del, fSourceMismatch)
	}
	if rec.Range != nil {
		b, err := json.Marshal(rec.Range)
		if err != nil {
			return fmt.Errorf("save record %s: %w", id, err)
		}
		set = append(set, [2]string{fRange, string(b)})
	} else {
		del = append(del, fRange)
	}
	if rec.Wrapup != nil {
		b, err := json.Marshal(rec.Wrapup)
		if err != nil {
			return fmt.Errorf("save record %s: %w", id, err)
		}
		set = append(set, [2]string{fWrapup, string(b)})
	} else {
		del = append(del, fWrapup)
	}
	args := []any{len(set)}
	for _, p := range set {
		args = append(args, p[0], p[1])
	}
	args = append(args, len(del))
	for _, f := range del {
		args = append(args, f)
	}
	args = append(args, rec.Step, rec.Ops)
	for f, v := range rec.Answers {
		if f != "" && v != "" {
			args = append(args, f, v)
		}
	}
	err := saveRecord.Run(ctx, s.rdb, []string{s.kRecord(id), s.kAnswers(id)}, args...).Err()
	return wrap("save record "+id, err)
}
