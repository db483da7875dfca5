package httpapi_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/httpapi"
	"github.com/calldesk/desk/desk/recordfile"
)

// fakeBridge is a desk.MediaBridge that records what it was asked. The real
// bridge (sip/b2bua) is tested end to end in cmd/desk.
type fakeBridge struct {
	mu        sync.Mutex
	monitors  []string // "sipCallID supervisor mode"
	stops     []string // "sipCallID supervisor"
	callbacks []desk.CallbackRequest
	err       error // returned by every call when set
}

func (b *fakeBridge) Monitor(_ context.Context, sipCallID, supervisor string, mode desk.MonitorMode) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	b.monitors = append(b.monitors, sipCallID+" "+supervisor+" "+string(mode))
	return nil
}

func (b *fakeBridge) StopMonitor(_ context.Context, sipCallID, supervisor string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	b.stops = append(b.stops, sipCallID+" "+supervisor)
	return nil
}

func (b *fakeBridge) Callback(_ context.Context, cb desk.CallbackRequest) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return "", b.err
	}
	b.callbacks = append(b.callbacks, cb)
	return fmt.Sprintf("cb-sip-%d", len(b.callbacks)), nil
}

func (b *fakeBridge) setErr(err error) {
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
}

func (b *fakeBridge) log() (monitors, stops []string, callbacks []desk.CallbackRequest) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.monitors), slices.Clone(b.stops), slices.Clone(b.callbacks)
}

