// Package b2buatest has the media tests' peers: diago user agents on loopback that
// play a known tone into a call and decode what they hear, and a Goertzel filter that
// tells which tones are in it. The bridge's own tests and the desk's end-to-end tests
// both use it, so "who hears whom" is asserted the same way everywhere.
package b2buatest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	ToneCaller     = 440.0
	ToneOperator   = 1000.0
	ToneSupervisor = 2000.0
)

// Goertzel gives the share of the window's energy at freq (about 1 for a pure tone,
// 0.5 each for two equal tones, 0 for silence or other frequencies).
func Goertzel(x []int16, freq float64) float64 {
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

// Audio is what a leg received, decoded, with the arrival time of each 20 ms chunk.
type Audio struct {
	mu   sync.Mutex
	got  []int16
	at   []time.Time // arrival of each 160-sample chunk, for windows
	done chan struct{}
}

// PlayAndListen sends a sine of freq into the leg every 20 ms until ctx ends, and
// decodes what the leg receives into the returned Audio.
func PlayAndListen(ctx context.Context, med *diago.DialogMedia, freq float64) *Audio {
	a := &Audio{done: make(chan struct{})}
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

// Window returns the samples that arrived after since.
func (a *Audio) Window(since time.Time) []int16 {
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

// Peer is a diago user agent on loopback: a caller, an operator's or supervisor's
// phone, or the trunk's far end.
type Peer struct {
	dg   *diago.Diago
	Addr string
	// answered carries the media of each call this peer answers.
	Answered chan *Answered
	Reject   atomic.Int32 // when set, incoming calls get this status
	// RingFor is how long the phone rings before it answers (as a person would), in
	// nanoseconds (RingFor.Store(int64(d))): a test may change it between calls.
	RingFor atomic.Int64
	// digestAuth, when set (WithDigest), makes the peer challenge every INVITE (a
	// trunk with credentials); Challenged counts the INVITEs it refused with 401.
	digestAuth *diago.DigestAuth
	Challenged atomic.Int32
	digest     *diago.DigestAuthServer
	tone       float64
}

// Answered is a call the peer answered; Med and Audio are nil when it was hung up
// before the answer was confirmed.
type Answered struct {
	D     *diago.DialogServerSession
	Med   *diago.DialogMedia
	Audio *Audio
	Req   *sipmsg.Request
}

// FreePort is a UDP port on loopback that was free a moment ago.
func FreePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// PeerOption configures a Peer before it serves.
type PeerOption func(*Peer)

// WithDigest makes the peer challenge INVITEs and accept only these credentials.
func WithDigest(a diago.DigestAuth) PeerOption { return func(p *Peer) { p.digestAuth = &a } }

// NewPeer starts a phone named name (its From and Contact user) on a loopback port.
// It rings, answers every call (unless Reject is set) and plays tone into it.
func NewPeer(t *testing.T, name string, tone float64, opts ...PeerOption) *Peer {
	t.Helper()
	port := FreePort(t)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Peer{Addr: "127.0.0.1:" + strconv.Itoa(port), Answered: make(chan *Answered, 8), tone: tone, digest: diago.NewDigestServer()}
	for _, o := range opts {
		o(p)
	}
	p.dg = diago.NewDiago(ua, diago.WithLogger(slog.New(slog.DiscardHandler)), diago.WithTransport(diago.Transport{Transport: "udp", BindHost: "127.0.0.1", BindPort: port}))
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.dg.ServeBackground(ctx, func(d *diago.DialogServerSession) {
		if p.digestAuth != nil {
			if err := p.digest.AuthorizeDialog(d, *p.digestAuth); err != nil {
				p.Challenged.Add(1)
				return
			}
		}
		if code := int(p.Reject.Load()); code != 0 {
			_ = d.Respond(code, "Busy Here", nil)
			return
		}
		_ = d.Ringing()
		if ring := time.Duration(p.RingFor.Load()); ring > 0 {
			select {
			case <-time.After(ring):
			case <-d.Context().Done():
				return
			}
		}
		med, err := d.Answer(diago.AnswerOptions{})
		if err != nil {
			if res := d.InviteResponse; res != nil && res.IsSuccess() {
				// Answered, then hung up before the answer was confirmed (a callback
				// whose customer was busy): the call still counts as answered, with
				// no audio to listen to.
				p.Answered <- &Answered{D: d, Req: d.InviteRequest}
			}
			return
		}
		a := PlayAndListen(d.Context(), med, p.tone)
		p.Answered <- &Answered{D: d, Med: med, Audio: a, Req: d.InviteRequest}
		<-d.Context().Done()
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		ua.Close()
		p.digest.Close()
	})
	return p
}

// call dials uri and plays the peer's tone once answered.
func (p *Peer) Call(ctx context.Context, uri string) (*diago.DialogClientSession, *Audio, error) {
	var u sipmsg.Uri
	if err := sipmsg.ParseUri(uri, &u); err != nil {
		return nil, nil, err
	}
	d, med, err := p.dg.Invite(ctx, u, diago.InviteOptions{})
	if err != nil {
		return nil, nil, err
	}
	return d, PlayAndListen(d.Context(), med, p.tone), nil
}

// WaitAnswered returns the next call the peer answered, failing after 10 s.
func (p *Peer) WaitAnswered(t *testing.T) *Answered {
	t.Helper()
	select {
	case a := <-p.Answered:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("the phone was not rung")
	}
	return nil
}

// openSockets counts the process's open sockets: RTP ports left open show here.
func OpenSockets(t *testing.T) int {
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

var ErrTimeout = errors.New("timed out")

// eventually polls cond every 20 ms up to d.
func Eventually(d time.Duration, cond func() bool) error {
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
	return ErrTimeout
}

// ExpectHears checks who hears which tone in the latest 500 ms of audio that arrived
// after the call: it waits for that much, and for a change of mode to take effect.
func ExpectHears(t *testing.T, who string, a *Audio, want map[float64]bool) {
	t.Helper()
	const n = 4000 // 500 ms at 8 kHz
	since := time.Now()
	var got map[float64]float64
	ok := func() bool {
		w := a.Window(since)
		if len(w) < n {
			return false
		}
		w = w[len(w)-n:]
		got = map[float64]float64{}
		for _, f := range []float64{ToneCaller, ToneOperator, ToneSupervisor} {
			got[f] = Goertzel(w, f)
		}
		for f := range want { // other tones asked about: the bridge's call progress tones
			got[f] = Goertzel(w, f)
		}
		for f, heard := range want {
			if heard && got[f] < 0.15 || !heard && got[f] > 0.03 {
				return false
			}
		}
		return true
	}
	if err := Eventually(4*time.Second, ok); err != nil {
		t.Fatalf("%s hears %s, want %v", who, fmtShares(got), want)
	}
	t.Logf("%s hears %s", who, fmtShares(got))
}

func fmtShares(m map[float64]float64) string {
	s := fmt.Sprintf("440Hz %.2f, 1000Hz %.2f, 2000Hz %.2f", m[ToneCaller], m[ToneOperator], m[ToneSupervisor])
	for f, v := range m {
		if f != ToneCaller && f != ToneOperator && f != ToneSupervisor {
			s += fmt.Sprintf(", %gHz %.2f", f, v)
		}
	}
	return s
}

// Register registers the peer's contact as user at server (ip:port) with digest,
// once, for an hour.
func (p *Peer) Register(ctx context.Context, server, user, password string) error {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(port)
	tx, err := p.dg.RegisterTransaction(ctx, sipmsg.Uri{Scheme: "sip", User: user, Host: host, Port: n},
		diago.RegisterOptions{Username: user, Password: password, Expiry: time.Hour})
	if err != nil {
		return err
	}
	return tx.Register(ctx)
}

// CheckStereoWAV reads a stereo 16-bit 8 kHz WAV and checks that the left channel
// carries left Hz and the right channel right Hz, each alone on its channel.
func CheckStereoWAV(t *testing.T, b []byte, left, right float64) {
	t.Helper()
	if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("not a WAV file (%d bytes)", len(b))
	}
	if ch, rate, bits := binary.LittleEndian.Uint16(b[22:]), binary.LittleEndian.Uint32(b[24:]), binary.LittleEndian.Uint16(b[34:]); ch != 2 || rate != 8000 || bits != 16 {
		t.Fatalf("format: %d channels, %d Hz, %d bits", ch, rate, bits)
	}
	data := b[44:]
	if n := binary.LittleEndian.Uint32(b[40:]); int(n) != len(data) {
		t.Fatalf("data size in header %d, file has %d", n, len(data))
	}
	var l, r []int16
	for i := 0; i+4 <= len(data); i += 4 {
		l = append(l, int16(binary.LittleEndian.Uint16(data[i:])))
		r = append(r, int16(binary.LittleEndian.Uint16(data[i+2:])))
	}
	if len(l) < 8000 {
		t.Fatalf("recording is %d samples long", len(l))
	}
	mid := func(x []int16) []int16 { return x[len(x)/4 : 3*len(x)/4] }
	if a, b := Goertzel(mid(l), left), Goertzel(mid(l), right); a < 0.5 || b > 0.05 {
		t.Fatalf("left channel: %.0f Hz %.2f, %.0f Hz %.2f", left, a, right, b)
	}
	if a, b := Goertzel(mid(r), right), Goertzel(mid(r), left); a < 0.5 || b > 0.05 {
		t.Fatalf("right channel: %.0f Hz %.2f, %.0f Hz %.2f", right, a, left, b)
	}
	t.Logf("recording: %.1f s, %.0f Hz left, %.0f Hz right", float64(len(l))/8000, left, right)
}
