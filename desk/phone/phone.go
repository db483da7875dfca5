// Package phone turns the many ways people and trunks write a telephone number into
// E.164, so one contact is found whatever form its number arrives in.
//
// It wraps github.com/nyaruka/phonenumbers (a port of libphonenumber) and adds the
// one habit the library does not forgive: a country code written without the plus
// ("79160000001"), which trunks and CRMs export all the time.
package phone

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// ErrNotANumber is returned (wrapped) when the input is not a valid telephone number:
// a SIP login, a short extension, "anonymous", or digits no numbering plan knows.
var ErrNotANumber = errors.New("not a phone number")

// maxLen bounds the input: nothing longer is a phone number, and the parser should
// not spend time on hostile headers.
const maxLen = 64

// Normalize returns raw in E.164 ("+79160000001"). region is the ISO 3166 country
// assumed for numbers written without a country code (e.g. "RU"); an empty region
// accepts international forms only.
//
// Results are cached (see cache below): the same caller and the same line numbers
// come back all day, and the library parse costs ~16 µs and 65 allocations.
func Normalize(raw, region string) (string, error) {
	if len(raw) > maxLen+16 || len(region) > 8 {
		// Too long to be a number (after trimming) or a region: not worth a slot.
		return normalize(raw, region)
	}
	return normalizeCache.get(raw, region)
}

// normalize is Normalize without the cache.
func normalize(raw, region string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" || len(s) > maxLen {
		return "", fmt.Errorf("normalize %q: %w", raw, ErrNotANumber)
	}
	// The library reads letters as vanity digits (1-800-FLOWERS), which would turn
	// SIP user parts like "alice7" into numbers. Callers here never dial letters.
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return "", fmt.Errorf("normalize %q: %w", raw, ErrNotANumber)
		}
	}
	if digits == 0 {
		return "", fmt.Errorf("normalize %q: %w", raw, ErrNotANumber)
	}
	region = strings.ToUpper(strings.TrimSpace(region))
	if region == "" {
		region = "ZZ"
	}
	if n, err := phonenumbers.Parse(s, region); err == nil && phonenumbers.IsValidNumber(n) {
		return phonenumbers.Format(n, phonenumbers.E164), nil
	}
	// "Country code without plus": the national reading failed, so try the digits
	// as an international number. This is what makes 79160000001 and 14155552671
	// resolve in any region.
	if s[0] != '+' {
		if n, err := phonenumbers.Parse("+"+phonenumbers.NormalizeDigitsOnly(s), "ZZ"); err == nil && phonenumbers.IsValidNumber(n) {
			return phonenumbers.Format(n, phonenumbers.E164), nil
		}
	}
	return "", fmt.Errorf("normalize %q in region %s: %w", raw, region, ErrNotANumber)
}

// Format renders an E.164 number for people: "+7 916 000-00-01". Anything that does
// not parse is returned unchanged, so a raw caller ID still shows.
func Format(e164 string) string {
	if !strings.HasPrefix(e164, "+") {
		return e164
	}
	n, err := phonenumbers.Parse(e164, "ZZ")
	if err != nil {
		return e164
	}
	return phonenumbers.Format(n, phonenumbers.INTERNATIONAL)
}

// The cache maps (raw, region) to the result of normalize, errors included, so a
// flood of the same anonymous or malformed caller ID costs no more than a good one.
// It is sharded to keep lock contention low on the SIP path, and each shard is
// bounded: when a shard is full it is emptied and refilled (the working set of a
// desk -- its lines and its callers of the day -- is far smaller than the cap, so
// the simple reset beats LRU bookkeeping on every hit).
const (
	cacheShards   = 16
	cacheShardCap = 1024 // entries per shard: at most 16,384 in all
)

type cacheKey struct{ raw, region string }

type cacheVal struct {
	e164 string
	err  error
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]cacheVal
}

type cache struct {
	seed     maphash.Seed
	shardCap int
	shards   [cacheShards]cacheShard
}

var normalizeCache = newCache(cacheShardCap)

func newCache(shardCap int) *cache {
	c := &cache{seed: maphash.MakeSeed(), shardCap: shardCap}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]cacheVal)
	}
	return c
}

func (c *cache) shard(raw, region string) *cacheShard {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(raw)
	h.WriteByte(0)
	h.WriteString(region)
	return &c.shards[h.Sum64()%cacheShards]
}

func (c *cache) get(raw, region string) (string, error) {
	sh := c.shard(raw, region)
	k := cacheKey{raw, region}
	sh.mu.RLock()
	v, ok := sh.m[k]
	sh.mu.RUnlock()
	if ok {
		return v.e164, v.err
	}
	e164, err := normalize(raw, region)
	// Copy the key strings so the cache does not pin a caller's larger buffer (a
	// SIP message the raw number was sliced from).
	k = cacheKey{strings.Clone(raw), strings.Clone(region)}
	sh.mu.Lock()
	if len(sh.m) >= c.shardCap {
		clear(sh.m)
	}
	sh.m[k] = cacheVal{e164, err}
	sh.mu.Unlock()
	return e164, err
}

// len reports the number of cached entries (for tests).
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
