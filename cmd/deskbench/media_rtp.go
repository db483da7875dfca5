package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zaf/g711"
	"golang.org/x/net/ipv4"
)

// The media phase's RTP: raw G.711 over UDP on loopback, kept cheap because the
// harness shares the two cores with the desk it measures. One sender goroutine
// ticks every 20 ms and writes a 160-byte PCMU frame to every active stream, a
// socket's frames in one sendmmsg. Each party (callers, operators, the
// supervisor) has a few sockets its streams share, each read in batches
// (recvmmsg) by one goroutine that tells the streams apart by the bridge's leg
// port, checks the sequence and times each packet with the kernel's timestamp.

const (
	rtpFrame      = 20 * time.Millisecond
	rtpSamples    = 160 // PCMU at 8 kHz, 20 ms
	rtpHeaderLen  = 12
	rtpPCMU       = 0
	rtpLateBudget = 40 * time.Millisecond // what a 40 ms jitter buffer absorbs
	// rtpCatchUp bounds the frames a stream is sent in one tick when the sender
	// itself was late (the harness starved of CPU): up to this many are sent at
	// once, as a phone would; beyond, the frames are skipped.
	rtpCatchUp = 3
)

// The parties' tones, as in the bridge's tests: what is sent is never silence.
var (
	toneCaller     = toneFrame(440)
	toneOperator   = toneFrame(1000)
	toneSupervisor = toneFrame(2000)
)

// toneFrame is one 20 ms PCMU frame of a sine at freq.
func toneFrame(freq float64) []byte {
	out := make([]byte, rtpSamples)
	for i := range out {
		out[i] = g711.EncodeUlawFrame(int16(6000 * math.Sin(2*math.Pi*freq*float64(i)/8000)))
	}
	return out
}

// rtpStream is one party's RTP: what it sends to the bridge and what it reads.
// Streams share their party's sockets (rtpSock): the bridge's leg port, where
// each stream's packets come from, tells them apart.
type rtpStream struct {
	kind    string // caller, operator or supervisor
	sock    *rtpSock
	port    int // the local port, for the SDP
	payload []byte
	pkt     []byte // the stream's packet, rewritten for each frame
	ssrc    uint32

	// sender side: the sender goroutine only, once started
	remote *net.UDPAddr
	start  time.Time
	frames int64 // frame slots elapsed (sent or skipped)
	seq    uint16
	ts     uint32
	sent   atomic.Int64

	// receiver side: under sock.mu (the socket's reader, and end)
	received, lost, late int64
	kernelStamped        int64 // packets timed by the kernel (SO_TIMESTAMPNS)
	maxLate              time.Duration
	haveFirst            bool
	firstAt              time.Time
	firstTS              uint32
	firstSeq, maxSeq     int64 // extended sequence numbers
	lastSeq              uint16
	ended                bool
	// the same over the step's steady window only, timed from the stream's first
	// packet in the window
	wHave                   bool
	wAt                     time.Time
	wTS                     uint32
	wFirstSeq, wMaxSeq      int64
	wReceived, wLost, wLate int64

	first     chan struct{} // closed at the first audio packet
	firstTime atomic.Int64  // unix nanoseconds of that packet
}

// rtpCounts sums streams (or the bridge's counters).
type rtpCounts struct {
	Streams  int   `json:"streams,omitempty"`
	Sent     int64 `json:"sent"`
	Received int64 `json:"received"`
	Lost     int64 `json:"lost"`
	Late     int64 `json:"late"`
	// MaxLateMS is the worst arrival after the due time seen by any stream.
	MaxLateMS float64 `json:"max_late_ms,omitempty"`
	// Steady*: the packets that arrived in the step's steady window (every call
	// up), late reckoned from each stream's first packet in the window.
	SteadyReceived int64 `json:"steady_received,omitempty"`
	SteadyLost     int64 `json:"steady_lost,omitempty"`
	SteadyLate     int64 `json:"steady_late,omitempty"`
}

func (c rtpCounts) steadyBadShare() float64 {
	if exp := c.SteadyReceived + c.SteadyLost; exp > 0 {
		return float64(c.SteadyLost+c.SteadyLate) / float64(exp)
	}
	return 0
}

// badShare is the share of expected packets (received + lost) lost or late.
func (c rtpCounts) badShare() float64 {
	exp := c.Received + c.Lost
	if exp <= 0 {
		return 0
	}
	return float64(c.Lost+c.Late) / float64(exp)
}

