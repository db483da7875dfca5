package b2bua

import (
	"math"
	"strings"
	"sync"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/zaf/g711"
)

// Call progress tones for an operator leg the bridge placed itself (a callback): the
// customer's trunk rings or refuses, and the operator, who has already answered,
// would otherwise hear silence and guess. The cadences are ITU-T E.180's
// recommended 425 Hz ones, as most of Europe and Russia use.
type tone struct {
	hz      float64
	on, off time.Duration
}

var (
	// ringbackTone: the customer's phone is ringing (1 s on, 4 s off).
	ringbackTone = tone{hz: ToneHz, on: time.Second, off: 4 * time.Second}
	// busyTone: the customer is busy (0.5 s on, 0.5 s off). Played for busyFor
	// before the operator's leg is hung up.
	busyTone = tone{hz: ToneHz, on: 500 * time.Millisecond, off: 500 * time.Millisecond}
	busyFor  = 2 * time.Second
)

// ToneHz is the frequency of the ringback and busy tones the operator hears while
// the desk dials a callback.
const ToneHz = 425

// player plays a tone into one leg until stopped. The leg's RTP writer is the
// player's alone until stop returns; the mixer takes it over afterwards, so the
// sequence numbers and timestamps run on without a jump.
type player struct {
	stopOnce sync.Once
	quit     chan struct{}
	done     chan struct{}
}

// play starts t on med; nil when the leg's codec is not G.711 (nothing to play).
func play(med *diago.DialogMedia, t tone) *player {
	if med == nil || med.RTPPacketWriter == nil || med.MediaSession() == nil {
		return nil
	}
	codec := media.CodecAudioFromSession(med.MediaSession())
	var alaw bool
	switch strings.ToUpper(codec.Name) {
	case "PCMU":
	case "PCMA":
		alaw = true
	default:
		return nil
	}
	p := &player{quit: make(chan struct{}), done: make(chan struct{})}
	go p.run(med.RTPPacketWriter, codec.PayloadType, alaw, t)
	return p
}

func (p *player) run(w *media.RTPPacketWriter, pt uint8, alaw bool, t tone) {
	defer close(p.done)
	payload := make([]byte, frameSamples)
	period := t.on + t.off
	tick := time.NewTicker(frameDur)
	defer tick.Stop()
	start := time.Now()
	n := 0 // samples sent: the sine's phase, and the position in the cadence
	for first := true; ; first = false {
		at := time.Duration(n) * time.Second / 8000
		sounding := at%period < t.on
		for i := range payload {
			var v int16
			if sounding {
				v = int16(6000 * math.Sin(2*math.Pi*t.hz*float64(n+i)/8000))
			}
			if alaw {
				payload[i] = g711.EncodeAlawFrame(v)
			} else {
				payload[i] = g711.EncodeUlawFrame(v)
			}
		}
		n += frameSamples
		if _, err := w.WriteSamples(payload, frameSamples, first, pt); err != nil {
			return
		}
		select {
		case <-p.quit:
			return
		case <-tick.C:
		}
		// A stalled ticker drops ticks: skip the frames that are overdue rather
		// than play the tone slower than it is.
		if behind := int(time.Since(start)/frameDur) - n/frameSamples; behind > 2 {
			n += behind * frameSamples
			w.DelayTimestamp(uint32(behind * frameSamples))
		}
	}
}

// stop ends the tone and waits for the player to let go of the writer. Safe on a
// nil player and more than once.
func (p *player) stop() {
	if p == nil {
		return
	}
	p.stopOnce.Do(func() { close(p.quit) })
	<-p.done
}
