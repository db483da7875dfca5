package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// errPayload is returned when an event payload does not marshal to a JSON object.
var errPayload = errors.New("payload is not a JSON object")

// framePart is an event split around its seq: a frame is head + seq + tail.
// Splitting once lets the Lua script (which assigns seq) and the local fallback
// build the frame with plain concatenation, without re-encoding the payload.
type framePart struct {
	head []byte // {"type":"call.ringing","seq":
	tail []byte // ,"at":"2026-11-26T21:00:00.123456Z","call":{...}}
}

// atLayout formats the publish time of an event frame: RFC 3339 in UTC with
// microseconds, always the same width ("2026-11-26T21:00:00.123456Z").
const atLayout = "2006-01-02T15:04:05.000000Z07:00"

// splitFrame encodes typ, the publish time at and payload into the two halves of
// a frame. The time sits in the tail, so every channel, every node and every
// replay from the history carries the same "at" as the first delivery. Like type
// and seq, "at" is a top-level name that payloads must not use.
func splitFrame(typ string, at time.Time, payload any) (framePart, error) {
	body, err := payloadFields(payload)
	if err != nil {
		return framePart{}, err
	}
	t, err := json.Marshal(typ)
	if err != nil {
		return framePart{}, fmt.Errorf("encode type: %w", err)
	}
	head := make([]byte, 0, len(t)+16)
	head = append(head, `{"type":`...)
	head = append(head, t...)
	head = append(head, `,"seq":`...)
	tail := make([]byte, 0, len(body)+len(atLayout)+10)
	tail = append(tail, `,"at":"`...)
	tail = at.UTC().AppendFormat(tail, atLayout)
	tail = append(tail, '"')
	if len(body) > 0 {
		tail = append(tail, ',')
		tail = append(tail, body...)
	}
	tail = append(tail, '}')
	return framePart{head: head, tail: tail}, nil
}

// appendFrame appends the complete frame with the given seq to dst.
func (p framePart) appendFrame(dst []byte, seq int64) []byte {
	dst = append(dst, p.head...)
	dst = strconv.AppendInt(dst, seq, 10)
	return append(dst, p.tail...)
}

// payloadFields marshals payload and returns the fields of the object without
// its braces ("" for nil or an empty object).
func payloadFields(payload any) ([]byte, error) {
	if payload == nil {
		return nil, nil
	}
	var raw []byte
	switch p := payload.(type) {
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	default:
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("encode payload: %w", err)
		}
		raw = b
	}
	raw = bytes.TrimSpace(raw)
	if bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
		return nil, errPayload
	}
	return bytes.TrimSpace(raw[1 : len(raw)-1]), nil
}

// encodeObject builds {<fields of a>, <fields of b>} from two values that marshal
// to objects; it is used for snapshot frames, which are not on the hot path.
func encodeObject(parts ...any) ([]byte, error) {
	out := []byte{'{'}
	for _, p := range parts {
		f, err := payloadFields(p)
		if err != nil {
			return nil, err
		}
		if len(f) == 0 {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, f...)
	}
	return append(out, '}'), nil
}

// frameSeq reads the seq of a frame produced by appendFrame without decoding the
// whole frame: the seq always follows the type at a known place.
func frameSeq(frame []byte) (int64, bool) {
	i := bytes.Index(frame, []byte(`,"seq":`))
	if i < 0 {
		return 0, false
	}
	rest := frame[i+len(`,"seq":`):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return n, err == nil
}