func (c *rtpCounts) add(o rtpCounts) {
	c.Streams += o.Streams
	c.Sent += o.Sent
	c.Received += o.Received
	c.Lost += o.Lost
	c.Late += o.Late
	c.MaxLateMS = max(c.MaxLateMS, o.MaxLateMS)
	c.SteadyReceived += o.SteadyReceived
	c.SteadyLost += o.SteadyLost
	c.SteadyLate += o.SteadyLate
}

// rtpSock is one UDP socket shared by streams of one party, read in batches
// (recvmmsg) by one goroutine and written in batches (sendmmsg) by the sender.
type rtpSock struct {
	e    *rtpEngine
	conn *net.UDPConn
	pc   *ipv4.PacketConn
	port int
	done chan struct{}

	mu      sync.Mutex
	byPort  map[int]*rtpStream // the bridge's leg port → stream
	active  []*rtpStream       // sending; under rtpEngine.mu
	unknown int64              // packets from no known leg (before the answer was read, RTCP from elsewhere)
}

// Sockets per party: a few, so that one reader's stall does not fill one buffer.
const rtpSocksPerParty = 4

// rtpEngine owns the sockets, the streams and the sender.
type rtpEngine struct {
	mu       sync.Mutex
	socks    map[string][]*rtpSock
	next     map[string]int
	finished []*rtpStream // ended since the last take
	stop     chan struct{}
	done     chan struct{}
	maxLag   atomic.Int64 // worst lateness of a sender tick, ns, since the last take
	skipped  atomic.Int64 // frames the sender skipped, being too late
	live     atomic.Int64 // streams opened and not ended
	sendErrs atomic.Int64
	// the steady window, unix nanoseconds; none while zero
	winA, winB atomic.Int64
}

// window sets the steady window packets are also counted in; zero times for none.
func (e *rtpEngine) window(a, b time.Time) {
	if a.IsZero() || b.IsZero() {
		e.winA.Store(0)
		e.winB.Store(0)
		return
	}
	e.winA.Store(a.UnixNano())
	e.winB.Store(b.UnixNano())
}

func newRTPEngine() (*rtpEngine, error) {
	e := &rtpEngine{socks: map[string][]*rtpSock{}, next: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	for kind, n := range map[string]int{"caller": rtpSocksPerParty, "operator": rtpSocksPerParty, "supervisor": 1} {
		for i := 0; i < n; i++ {
			sk, err := newRTPSock(e)
			if err != nil {
				e.closeSocks()
				return nil, err
			}
			e.socks[kind] = append(e.socks[kind], sk)
		}
	}
	go e.send()
	return e, nil
}

func newRTPSock(e *rtpEngine) (*rtpSock, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			// As large as root may make it (no rmem_max cap), else what the host allows.
			if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 16<<20) != nil {
				_ = conn.SetReadBuffer(16 << 20)
			}
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
		})
	}
	sk := &rtpSock{e: e, conn: conn, pc: ipv4.NewPacketConn(conn), port: conn.LocalAddr().(*net.UDPAddr).Port,
		done: make(chan struct{}), byPort: map[int]*rtpStream{}}
	go sk.read()
	return sk, nil
}

func (e *rtpEngine) closeSocks() {
	for _, socks := range e.socks {
		for _, sk := range socks {
			sk.conn.Close()
			<-sk.done
		}
	}
}

func (e *rtpEngine) close() {
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	<-e.done
	e.closeSocks()
}

// open makes a stream of a party on one of its sockets (round robin).
func (e *rtpEngine) open(kind string, payload []byte) (*rtpStream, error) {
	e.mu.Lock()
	socks := e.socks[kind]
	if len(socks) == 0 {
		e.mu.Unlock()
		return nil, fmt.Errorf("rtp: no socket for %s", kind)
	}
	sk := socks[e.next[kind]%len(socks)]
	e.next[kind]++
	e.mu.Unlock()
	e.live.Add(1)
	s := &rtpStream{kind: kind, sock: sk, port: sk.port, payload: payload, pkt: make([]byte, rtpHeaderLen+rtpSamples),
		ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32(), first: make(chan struct{})}
	s.pkt[0] = 0x80
	binary.BigEndian.PutUint32(s.pkt[8:], s.ssrc)
	copy(s.pkt[rtpHeaderLen:], payload)
	return s, nil
}

// start makes the sender write to remote from now on, and the reader take what
// comes from there.
func (e *rtpEngine) start(s *rtpStream, remote *net.UDPAddr) {
	s.remote, s.start = remote, time.Now()
	s.sock.mu.Lock()
	s.sock.byPort[remote.Port] = s
	s.sock.mu.Unlock()
	e.mu.Lock()
	s.sock.active = append(s.sock.active, s)
	e.mu.Unlock()
}