// liveCall stores a call of operator in state; media says whether the bridge carries it.
func (fe *fullEnv) liveCall(t *testing.T, id, operator string, state desk.CallState, media bool) {
	t.Helper()
	now := fe.clock.Now()
	c := &desk.Call{ID: id, SIPCallID: "sip-" + id, From: "+79160000501", To: "sales", Line: "sales",
		Operator: operator, State: state, Started: now.Add(-time.Minute), Media: media}
	if state == desk.CallAnswered {
		a := now.Add(-30 * time.Second)
		c.Answered = &a
	}
	if err := fe.store.SaveCall(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

func (fe *fullEnv) auditActions(t *testing.T) []string {
	t.Helper()
	entries, err := fe.store.AuditLog(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Action+" "+e.Target+" "+e.Who)
	}
	return out
}

func TestMonitorAPI(t *testing.T) {
	fe := newFullEnv(t)
	bridge := &fakeBridge{}
	fe.sup.SetMediaBridge(bridge)
	fe.liveCall(t, "c-live", "boris", desk.CallAnswered, true)
	fe.liveCall(t, "c-proxy", "boris", desk.CallAnswered, false)
	fe.liveCall(t, "c-ringing", "boris", desk.CallRinging, true)
	ended := fe.endedCall(t, "c-ended", "boris", "+79160000502", "", false)
	ended.Media = true
	if err := fe.store.SaveCall(context.Background(), ended); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, as, method, path, body string
		want                         int
		wantErr                      string // a part of the error text
		wantBridge                   string // what the bridge must have been asked last
	}{
		{"operator may not listen", "maria", "POST", "/api/calls/c-live/monitor", `{"mode":"listen"}`, 403, "forbidden", ""},
		{"operator may not stop", "boris", "DELETE", "/api/calls/c-live/monitor", "", 403, "forbidden", ""},
		{"bad json", "sveta", "POST", "/api/calls/c-live/monitor", `{"mode":`, 400, "bad json", ""},
		{"no mode", "sveta", "POST", "/api/calls/c-live/monitor", `{}`, 400, "listen, whisper or barge", ""},
		{"bad mode", "sveta", "POST", "/api/calls/c-live/monitor", `{"mode":"spy"}`, 400, `"spy" is not listen, whisper or barge`, ""},
		{"unknown call", "sveta", "POST", "/api/calls/nope/monitor", `{"mode":"listen"}`, 404, "not found", ""},
		{"proxy-mode call", "sveta", "POST", "/api/calls/c-proxy/monitor", `{"mode":"listen"}`, 409, "proxy-mode", ""},
		{"still ringing", "sveta", "POST", "/api/calls/c-ringing/monitor", `{"mode":"listen"}`, 409, "not in talk", ""},
		{"over", "sveta", "POST", "/api/calls/c-ended/monitor", `{"mode":"whisper"}`, 409, "not in talk", ""},
		{"listen", "sveta", "POST", "/api/calls/c-live/monitor", `{"mode":"listen"}`, 202, "", "sip-c-live sveta listen"},
		{"switch to whisper", "sveta", "POST", "/api/calls/c-live/monitor", `{"mode":"whisper"}`, 202, "", "sip-c-live sveta whisper"},
		{"admin barges", "root", "POST", "/api/calls/c-live/monitor", `{"mode":"barge"}`, 202, "", "sip-c-live root barge"},
		{"stop", "sveta", "DELETE", "/api/calls/c-live/monitor", "", 204, "", "stop sip-c-live sveta"},
		{"stop an ended call", "sveta", "DELETE", "/api/calls/c-ended/monitor", "", 409, "is over", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request{as: tc.as, method: tc.method, path: tc.path,
				header: map[string]string{"Content-Type": "application/json"}}
			if tc.body != "" {
				req.body = tc.body
			}
			res := fe.do(t, req)
			if res.status != tc.want {
				t.Fatalf("%s %s as %s: %d %s, want %d", tc.method, tc.path, tc.as, res.status, res.body, tc.want)
			}
			if res.status >= 400 {
				if msg := res.errorText(t); !strings.Contains(msg, tc.wantErr) {
					t.Errorf("error %q does not say %q", msg, tc.wantErr)
				}
			}
			if res.status == 202 {
				var got struct {
					CallID string `json:"call_id"`
					Mode   string `json:"mode"`
				}
				res.json(t, &got)
				if got.CallID != "c-live" || !strings.HasSuffix(tc.wantBridge, " "+got.Mode) {
					t.Errorf("response %s", res.body)
				}
			}
			mons, stops, _ := bridge.log()
			switch {
			case strings.HasPrefix(tc.wantBridge, "stop "):
				if len(stops) == 0 || stops[len(stops)-1] != strings.TrimPrefix(tc.wantBridge, "stop ") {
					t.Errorf("bridge stops %q; want last %q", stops, tc.wantBridge)
				}
			case tc.wantBridge != "":
				if len(mons) == 0 || mons[len(mons)-1] != tc.wantBridge {
					t.Errorf("bridge monitors %q; want last %q", mons, tc.wantBridge)
				}
			}
		})
	}
	mons, stops, _ := bridge.log()
	if len(mons) != 3 || len(stops) != 1 {
		t.Errorf("the bridge was asked %d monitors and %d stops; want 3 and 1 (refused requests must not reach it)", len(mons), len(stops))
	}
	actions := fe.auditActions(t)
	for _, want := range []string{"monitor.request c-live sveta", "monitor.request c-live root", "monitor.stop c-live sveta"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit lacks %q: %q", want, actions)
		}
	}

	// What the bridge refuses maps onto the status that says why.
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("sveta: %w", desk.ErrNoPhone), 409},
		{errors.New("sip: 503 from the phone"), 502},
	} {
		bridge.setErr(tc.err)
		res := fe.do(t, request{as: "sveta", method: "POST", path: "/api/calls/c-live/monitor", body: `{"mode":"listen"}`})
		if res.status != tc.want {
			t.Errorf("bridge error %v: %d %s, want %d", tc.err, res.status, res.body, tc.want)
		}
	}
	bridge.setErr(nil)

	// A desk without the bridge says so.
	fe.sup.SetMediaBridge(nil)
	res := fe.do(t, request{as: "sveta", method: "POST", path: "/api/calls/c-live/monitor", body: `{"mode":"listen"}`})
	if res.status != 409 || !strings.Contains(res.errorText(t), "without the media bridge") {
		t.Errorf("without a bridge: %d %s", res.status, res.body)
	}
}

