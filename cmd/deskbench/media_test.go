package main

import (
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/sip"
	"github.com/calldesk/desk/sip/b2bua"
)

// mediaLines is a proxy Handler for the media phase's peers without a desk: line
// "media" goes to the bridge, its operator legs to the next free operator that
// registered, and monitor legs to the supervisor's own binding.
type mediaLines struct {
	mu       sync.Mutex
	bindings map[string][]sip.Binding
	busy     map[string]string // operator → Call-ID
	next     int
}

func (h *mediaLines) DigestHA1(_ context.Context, user string) (string, error) {
	return desk.SIPHA1(user, domain, password), nil
}

func (h *mediaLines) Bindings(_ context.Context, u string) ([]sip.Binding, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bindings[u], nil
}

func (h *mediaLines) PutBindings(_ context.Context, u string, b []sip.Binding) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bindings[u] = b
	return nil
}

func (h *mediaLines) Route(_ context.Context, inv sip.Invite) sip.Decision {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch inv.Leg {
	case "":
		if inv.Dialled != mediaLine {
			return sip.Decision{Status: 404}
		}
		return sip.Decision{Media: true}
	case sip.LegOperator:
		for range h.bindings {
			h.next++
			l := mediaOpLogin(h.next%len(h.bindings) + 1)
			if b := h.bindings[l]; len(b) > 0 && h.busy[l] == "" {
				h.busy[l] = inv.CallID
				return sip.Decision{Target: l, Contacts: b, RingTimeout: 5 * time.Second}
			}
		}
		return sip.Decision{Status: 480, Reason: "No Operator"}
	case sip.LegMonitor:
		return sip.Decision{Target: inv.Dialled, Contacts: h.bindings[inv.Dialled], RingTimeout: 5 * time.Second, Quiet: true}
	}
	return sip.Decision{Status: 403}
}

