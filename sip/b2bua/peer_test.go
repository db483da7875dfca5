package b2bua_test

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/zaf/g711"
)

// The known tones of the issue: each party sends its own, and each decodes what it
// receives and tells by a Goertzel filter which tones are in it.
const (
	toneCaller     = 440.0
	toneOperator   = 1000.0
	toneSupervisor = 2000.0
)

// goertzel gives the share of the window's energy at freq (about 1 for a pure tone,
// 0.5 each for two equal tones, 0 for silence or other frequencies).
func goertzel(x []int16, freq float64) float64 {
	if len(x) == 0 {
		return 0
	}
	k := 2 * math.Cos(2*math.Pi*freq/8000)
	var s1, s2, energy float64
	for _, v := range x {
		f := float64(v)
		s0 := f + k*s1 - s2
		s2, s1 = s1, s0
		energy += f * f
	}
	if energy < float64(len(x))*100 { // below about -50 dBFS: silence
		return 0
	}
	power := s1*s1 + s2*s2 - k*s1*s2
	return 2 * power / (float64(len(x)) * energy)
}

func TestGoertzel(t *testing.T) {
	sine := func(freqs ...float64) []int16 {
		out := make([]int16, 1600)
		for i := range out {
			var v float64
			for _, f := range freqs {
				v += 6000 * math.Sin(2*math.Pi*f*float64(i)/8000)
			}
			out[i] = int16(v)
		}
		return out
	}
	tests := []struct {
		name     string
		in       []int16
		freq     float64
		min, max float64
	}{
		{"pure tone", sine(440), 440, 0.9, 1.1},
		{"other tone", sine(1000), 440, 0, 0.02},
		{"two tones, first", sine(440, 2000), 440, 0.4, 0.6},
		{"two tones, second", sine(440, 2000), 2000, 0.4, 0.6},
		{"silence", make([]int16, 1600), 440, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if g := goertzel(tc.in, tc.freq); g < tc.min || g > tc.max {
				t.Fatalf("goertzel = %.3f, want [%.2f, %.2f]", g, tc.min, tc.max)
			}
		})
	}
}

// audio plays a tone into a leg and keeps what the leg receives, decoded.
type audio struct {
	mu   sync.Mutex
	got  []int16
	at   []time.Time // arrival of each 160-sample chunk, for windows
	done chan struct{}
}

func playAndListen(ctx context.Context, med *diago.DialogMedia, freq float64) *audio {
	a := &audio{done: make(chan struct{})}
	codec := media.CodecAudioFromSession(med.MediaSession())
	alaw := strings.EqualFold(codec.Name, "PCMA")
	go func() { // the writer paces itself at 20 ms per frame
		w := med.RTPPacketWriter
		payload := make([]byte, 160)
		n := 0
		for ctx.Err() == nil {
			for i := range payload {
				v := int16(8000 * math.Sin(2*math.Pi*freq*float64(n)/8000))
				n++
				if alaw {
					payload[i] = g711.EncodeAlawFrame(v)
				} else {
					payload[i] = g711.EncodeUlawFrame(v)
				}
			}
			if _, err := w.Write(payload); err != nil {
				return
			}
		}
	}()
	go func() {
		defer close(a.done)
		buf := make([]byte, media.RTPBufSize)
		r := med.RTPPacketReader
		for {
			n, err := r.Read(buf)
			if err != nil {
				return
			}
			if r.PacketHeader.PayloadType != codec.PayloadType {
				continue
			}
			now := time.Now()
			a.mu.Lock()
			for _, b := range buf[:n] {
				if alaw {
					a.got = append(a.got, g711.DecodeAlawFrame(b))
				} else {
					a.got = append(a.got, g711.DecodeUlawFrame(b))
				}
			}
			a.at = append(a.at, now)
			a.mu.Unlock()
		}
	}()
	return a
}

// window returns the samples that arrived after since.
func (a *audio) window(since time.Time) []int16 {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, at := range a.at {
		if !at.Before(since) {
			start := i * 160
			if start > len(a.got) {
				return nil
			}
			return append([]int16(nil), a.got[start:]...)
		}
	}
	return nil
}

// peer is a diago user agent on loopback: a caller, an operator's or supervisor's
// phone, or the trunk's far end.
type peer struct {
	dg   *diago.Diago
	addr string
	// answered carries the media of each call this peer answers.
	answered chan *answeredCall
	reject   int // when set, incoming calls get this status
	tone     float64
}

type answeredCall struct {
	d     *diago.DialogServerSession
	med   *diago.DialogMedia
	audio *audio
	req   *sipmsg.Request
}

func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func newPeer(t *testing.T, name string, tone float64) *peer {
	t.Helper()
	port := freePort(t)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{addr: "127.0.0.1:" + strconv.Itoa(port), answered: make(chan *answeredCall, 8), tone: tone}
	p.dg = diago.NewDiago(ua, diago.WithTransport(diago.Transport{Transport: "udp", BindHost: "127.0.0.1", BindPort: port}))
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.dg.ServeBackground(ctx, func(d *diago.DialogServerSession) {
		if p.reject != 0 {
			_ = d.Respond(p.reject, "Busy Here", nil)
			return
		}
		_ = d.Ringing()
		med, err := d.Answer(diago.AnswerOptions{})
		if err != nil {
			return
		}
		a := playAndListen(d.Context(), med, p.tone)
		p.answered <- &answeredCall{d: d, med: med, audio: a, req: d.InviteRequest}
		<-d.Context().Done()
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		ua.Close()
	})
	return p
}

// call dials uri and plays the peer's tone once answered.
func (p *peer) call(ctx context.Context, uri string) (*diago.DialogClientSession, *audio, error) {
	var u sipmsg.Uri
	if err := sipmsg.ParseUri(uri, &u); err != nil {
		return nil, nil, err
	}
	d, med, err := p.dg.Invite(ctx, u, diago.InviteOptions{})
	if err != nil {
		return nil, nil, err
	}
	return d, playAndListen(d.Context(), med, p.tone), nil
}

func (p *peer) waitAnswered(t *testing.T) *answeredCall {
	t.Helper()
	select {
	case a := <-p.answered:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("the phone was not rung")
	}
	return nil
}

// openSockets counts the process's open sockets: RTP ports left open show here.
func openSockets(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

var errTimeout = errors.New("timed out")

// eventually polls cond every 20 ms up to d.
func eventually(d time.Duration, cond func() bool) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cond() {
		return nil
	}
	return errTimeout
}