func TestCallbackAPI(t *testing.T) {
	fe := newFullEnv(t)
	bridge := &fakeBridge{}
	ctx := context.Background()
	for _, login := range []string{"maria", "boris"} {
		if err := fe.store.PutBindings(ctx, login, []desk.Binding{{Login: login, Contact: "sip:" + login + "@127.0.0.1:5070",
			Source: "127.0.0.1:5070", Transport: "udp", Expires: time.Now().Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
	}
	k := fe.contact(t, "Anna", "maria", "+79160000601")
	fe.endedCall(t, "c-orig", "maria", "+79160000601", k, false)
	if err := fe.store.SavePromise(ctx, &desk.Promise{ID: "p-maria", ContactID: k, CallID: "c-orig", Owner: "maria",
		Kind: "promise", What: "check stock", Due: secT0.Add(time.Hour), Created: secT0, State: desk.PromiseOpen}); err != nil {
		t.Fatal(err)
	}
	if err := fe.store.SavePromise(ctx, &desk.Promise{ID: "p-nophone", Owner: "maria", Kind: "promise", What: "x",
		Due: secT0.Add(time.Hour), Created: secT0, State: desk.PromiseOpen}); err != nil {
		t.Fatal(err)
	}
	missed := &desk.Call{ID: "c-missed", SIPCallID: "sip-c-missed", From: "+79160000602", To: "+74951234567", Line: "sales",
		State: desk.CallMissed, Started: secT0, Attempts: []desk.Attempt{{Operator: "boris", Started: secT0, Outcome: "timeout"}}}
	if err := fe.store.SaveCall(ctx, missed); err != nil {
		t.Fatal(err)
	}
	fe.sales.CallMissed(ctx, missed) // the pool's callback promise "cb-c-missed"

	// Without the bridge the desk cannot dial.
	res := fe.do(t, request{as: "maria", method: "POST", path: "/api/promises/p-maria/callback", body: `{}`})
	if res.status != 409 || !strings.Contains(res.errorText(t), "without the media bridge") {
		t.Fatalf("without a bridge: %d %s", res.status, res.body)
	}
	fe.sales.SetMediaBridge(bridge)

	for _, tc := range []struct {
		name, as, path string
		want           int
		wantReq        *desk.CallbackRequest
		after          time.Duration // the clock moves on this much first
	}{
		{"another's promise", "boris", "/api/promises/p-maria/callback", 403, nil, 0},
		{"unknown promise", "maria", "/api/promises/nope/callback", 404, nil, 0},
		{"nothing to dial", "maria", "/api/promises/p-nophone/callback", 409, nil, 0},
		{"no phone registered", "sveta", "/api/promises/p-maria/callback", 409, nil, 0},
		{"own promise", "maria", "/api/promises/p-maria/callback", 202,
			&desk.CallbackRequest{Operator: "maria", Number: "+79160000601", Line: "sales", PromiseID: "p-maria", CallID: "c-orig"}, 0},
		{"double click", "maria", "/api/promises/p-maria/callback", 409, nil, 0},
		{"her own ended call, once the guard is over", "maria", "/api/calls/c-orig/callback", 202,
			&desk.CallbackRequest{Operator: "maria", Number: "+79160000601", Line: "sales", CallID: "c-orig"}, 10 * time.Second},
		{"a missed call that never rang her", "maria", "/api/calls/c-missed/callback", 202,
			&desk.CallbackRequest{Operator: "maria", Number: "+79160000602", Line: "sales", PromiseID: "cb-c-missed", CallID: "c-missed"}, 10 * time.Second},
		{"missed call that rang him", "boris", "/api/calls/c-missed/callback", 202,
			&desk.CallbackRequest{Operator: "boris", Number: "+79160000602", Line: "sales", PromiseID: "cb-c-missed", CallID: "c-missed"}, 0},
		{"unknown call", "boris", "/api/calls/nope/callback", 404, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fe.clock.Add(tc.after)
			_, _, before := bridge.log()
			res := fe.do(t, request{as: tc.as, method: "POST", path: tc.path, body: `{}`})
			if res.status != tc.want {
				t.Fatalf("POST %s as %s: %d %s, want %d", tc.path, tc.as, res.status, res.body, tc.want)
			}
			_, _, after := bridge.log()
			if tc.wantReq == nil {
				if len(after) != len(before) {
					t.Errorf("a refused callback reached the bridge: %+v", after[len(after)-1])
				}
				if res.status >= 400 {
					res.errorText(t)
				}
				return
			}
			var got struct {
				SIPCallID string `json:"sip_call_id"`
			}
			res.json(t, &got)
			if len(after) != len(before)+1 || after[len(after)-1] != *tc.wantReq {
				t.Fatalf("bridge asked %+v; want %+v", after, *tc.wantReq)
			}
			if got.SIPCallID != fmt.Sprintf("cb-sip-%d", len(after)) {
				t.Errorf("response %s", res.body)
			}
		})
	}
	if actions := fe.auditActions(t); !slices.Contains(actions, "callback.dial promise p-maria maria") {
		t.Errorf("audit lacks the dial: %q", actions)
	}

	// The customer answers: the promise is kept, once.
	for range 2 {
		if err := fe.sales.CallbackAnswered(ctx, "cb-sip-1", "p-maria"); err != nil {
			t.Fatal(err)
		}
	}
	p, err := fe.store.Promise(ctx, "p-maria")
	if err != nil {
		t.Fatal(err)
	}
	if p.State != desk.PromiseKept || p.Result != desk.ResultCalledBack || p.KeptAt == nil {
		t.Errorf("promise after the answer: %+v", p)
	}
	n := 0
	for _, a := range fe.auditActions(t) {
		if strings.HasPrefix(a, "callback.connected promise p-maria") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d callback.connected entries; want 1", n)
	}
}

// wav writes a small stereo 8 kHz 16-bit WAV of n sample frames.
func wav(n int) []byte {
	data := make([]byte, n*4)
	for i := range data {
		data[i] = byte(i)
	}
	h := make([]byte, 44)
	copy(h, "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+len(data)))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1)
	binary.LittleEndian.PutUint16(h[22:], 2)
	binary.LittleEndian.PutUint32(h[24:], 8000)
	binary.LittleEndian.PutUint32(h[28:], 8000*4)
	binary.LittleEndian.PutUint16(h[32:], 4)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(len(data)))
	return append(h, data...)
}

func TestRecordingAPI(t *testing.T) {
	dir, err := recordfile.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	body := wav(1000)
	f, err := dir.Create("sip-c-rec", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(body); err != nil {
		t.Fatal(err)
	}
	f.Close()

	setup := func(fe *fullEnv) {
		c := fe.endedCall(t, "c-rec", "maria", "+79160000701", "", false)
		c.Recorded, c.Media = true, true
		if err := fe.store.SaveCall(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		fe.endedCall(t, "c-boris", "boris", "+79160000702", "", false)
		fe.liveCall(t, "c-live", "maria", desk.CallAnswered, true)
	}
	def := newFullEnv(t, httpapi.WithRecordings(dir))
	setup(def)
	ops := newFullEnv(t, httpapi.WithRecordings(dir, desk.RoleOperator, desk.RoleSupervisor))
	setup(ops)
	none := newFullEnv(t)
	setup(none)

	for _, tc := range []struct {
		name   string
		fe     *fullEnv
		as     string
		path   string
		rng    string
		want   int
		length int
	}{
		{"supervisor plays", def, "sveta", "/api/calls/c-rec/recording", "", 200, len(body)},
		{"admin seeks", def, "root", "/api/calls/c-rec/recording", "bytes=100-199", 206, 100},
		{"operator by default", def, "maria", "/api/calls/c-rec/recording", "", 403, 0},
		{"anonymous", def, "", "/api/calls/c-rec/recording", "", 401, 0},
		{"unknown call", def, "sveta", "/api/calls/nope/recording", "", 404, 0},
		{"not recorded", def, "sveta", "/api/calls/c-boris/recording", "", 404, 0},
		{"still going on", def, "sveta", "/api/calls/c-live/recording", "", 409, 0},
		{"operator allowed: his own", ops, "maria", "/api/calls/c-rec/recording", "bytes=44-", 206, len(body) - 44},
		{"operator allowed: another's", ops, "boris", "/api/calls/c-rec/recording", "", 403, 0},
		{"supervisor still allowed", ops, "sveta", "/api/calls/c-rec/recording", "", 200, len(body)},
		{"no recordings configured", none, "sveta", "/api/calls/c-rec/recording", "", 404, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request{as: tc.as, method: "GET", path: tc.path}
			if tc.rng != "" {
				req.header = map[string]string{"Range": tc.rng}
			}
			res := tc.fe.do(t, req)
			if res.status != tc.want {
				t.Fatalf("GET %s as %s: %d %s, want %d", tc.path, tc.as, res.status, res.body, tc.want)
			}
			if res.status >= 400 {
				res.errorText(t)
				return
			}
			if len(res.body) != tc.length {
				t.Errorf("%d bytes; want %d", len(res.body), tc.length)
			}
			h := res.header
			if h.Get("Content-Type") != "audio/wav" || h.Get("X-Content-Type-Options") != "nosniff" ||
				h.Get("Accept-Ranges") != "bytes" || !strings.Contains(h.Get("Cache-Control"), "private") {
				t.Errorf("headers: %v", h)
			}
			if cd := h.Get("Content-Disposition"); !strings.HasPrefix(cd, `inline; filename="call-`) || !strings.HasSuffix(cd, `-c-rec.wav"`) {
				t.Errorf("Content-Disposition %q", cd)
			}
			if tc.want == http.StatusPartialContent {
				start := 0
				fmt.Sscanf(tc.rng, "bytes=%d-", &start)
				if string(res.body) != string(body[start:start+tc.length]) {
					t.Error("the range is not the file's bytes")
				}
				if want := fmt.Sprintf("bytes %d-%d/%d", start, start+tc.length-1, len(body)); h.Get("Content-Range") != want {
					t.Errorf("Content-Range %q; want %q", h.Get("Content-Range"), want)
				}
			} else if string(res.body) != string(body) {
				t.Error("the body is not the recording")
			}
		})
	}
	// A playback from the start is audited; a seek is not.
	var plays []string
	for _, a := range def.auditActions(t) {
		if strings.HasPrefix(a, "recording.play") {
			plays = append(plays, a)
		}
	}
	if !slices.Equal(plays, []string{"recording.play c-rec sveta"}) {
		t.Errorf("recording audit %q", plays)
	}
}