func (h *mediaLines) CallEvent(ev sip.CallEvent) {
	if ev.Kind != sip.EventEnded && ev.Kind != sip.EventMissed && ev.Kind != sip.EventTargetFailed {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for l, id := range h.busy {
		if id == ev.CallID {
			delete(h.busy, l)
		}
	}
}

// TestMediaPeers runs the media phase's peers against the real proxy and media
// bridge, in process, without a desk: every call is bridged, the RTP counts add
// up both ways, and a supervisor leg gets its first packet.
func TestMediaPeers(t *testing.T) {
	const calls, hold = 12, 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := &mediaLines{bindings: map[string][]sip.Binding{}, busy: map[string]string{}}
	br, err := b2bua.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	px, err := sip.New(h, sip.WithDomain(domain), sip.WithBridge(br.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- px.ListenAndServe(ctx, "127.0.0.1:0") }()
	select {
	case <-px.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	br.SetProxy(px.Addr())

	rtp, err := newRTPEngine()
	if err != nil {
		t.Fatal(err)
	}
	defer rtp.close()
	ops, err := newMediaPhone("operator", rtp, 20*time.Millisecond, toneOperator)
	if err != nil {
		t.Fatal(err)
	}
	defer ops.close()
	sup, err := newMediaPhone("supervisor", rtp, 0, toneSupervisor)
	if err != nil {
		t.Fatal(err)
	}
	defer sup.close()
	supCh := make(chan supAnswer, 1)
	sup.answered = func(login string, at time.Time, s *rtpStream, ended <-chan struct{}) {
		supCh <- supAnswer{at: at, s: s, ended: ended, callee: login}
	}
	for i := 1; i <= calls; i++ {
		if err := ops.register(ctx, px.Addr(), mediaOpLogin(i), password); err != nil {
			t.Fatal(err)
		}
	}
	if err := sup.register(ctx, px.Addr(), mediaSup, password); err != nil {
		t.Fatal(err)
	}
	callers, err := newCallerAgent(rtp, px.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer callers.close()

	var settled atomic.Int64
	release := make(chan struct{})
	results := make([]mediaCall, calls)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = callers.call(ctx, mediaLine, unknownNumber(i), "Caller "+strconv.Itoa(i), func() { settled.Add(1) }, release)
		}()
		time.Sleep(20 * time.Millisecond)
	}
	for settled.Load() < calls && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)

	// A supervisor leg, straight through the bridge (the desk's API is not here).
	var opCallID string
	h.mu.Lock()
	for _, id := range h.busy {
		opCallID = id
		break
	}
	h.mu.Unlock()
	t0 := time.Now()
	if err := br.Monitor(ctx, opCallID, mediaSup, b2bua.Listen); err != nil {
		t.Fatalf("monitor %s: %v", opCallID, err)
	}
	select {
	case a := <-supCh:
		select {
		case <-a.s.first:
			t.Logf("supervisor: answered after %s, first RTP after %s", a.at.Sub(t0), a.s.firstPacket().Sub(t0))
		case <-time.After(5 * time.Second):
			t.Error("no RTP on the supervisor's phone")
		}
		if err := br.StopMonitor(ctx, opCallID, mediaSup); err != nil {
			t.Error(err)
		}
		select {
		case <-a.ended:
		case <-time.After(5 * time.Second):
			t.Error("the supervisor's leg did not end")
		}
	case <-time.After(10 * time.Second):
		t.Error("the supervisor's phone was not rung")
	}

	time.Sleep(hold)
	close(release)
	wg.Wait()
	for i := 0; i < 100 && (rtp.live.Load() > 0 || br.Active() > 0); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	for i, r := range results {
		if !r.Answered || r.Err != nil || r.HungUpByDesk {
			t.Errorf("call %d: answered %v, hung up by the desk %v, err %v", i, r.Answered, r.HungUpByDesk, r.Err)
		}
	}
	by, lag, skipped := rtp.take()
	t.Logf("by party: %+v; sender lag %s, skipped %d", by, lag, skipped)
	// Counting, not quality: this host may be busy with other tests.
	for _, party := range []string{"caller", "operator"} {
		c := by[party]
		if c.Received < int64(calls)*int64(hold/rtpFrame)/2 || c.Sent == 0 || c.Lost > c.Received/10 {
			t.Errorf("%s: too little sent or received: %+v", party, c)
		}
	}
	if c := by["supervisor"]; c.Received == 0 {
		t.Errorf("supervisor: nothing received: %+v", c)
	}
	if lost, late := by["caller"].Lost+by["operator"].Lost, by["caller"].Late+by["operator"].Late; lost+late > 0 {
		t.Logf("lost %d, late %d (kernel arrival times)", lost, late)
	}
	if c := by["caller"]; c.Streams != calls {
		t.Errorf("caller streams: %d, want %d", c.Streams, calls)
	}
}

func TestSDPAddr(t *testing.T) {
	a, err := sdpAddr(sdpFor(4242))
	if err != nil || a.String() != "127.0.0.1:4242" {
		t.Fatalf("sdpAddr = %v, %v", a, err)
	}
	if _, err := sdpAddr([]byte("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 8\r\n")); err == nil {
		t.Error("PCMA only: want an error")
	}
}

func TestMediaRedis(t *testing.T) {
	for in, want := range map[string]string{
		"redis://127.0.0.1:6379/0":    "redis://127.0.0.1:6379/1",
		"redis://127.0.0.1:6379":      "redis://127.0.0.1:6379/1",
		"redis://:pw@10.0.0.1:6379/3": "redis://:pw@10.0.0.1:6379/4",
	} {
		got, _, err := mediaRedis(in)
		if err != nil || got != want {
			t.Errorf("mediaRedis(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestRTPCounts sends a stream with a gap and a late packet to a reader and checks
// its counts, and that the kernel timed the packets.
func TestRTPCounts(t *testing.T) {
	e, err := newRTPEngine()
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	s, err := e.open("caller", toneCaller)
	if err != nil {
		t.Fatal(err)
	}
	src, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	e.start(s, src.LocalAddr().(*net.UDPAddr))
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.port}
	pkt := make([]byte, rtpHeaderLen+rtpSamples)
	pkt[0] = 0x80
	send := func(seq uint16) {
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*rtpSamples)
		if _, err := src.WriteToUDP(pkt, dst); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	for seq := uint16(0); seq < 10; seq++ {
		if seq == 4 {
			continue // lost
		}
		time.Sleep(time.Until(start.Add(time.Duration(seq) * rtpFrame)))
		send(seq)
	}
	time.Sleep(time.Until(start.Add(10*rtpFrame + 100*time.Millisecond)))
	send(10) // 100 ms after its time: late
	time.Sleep(50 * time.Millisecond)
	e.end(s)
	by, _, _ := e.take()
	c := by["caller"]
	if c.Received != 10 || c.Lost != 1 || c.Late != 1 {
		t.Errorf("counts %+v, want 10 received, 1 lost, 1 late", c)
	}
	if s.kernelStamped != 10 {
		t.Errorf("%d of 10 packets timed by the kernel", s.kernelStamped)
	}
}
