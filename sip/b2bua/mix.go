package b2bua

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/zaf/g711"
)

// G.711 at 8 kHz in 20 ms frames: what every desk phone and trunk speaks.
const (
	frameSamples = 160
	frameDur     = 20 * time.Millisecond
	// A leg starts playing out once it has this many frames buffered, and drops the
	// oldest beyond maxBuffered: a 40 ms jitter buffer that never grows past 120 ms.
	primeFrames = 2
	maxBuffered = 6 * frameSamples
)

// ErrCodec: a leg negotiated a codec the bridge does not mix (anything but G.711).
var ErrCodec = errors.New("codec not supported by the mixer")

type role int

const (
	roleCaller role = iota
	roleOperator
	roleSupervisor
)

// leg is one party's audio: a reader goroutine fills its buffer from RTP, the mixer
// takes one frame per tick and writes what this party should hear.
type leg struct {
	role role
	name string
	med  *diago.DialogMedia
	r    *media.RTPPacketReader
	w    *media.RTPPacketWriter
	pt   uint8
	alaw bool
	// dtmfPT is the negotiated telephone-event payload type, or -1.
	dtmfPT int

	mode atomic.Value // Mode, supervisors only

	mu     sync.Mutex
	buf    []int16
	primed bool
	dtmf   [][]byte // RFC 4733 payloads to relay, written by the mixer
	marker []bool

	sent     bool // the first packet carries the marker bit
	seq      uint16
	haveSeq  bool
	received atomic.Uint64
	lost     atomic.Uint64
	late     atomic.Uint64
	done     chan struct{}
}

func newLeg(r role, name string, med *diago.DialogMedia) (*leg, error) {
	sess := med.MediaSession()
	if sess == nil || med.RTPPacketReader == nil || med.RTPPacketWriter == nil {
		return nil, fmt.Errorf("leg %s: %w", name, errors.New("no media session"))
	}
	codec := media.CodecAudioFromSession(sess)
	l := &leg{role: r, name: name, med: med, r: med.RTPPacketReader, w: med.RTPPacketWriter, pt: codec.PayloadType, dtmfPT: -1, done: make(chan struct{})}
	switch strings.ToUpper(codec.Name) {
	case "PCMU":
	case "PCMA":
		l.alaw = true
	default:
		return nil, fmt.Errorf("leg %s: %s: %w", name, codec.Name, ErrCodec)
	}
	for _, c := range sess.CommonCodecs() {
		if strings.EqualFold(c.Name, "telephone-event") && c.SampleRate == 8000 {
			l.dtmfPT = int(c.PayloadType)
			break
		}
	}
	l.mode.Store(Mode(""))
	return l, nil
}

func (l *leg) getMode() Mode { return l.mode.Load().(Mode) }

// read runs until the leg's RTP session closes.
func (l *leg) read() {
	defer close(l.done)
	buf := make([]byte, media.RTPBufSize)
	pcm := make([]int16, 0, 4*frameSamples)
	for {
		n, err := l.r.Read(buf)
		if err != nil {
			return
		}
		if n == 0 {
			continue
		}
		h := l.r.PacketHeader
		l.received.Add(1)
		if l.haveSeq {
			if gap := h.SequenceNumber - l.seq - 1; gap > 0 && gap < 1000 {
				l.lost.Add(uint64(gap))
			}
		}
		l.seq, l.haveSeq = h.SequenceNumber, true
		switch {
		case h.PayloadType == l.pt:
			pcm = pcm[:0]
			for _, b := range buf[:n] {
				if l.alaw {
					pcm = append(pcm, g711.DecodeAlawFrame(b))
				} else {
					pcm = append(pcm, g711.DecodeUlawFrame(b))
				}
			}
			l.push(pcm)
		case l.dtmfPT >= 0 && int(h.PayloadType) == l.dtmfPT:
			l.mu.Lock()
			if len(l.dtmf) < 16 {
				l.dtmf = append(l.dtmf, append([]byte(nil), buf[:n]...))
				l.marker = append(l.marker, h.Marker)
			}
			l.mu.Unlock()
		}
	}
}

func (l *leg) push(pcm []int16) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, pcm...)
	if over := len(l.buf) - maxBuffered; over > 0 {
		// The sender runs ahead of our clock (or a burst came after a stall): drop the
		// oldest so the delay stays bounded. Those frames are late.
		l.late.Add(uint64((over + frameSamples - 1) / frameSamples))
		l.buf = append(l.buf[:0], l.buf[over:]...)
	}
	if len(l.buf) >= primeFrames*frameSamples {
		l.primed = true
	}
}

// pop takes the next frame into out, or reports false for silence.
func (l *leg) pop(out []int16) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primed {
		return false
	}
	if len(l.buf) < frameSamples {
		// The frame for this slot has not come: it is late. Play silence and buffer
		// again before resuming, so one slow packet does not become many.
		l.late.Add(1)
		l.primed = false
		return false
	}
	copy(out, l.buf[:frameSamples])
	l.buf = append(l.buf[:0], l.buf[frameSamples:]...)
	return true
}

// skip drops n frame times the mixer could not mix: the buffered audio of that time
// and the stream's timestamps move on together.
func (l *leg) skip(n int) {
	l.mu.Lock()
	drop := min(len(l.buf), n*frameSamples)
	l.buf = append(l.buf[:0], l.buf[drop:]...)
	l.mu.Unlock()
	l.late.Add(uint64(n))
	l.w.DelayTimestamp(uint32(n * frameSamples))
}

func (l *leg) takeDTMF() ([][]byte, []bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, m := l.dtmf, l.marker
	l.dtmf, l.marker = nil, nil
	return d, m
}

