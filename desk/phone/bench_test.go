package phone

import (
	"fmt"
	"testing"
)

// benchInputs are what a trunk sends: the same few lines and callers in mixed forms.
var benchInputs = []string{"8 (916) 000-00-01", "+7 916 000 00 01", "79160000001", "0000001"}

// BenchmarkNormalizeUncached is the library parse alone (the cost of a cache miss).
func BenchmarkNormalizeUncached(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, _ = normalize(benchInputs[i%len(benchInputs)], "RU")
	}
}

// BenchmarkNormalizeParallel: cache hits from every core at once (shard locks).
func BenchmarkNormalizeParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_, _ = Normalize(benchInputs[i%len(benchInputs)], "RU")
			i++
		}
	})
}

// BenchmarkNormalizeMiss: every input new, so every call parses and inserts,
// and the shards reset as they fill.
func BenchmarkNormalizeMiss(b *testing.B) {
	raws := make([]string, 1<<16)
	for i := range raws {
		raws[i] = fmt.Sprintf("+7916%07d", i)
	}
	c := newCache(cacheShardCap)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, _ = c.get(raws[i%len(raws)], "RU")
	}
}