// end stops the stream and keeps its counts for take. Safe for a stream never
// started; idempotent.
func (e *rtpEngine) end(s *rtpStream) {
	e.mu.Lock()
	act := s.sock.active
	for i, x := range act {
		if x == s {
			s.sock.active = append(act[:i:i], act[i+1:]...)
			break
		}
	}
	e.mu.Unlock()
	sk := s.sock
	sk.mu.Lock()
	if s.ended {
		sk.mu.Unlock()
		return
	}
	s.ended = true
	if s.remote != nil && sk.byPort[s.remote.Port] == s {
		delete(sk.byPort, s.remote.Port)
	}
	if s.haveFirst {
		if exp := s.maxSeq - s.firstSeq + 1; exp > s.received {
			s.lost = exp - s.received
		}
	}
	if s.wHave {
		if exp := s.wMaxSeq - s.wFirstSeq + 1; exp > s.wReceived {
			s.wLost = exp - s.wReceived
		}
	}
	sk.mu.Unlock()
	e.live.Add(-1)
	e.mu.Lock()
	e.finished = append(e.finished, s)
	e.mu.Unlock()
}

// take returns the counts of the streams ended since the last take by kind, and
// the sender's worst lag and skipped frames over that time.
func (e *rtpEngine) take() (map[string]rtpCounts, time.Duration, int64) {
	e.mu.Lock()
	fin := e.finished
	e.finished = nil
	e.mu.Unlock()
	out := map[string]rtpCounts{}
	for _, s := range fin {
		c := out[s.kind]
		c.add(rtpCounts{Streams: 1, Sent: s.sent.Load(), Received: s.received, Lost: s.lost, Late: s.late, MaxLateMS: msf(s.maxLate),
			SteadyReceived: s.wReceived, SteadyLost: s.wLost, SteadyLate: s.wLate})
		out[s.kind] = c
	}
	return out, time.Duration(e.maxLag.Swap(0)), e.skipped.Swap(0)
}

// send is the one sender: every 20 ms each active stream gets the frames due by
// its own clock (started when its call was answered), a socket's in one sendmmsg.
func (e *rtpEngine) send() {
	defer close(e.done)
	t := time.NewTicker(rtpFrame)
	defer t.Stop()
	var (
		streams []*rtpStream
		msgs    []ipv4.Message
		bufs    [][]byte // copies of packets sent in one batch (a catch-up sends several of a stream)
		next    time.Time
		socks   []*rtpSock
	)
	e.mu.Lock()
	for _, ss := range e.socks {
		socks = append(socks, ss...)
	}
	e.mu.Unlock()
	for {
		var tick time.Time
		select {
		case <-e.stop:
			return
		case tick = <-t.C:
		}
		now := time.Now()
		if !next.IsZero() {
			if lag := now.Sub(next); lag > time.Duration(e.maxLag.Load()) {
				e.maxLag.Store(int64(lag))
			}
		}
		next = tick.Add(rtpFrame)
		for _, sk := range socks {
			e.mu.Lock()
			streams = append(streams[:0], sk.active...)
			e.mu.Unlock()
			msgs, bufs = msgs[:0], bufs[:0]
			for _, s := range streams {
				due := int64(now.Sub(s.start)/rtpFrame) + 1
				n := 0
				for s.frames < due {
					if n == rtpCatchUp {
						skip := due - s.frames
						e.skipped.Add(skip)
						s.frames += skip
						s.ts += uint32(skip * rtpSamples)
						break
					}
					pkt := s.pkt
					if n > 0 { // the stream's buffer holds its first packet of this batch
						pkt = append([]byte(nil), s.pkt...)
						bufs = append(bufs, pkt)
					}
					pkt[1] = rtpPCMU
					if s.sent.Load() == 0 && n == 0 {
						pkt[1] |= 0x80 // marker on the first packet
					}
					binary.BigEndian.PutUint16(pkt[2:], s.seq)
					binary.BigEndian.PutUint32(pkt[4:], s.ts)
					msgs = append(msgs, ipv4.Message{Buffers: [][]byte{pkt}, Addr: s.remote})
					s.sent.Add(1)
					s.seq++
					s.ts += rtpSamples
					s.frames++
					n++
				}
			}
			for off := 0; off < len(msgs); {
				n, err := sk.pc.WriteBatch(msgs[off:], 0)
				if err != nil {
					e.sendErrs.Add(1)
					break
				}
				off += n
			}
		}
	}
}

