package b2bua

import (
	"sync"
	"testing"
	"time"

	"github.com/emiago/diago/media"
	"github.com/pion/rtp"
)

func TestOffersG711(t *testing.T) {
	tests := []struct {
		name string
		sdp  string
		want bool
	}{
		{"PCMU and PCMA", "v=0\r\nm=audio 4000 RTP/AVP 0 8 101\r\n", true},
		{"PCMA only", "v=0\r\nm=audio 4000 RTP/AVP 8\r\n", true},
		{"G722 and Opus only", "v=0\r\nm=audio 4000 RTP/AVP 9 111\r\na=rtpmap:111 opus/48000/2\r\n", false},
		{"video only", "v=0\r\nm=video 4000 RTP/AVP 0\r\n", false},
		{"no SDP (late offer)", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := offersG711([]byte(tc.sdp)); got != tc.want {
				t.Fatalf("offersG711 = %v, want %v", got, tc.want)
			}
		})
	}
}

// stamps records the RTP timestamps a leg was sent.
type stamps struct {
	mu sync.Mutex
	ts []uint32
}

func (s *stamps) WriteRTP(p *rtp.Packet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ts = append(s.ts, p.Timestamp)
	return nil
}

func (s *stamps) last() (uint32, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ts) == 0 {
		return 0, 0
	}
	return s.ts[len(s.ts)-1], len(s.ts)
}

// TestMixerKeepsRealTime stalls a mixer for 300 ms (as a starved CPU would) and checks
// that afterwards its streams' timestamps match the time gone by again, instead of
// running behind for the rest of the call (found by the deskbench media phase).
func TestMixerKeepsRealTime(t *testing.T) {
	out := &stamps{}
	l := &leg{role: roleOperator, w: media.NewRTPPacketWriter(out, media.CodecAudioUlaw), dtmfPT: -1, done: make(chan struct{})}
	l.mode.Store(Mode(""))
	m := newMetrics(nil)
	mx := &mixer{legs: []*leg{l}, stop: make(chan struct{}), done: make(chan struct{}), m: m}
	began := time.Now()
	go mx.run()
	defer mx.close()

	time.Sleep(100 * time.Millisecond)
	mx.mu.Lock() // the mixer cannot take its legs: it misses its ticks
	time.Sleep(300 * time.Millisecond)
	mx.mu.Unlock()
	time.Sleep(200 * time.Millisecond)

	ts, n := out.last()
	elapsed := time.Since(began)
	want := uint32(elapsed / time.Millisecond * 8) // 8 samples a millisecond
	// Within three frames of real time: one for the tick in flight, two for scheduling.
	if diff := int64(want) - int64(ts); diff < -3*frameSamples || diff > 3*frameSamples {
		t.Fatalf("after %v the stream is at timestamp %d (%d packets), real time is %d", elapsed, ts, n, want)
	}
	if got := l.late.Load(); got == 0 {
		t.Fatalf("a 300 ms stall dropped no frame")
	}
}
