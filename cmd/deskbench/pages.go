package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/calldesk/desk/desk/httpapi"
)

func (b *bench) session(login string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions[login]
}

// dialPage opens the websocket of login's page on the measured node.
func (b *bench) dialPage(ctx context.Context, login string) (*websocket.Conn, error) {
	return b.dialPageAt(ctx, b.web, login)
}

// dialPageAt opens the websocket of login's page on the node serving web, as the
// browser does: session cookie and the node's own Origin.
func (b *bench) dialPageAt(ctx context.Context, web, login string) (*websocket.Conn, error) {
	h := http.Header{}
	h.Set("Cookie", httpapi.CookieName+"="+b.session(login))
	h.Set("Origin", web)
	d := websocket.Dialer{HandshakeTimeout: 20 * time.Second, ReadBufferSize: 16 << 10}
	conn, resp, err := d.DialContext(ctx, strings.Replace(web, "http", "ws", 1)+"/ws", h)
	if err != nil {
		st := 0
		if resp != nil {
			st = resp.StatusCode
		}
		return nil, fmt.Errorf("websocket of %s: %v (HTTP %d)", login, err, st)
	}
	return conn, nil
}

// dialMany opens n connections with at most 32 handshakes at a time.
func dialMany(ctx context.Context, n int, open func(i int) error) error {
	sem := make(chan struct{}, 32)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := open(i); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// operatorPool is the operators' pages: each reads its frames, notes when each
// call's pop arrived, and closes every wrap-up as an operator would, so that the
// desk holds him off calls only for as long as a wrap-up takes.
type operatorPool struct {
	b     *bench
	web   string // the node the pages and their HTTP requests go to
	hc    *http.Client
	mu    sync.Mutex
	conns []*websocket.Conn
	pops  map[string]time.Time // sip_call_id → when its call.ringing was read
	wg    sync.WaitGroup

	wrapups, wrapupErrors, retries atomic.Int64
	lastErr                        atomic.Value
}

func newOperatorPool(b *bench, web string) *operatorPool {
	return &operatorPool{b: b, web: web, pops: map[string]time.Time{},
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
}

// open connects the pages of operators from..to.
func (p *operatorPool) open(ctx context.Context, from, to int) error {
	var logins []string
	for i := from; i <= to; i++ {
		logins = append(logins, opLogin(i))
	}
	return p.openLogins(ctx, logins)
}

// openLogins connects the pages of these operators to the pool's node.
func (p *operatorPool) openLogins(ctx context.Context, logins []string) error {
	err := dialMany(ctx, len(logins), func(i int) error {
		login := logins[i]
		conn, err := p.b.dialPageAt(ctx, p.web, login)
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.conns = append(p.conns, conn)
		p.mu.Unlock()
		p.wg.Add(1)
		go p.read(login, conn)
		return nil
	})
	if err == nil {
		time.Sleep(500 * time.Millisecond) // presence heartbeat: pages count as open
	}
	return err
}

// opFrame is what an operator page reads of a frame.
type opFrame struct {
	Type string `json:"type"`
	Call *struct {
		ID        string          `json:"id"`
		SIPCallID string          `json:"sip_call_id"`
		Contact   json.RawMessage `json:"contact"`
	} `json:"call"`
	Contact json.RawMessage `json:"contact"`
}

func (p *operatorPool) read(login string, conn *websocket.Conn) {
	defer p.wg.Done()
	unknown := map[string]bool{} // calls whose caller the desk did not know
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		at := time.Now()
		if !bytes.Contains(msg[:min(len(msg), 40)], []byte(`"call.`)) {
			continue
		}
		var f opFrame
		if json.Unmarshal(msg, &f) != nil || f.Call == nil {
			continue
		}
		switch f.Type {
		case "call.ringing":
			p.mu.Lock()
			if _, seen := p.pops[f.Call.SIPCallID]; !seen {
				p.pops[f.Call.SIPCallID] = at
			}
			p.mu.Unlock()
			c := f.Contact
			if len(c) == 0 {
				c = f.Call.Contact
			}
			if len(c) == 0 || string(c) == "null" {
				unknown[f.Call.ID] = true
			}
		case "call.ended":
			isNew := unknown[f.Call.ID]
			delete(unknown, f.Call.ID)
			p.wg.Add(1)
			go p.wrapup(login, f.Call.ID, isNew)
		case "call.missed":
			delete(unknown, f.Call.ID)
		}
	}
}

// wrapup answers what the desk requires (the source, and name and company for a
// new caller) and closes the record, as the operator's page does.
func (p *operatorPool) wrapup(login, callID string, isNew bool) {
	defer p.wg.Done()
	type step struct {
		id     string
		fields map[string]string
	}
	steps := []step{{"source", map[string]string{"source": "web_search"}}}
	if isNew {
		steps = append(steps, step{"contact", map[string]string{"name": "New caller", "company": "Prospect Ltd"}})
	}
	for _, st := range steps {
		body := map[string]any{"op": "bench-" + st.id + "-" + callID, "step": st.id, "fields": st.fields}
		if err := p.send(login, "PUT", "/api/calls/"+callID+"/answers", body); err != nil {
			p.fail(err)
			return
		}
	}
	if err := p.send(login, "POST", "/api/calls/"+callID+"/wrapup", map[string]string{"outcome": "interest"}); err != nil {
		p.fail(err)
		return
	}
	p.wrapups.Add(1)
}

func (p *operatorPool) fail(err error) {
	p.wrapupErrors.Add(1)
	p.lastErr.Store(err.Error())
}

func (p *operatorPool) send(login, method, path string, body any) error {
	raw, _ := json.Marshal(body)
	// Like the page: a 503 (the call's record is still being written, or Redis is
	// away) is retried with backoff, so nothing typed is lost.
	var err error
	for attempt, wait := 0, 50*time.Millisecond; attempt < 30; attempt, wait = attempt+1, min(2*wait, time.Second) {
		var status int
		if status, err = p.sendOnce(login, method, path, raw); err == nil || status != http.StatusServiceUnavailable {
			return err
		}
		p.retries.Add(1)
		time.Sleep(wait)
	}
	return err
}

func (p *operatorPool) sendOnce(login, method, path string, raw []byte) (int, error) {
	req, err := http.NewRequest(method, p.web+path, bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", p.web)
	req.AddCookie(&http.Cookie{Name: httpapi.CookieName, Value: p.b.session(login)})
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s as %s: %d %s", method, path, login, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return resp.StatusCode, nil
}

// report logs wrap-ups that failed since the last report: an operator whose
// wrap-up failed stays held, and the next calls find fewer operators.
func (p *operatorPool) report() {
	if n := p.wrapupErrors.Swap(0); n > 0 {
		p.b.logf("%d wrap-ups failed; the last: %v", n, p.lastErr.Load())
	}
	if n := p.retries.Swap(0); n > 0 {
		p.b.logf("%d answer or wrap-up requests were retried after a 503", n)
	}
}

// takePops returns and forgets the pop times read so far.
func (p *operatorPool) takePops() map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.pops
	p.pops = map[string]time.Time{}
	return out
}

// settle waits until no wrap-up is in flight for a moment, so that the next phase
// finds every operator free.
func (p *operatorPool) settle(d time.Duration) {
	last, quiet := p.wrapups.Load()+p.wrapupErrors.Load(), 0
	for deadline := time.Now().Add(d); time.Now().Before(deadline) && quiet < 4; {
		time.Sleep(250 * time.Millisecond)
		now := p.wrapups.Load() + p.wrapupErrors.Load()
		if now == last {
			quiet++
		} else {
			last, quiet = now, 0
		}
	}
}

func (p *operatorPool) close() {
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// fanout is the supervisors' pages of the fan-out figure: each notes, for every
// event frame, how long after its publish time ("at") it was read.
type fanout struct {
	conns    []*websocket.Conn
	mu       sync.Mutex
	delays   []time.Duration
	frames   atomic.Int64
	counting atomic.Bool
	wg       sync.WaitGroup
}

func (b *bench) openFanout(ctx context.Context, n int) (*fanout, error) {
	f := &fanout{}
	var mu sync.Mutex
	err := dialMany(ctx, n, func(i int) error {
		conn, err := b.dialPage(ctx, supervisor)
		if err != nil {
			return err
		}
		mu.Lock()
		f.conns = append(f.conns, conn)
		mu.Unlock()
		f.wg.Add(1)
		go f.read(conn)
		return nil
	})
	if err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

var atKey = []byte(`"at":"`)

func (f *fanout) read(conn *websocket.Conn) {
	defer f.wg.Done()
	var mine []time.Duration
	defer func() {
		f.mu.Lock()
		f.delays = append(f.delays, mine...)
		f.mu.Unlock()
	}()
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		if !f.counting.Load() {
			continue
		}
		// The hub writes "at" in the frame's head, before the payload, so the first
		// one is the frame's; the payload is not decoded, to keep the reader cheap.
		i := bytes.Index(msg, atKey)
		if i < 0 {
			continue
		}
		rest := msg[i+len(atKey):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
		if err != nil {
			continue
		}
		f.frames.Add(1)
		mine = append(mine, now.Sub(at))
	}
}

// close ends every page and returns the delays seen while counting.
func (f *fanout) close() []time.Duration {
	for _, c := range f.conns {
		c.Close()
	}
	f.wg.Wait()
	return f.delays
}