// read counts what the bridge sends on one socket, in batches: audio packets
// (PCMU) by stream, those missing by sequence, and those arriving more than
// rtpLateBudget after their due time, reckoned from the stream's first packet and
// the RTP timestamps, with the kernel's arrival time.
func (sk *rtpSock) read() {
	defer close(sk.done)
	const batch = 64
	msgs := make([]ipv4.Message, batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 1500)}
		msgs[i].OOB = make([]byte, 64)
	}
	for {
		n, err := sk.pc.ReadBatch(msgs, 0)
		if err != nil {
			return
		}
		sk.mu.Lock()
		for i := range msgs[:n] {
			m := &msgs[i]
			ua, _ := m.Addr.(*net.UDPAddr)
			var s *rtpStream
			if ua != nil {
				s = sk.byPort[ua.Port]
			}
			if s == nil {
				sk.unknown++
				continue
			}
			// The kernel's arrival time, when it gave one: a harness slow to read (it
			// shares the cores with the desk) must not make the bridge's packets late.
			now, ok := kernelTime(m.OOB[:m.NN])
			if ok {
				s.kernelStamped++
			} else {
				now = time.Now()
			}
			s.packet(m.Buffers[0][:m.N], now, sk.e.winA.Load(), sk.e.winB.Load())
		}
		sk.mu.Unlock()
	}
}

// packet counts one datagram of the stream's, and again when it arrived in the
// steady window [wa, wb) (unix nanoseconds); under sk.mu.
func (s *rtpStream) packet(buf []byte, now time.Time, wa, wb int64) {
	if len(buf) < rtpHeaderLen || buf[0]>>6 != 2 || buf[1]&0x7f != rtpPCMU {
		return // RTCP, telephone-event, anything else
	}
	seq := binary.BigEndian.Uint16(buf[2:])
	ts := binary.BigEndian.Uint32(buf[4:])
	s.received++
	if !s.haveFirst {
		s.haveFirst, s.firstAt, s.firstTS = true, now, ts
		s.firstSeq, s.maxSeq, s.lastSeq = int64(seq), int64(seq), seq
		s.firstTime.Store(now.UnixNano())
		close(s.first)
	} else {
		if d := int16(seq - s.lastSeq); d > 0 {
			s.maxSeq += int64(d)
			s.lastSeq = seq
		}
		if after := now.Sub(dueAt(s.firstAt, s.firstTS, ts)); after > rtpLateBudget {
			s.late++
			s.maxLate = max(s.maxLate, after)
		}
	}
	if ns := now.UnixNano(); wa == 0 || ns < wa || ns >= wb {
		return
	}
	s.wReceived++
	if !s.wHave {
		s.wHave, s.wAt, s.wTS, s.wFirstSeq = true, now, ts, s.maxSeq
	} else if now.Sub(dueAt(s.wAt, s.wTS, ts)) > rtpLateBudget {
		s.wLate++
	}
	s.wMaxSeq = s.maxSeq
}

// dueAt is when the packet of timestamp ts is due, by a reference packet's
// arrival at and timestamp ts0 (8 kHz).
func dueAt(at time.Time, ts0, ts uint32) time.Time {
	return at.Add(time.Duration(int32(ts-ts0)) * time.Second / 8000)
}

// firstPacket is when the first audio packet arrived, zero before.
func (s *rtpStream) firstPacket() time.Time {
	if ns := s.firstTime.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// kernelTime reads the SO_TIMESTAMPNS control message of a datagram: one cmsghdr
// (length, level, type: 16 bytes on 64-bit Linux) and a timespec.
func kernelTime(oob []byte) (time.Time, bool) {
	const hdr = 16
	for len(oob) >= hdr {
		l := int(binary.NativeEndian.Uint64(oob))
		level := int32(binary.NativeEndian.Uint32(oob[8:]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:]))
		if l < hdr || l > len(oob) {
			return time.Time{}, false
		}
		if level == syscall.SOL_SOCKET && typ == syscall.SCM_TIMESTAMPNS && l >= hdr+16 {
			sec := int64(binary.NativeEndian.Uint64(oob[hdr:]))
			nsec := int64(binary.NativeEndian.Uint64(oob[hdr+8:]))
			return time.Unix(sec, nsec), true
		}
		oob = oob[(l+7)&^7:]
	}
	return time.Time{}, false
}
