package phone

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// cacheInputs mixes good numbers, numbers only the cc-without-plus fallback reads,
// and rejects of every kind, in several regions.
var cacheInputs = []struct{ raw, region string }{
	{"8 (916) 000-00-01", "RU"}, {"+7 916 000 00 01", "RU"}, {"79160000001", "RU"}, {"9160000001", "RU"},
	{"+79160000001", "RU"}, {"8-495-123-45-67", "RU"}, {"  +7 (495) 123-45-67 ", "RU"}, {"8 916 000 00 01", "ru"},
	{"+1 415 555 2671", "RU"}, {"14155552671", "RU"}, {"(415) 555-2671", "US"}, {"+79160000001", ""},
	{"79160000001", ""}, {"+44 20 7946 0958", "GB"}, {"020 7946 0958", "GB"}, {"8-800-555-35-35", " ru "},
	{"0000001", "RU"}, {"1001", "RU"}, {"", "RU"}, {"   ", "RU"}, {"anonymous", "RU"}, {"alice7", "RU"},
	{"+1-800-FLOWERS", "US"}, {"7+9160000001", "RU"}, {"9160000001", ""}, {"+7 000 000 00 00", "RU"},
	{"+", "RU"}, {"++79160000001", "RU"}, {"1001", "XX"}, {"+00000000000", "ZZ"},
	{"+7916000000100000000000000000000000000000000000000000000000000000001", "RU"},
}

// TestCacheMatchesParse: Normalize (cached, asked twice so the second answer comes
// from the cache) returns exactly what the uncached parse returns, value and error.
func TestCacheMatchesParse(t *testing.T) {
	for _, in := range cacheInputs {
		want, wantErr := normalize(in.raw, in.region)
		for pass := range 2 {
			got, err := Normalize(in.raw, in.region)
			if got != want || (err == nil) != (wantErr == nil) {
				t.Fatalf("pass %d: Normalize(%q, %q) = %q, %v; uncached %q, %v", pass, in.raw, in.region, got, err, want, wantErr)
			}
			if err != nil && (err.Error() != wantErr.Error() || !errors.Is(err, ErrNotANumber)) {
				t.Fatalf("pass %d: Normalize(%q, %q) error %v; uncached %v", pass, in.raw, in.region, err, wantErr)
			}
		}
	}
}

// TestCacheBounded: a flood of distinct inputs never holds more than
// shards*shardCap entries, and answers stay right after shards are reset.
func TestCacheBounded(t *testing.T) {
	const shardCap = 8
	c := newCache(shardCap)
	limit := cacheShards * shardCap
	for i := range 20 * limit {
		raw := fmt.Sprintf("+7916%07d", i)
		got, err := c.get(raw, "RU")
		if err != nil || got != raw {
			t.Fatalf("get(%q) = %q, %v", raw, got, err)
		}
		if n := c.len(); n > limit {
			t.Fatalf("after %d inputs the cache holds %d entries; cap %d", i+1, n, limit)
		}
	}
	for _, in := range cacheInputs {
		want, wantErr := normalize(in.raw, in.region)
		got, err := c.get(in.raw, in.region)
		if got != want || (err == nil) != (wantErr == nil) {
			t.Fatalf("after resets get(%q, %q) = %q, %v; uncached %q, %v", in.raw, in.region, got, err, want, wantErr)
		}
	}
	t.Logf("cache cap %d entries, holds %d after %d distinct inputs", limit, c.len(), 20*limit)
}

// TestCacheConcurrent runs under -race: readers and writers on the same shards.
func TestCacheConcurrent(t *testing.T) {
	c := newCache(4)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				in := cacheInputs[(g+i)%len(cacheInputs)]
				want, wantErr := normalize(in.raw, in.region)
				got, err := c.get(in.raw, in.region)
				if got != want || (err == nil) != (wantErr == nil) {
					t.Errorf("get(%q, %q) = %q, %v; uncached %q, %v", in.raw, in.region, got, err, want, wantErr)
					return
				}
				if i%7 == 0 {
					_, _ = c.get(fmt.Sprintf("+7916%07d", g*1000+i), "RU")
				}
			}
		})
	}
	wg.Wait()
}