// hears tells whether dst hears src, by role and the supervisors' modes.
func hears(dst, src *leg) bool {
	if dst == src {
		return false
	}
	if src.role == roleSupervisor {
		switch src.getMode() {
		case Barge:
			return true
		case Whisper:
			return dst.role == roleOperator
		}
		return false
	}
	return true // caller and operator are heard by everybody else
}

// mixer is one call's clock: every 20 ms it takes a frame from each leg and writes
// each leg the sum of what it hears, and the caller and operator to the recording.
type mixer struct {
	mu   sync.Mutex
	legs []*leg
	rec  *wavWriter
	stop chan struct{}
	done chan struct{}
	m    *metrics
	cost atomic.Int64 // nanoseconds spent in ticks, for the CPU figure
}

func newMixer(m *metrics, rec *wavWriter, legs ...*leg) *mixer {
	mx := &mixer{legs: legs, rec: rec, stop: make(chan struct{}), done: make(chan struct{}), m: m}
	for _, l := range legs {
		go l.read()
	}
	go mx.run()
	return mx
}

func (mx *mixer) add(l *leg) {
	go l.read()
	mx.mu.Lock()
	mx.legs = append(mx.legs, l)
	mx.mu.Unlock()
}

func (mx *mixer) remove(l *leg) {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	for i, x := range mx.legs {
		if x == l {
			mx.legs = append(mx.legs[:i], mx.legs[i+1:]...)
			return
		}
	}
}

// close stops the clock and closes the recording; the legs' readers end when their
// dialogs close their media.
func (mx *mixer) close() error {
	select {
	case <-mx.stop:
	default:
		close(mx.stop)
	}
	<-mx.done
	if mx.rec != nil {
		return mx.rec.Close()
	}
	return nil
}

// maxCatchUp bounds how many frames one wake-up mixes after the clock was late. A
// longer stall is not replayed: its frames are dropped and the streams' timestamps
// jump over it, so the far ends' jitter buffers see a gap, not a stream that runs
// behind its timestamps for the rest of the call.
const maxCatchUp = 5

// run is the call's clock. A ticker drops the ticks it could not deliver (a busy CPU),
// so the frames due are counted from the wall clock since the start: every frame
// time is mixed, late ones at once, and the RTP timestamps stay true to real time.
func (mx *mixer) run() {
	defer close(mx.done)
	t := time.NewTicker(frameDur)
	defer t.Stop()
	var (
		st    = mixState{sum: make([]int32, frameSamples), payload: make([]byte, frameSamples)}
		began = time.Now()
		mixed int64
	)
	for {
		select {
		case <-mx.stop:
			return
		case <-t.C:
		}
		start := time.Now()
		due := int64(start.Sub(began) / frameDur)
		n := due - mixed
		if n <= 0 {
			continue
		}
		mx.mu.Lock()
		st.legs = append(st.legs[:0], mx.legs...)
		mx.mu.Unlock()
		if skip := n - maxCatchUp; skip > 0 {
			for _, l := range st.legs {
				l.skip(int(skip))
			}
			mx.m.skipped.Add(float64(skip))
			n = maxCatchUp
		}
		for ; n > 0; n-- {
			mx.tick(&st)
		}
		mixed = due
		mx.cost.Add(int64(time.Since(start)))
	}
}

// mixState is the mixer's scratch space, reused every frame.
type mixState struct {
	legs    []*leg
	frames  [][]int16
	have    []bool
	sum     []int32
	payload []byte
}

// tick mixes one 20 ms frame: each leg gets the sum of what it hears, in its codec,
// and the recording gets the caller and the operator.
func (mx *mixer) tick(st *mixState) {
	legs := st.legs
	for len(st.frames) < len(legs) {
		st.frames = append(st.frames, make([]int16, frameSamples))
		st.have = append(st.have, false)
	}
	frames, have, sum, payload := st.frames, st.have, st.sum, st.payload
	for i, l := range legs {
		have[i] = l.pop(frames[i])
	}
	for _, d := range legs {
		clear(sum)
		for si, s := range legs {
			if !have[si] || !hears(d, s) {
				continue
			}
			for k, v := range frames[si] {
				sum[k] += int32(v)
			}
		}
		for k, v := range sum {
			v = max(min(v, 32767), -32768)
			if d.alaw {
				payload[k] = g711.EncodeAlawFrame(int16(v))
			} else {
				payload[k] = g711.EncodeUlawFrame(int16(v))
			}
		}
		if _, err := d.w.WriteSamples(payload, frameSamples, !d.sent, d.pt); err == nil {
			d.sent = true
			mx.m.sent.Inc()
		}
		mx.relayDTMF(d, legs)
	}
	if mx.rec != nil {
		var caller, operator []int16
		for i, l := range legs {
			if !have[i] {
				continue
			}
			switch l.role {
			case roleCaller:
				caller = frames[i]
			case roleOperator:
				operator = frames[i]
			}
		}
		if err := mx.rec.frame(caller, operator); err != nil {
			mx.m.recordErrors.Inc()
			mx.rec.Close()
			mx.rec = nil
		}
	}
}

// relayDTMF passes RFC 4733 digits between the caller and the operator, so a caller
// who presses keys reaches the operator's phone (and the IVR on the far side of a
// callback hears the operator's). Supervisors get none.
func (mx *mixer) relayDTMF(dst *leg, legs []*leg) {
	if dst.dtmfPT < 0 || dst.role == roleSupervisor {
		return
	}
	for _, src := range legs {
		if src == dst || src.role == roleSupervisor {
			continue
		}
		payloads, markers := src.takeDTMF()
		for i, p := range payloads {
			_, _ = dst.w.WriteSamples(p, 0, markers[i], uint8(dst.dtmfPT))
		}
	}
}
