package hub

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/calldesk/desk/desk"
)

type itemKind uint8

const (
	itemFrame itemKind = iota // a channel frame with epoch and seq
	itemRaw                   // a frame for this page only (errors), outside the seq order
	itemCheck                 // compare with the channel head in Redis and catch up
)

type item struct {
	kind  itemKind
	epoch string
	seq   int64
	data  []byte
}

// conn is one page. Its writer goroutine owns the socket's write side and the
// page's position (epoch, last); everything else only offers items to its queue.
type conn struct {
	h       *Hub
	ws      *websocket.Conn
	user    *desk.User
	channel string
	in      chan item
	done    chan struct{}
	once    sync.Once

	epoch string
	last  int64
}

// offer queues it without blocking; a page whose queue is full is dropped.
func (c *conn) offer(it item) {
	select {
	case <-c.done:
		return
	default:
	}
	select {
	case c.in <- it:
	default:
		c.h.m.slow.Inc()
		c.h.log.Warn("hub: page too slow, dropped", "login", c.user.Login, "channel", c.channel)
		c.close()
	}
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		c.ws.Close()
	})
}

// ServeWS upgrades the request and serves the page of user until it goes away.
// Authentication and the Origin policy are the caller's; the page's channel
// follows from the user's role. Query parameters since and epoch resume a page.
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request, user *desk.User) {
	var since int64 = -1
	if s := r.URL.Query().Get("since"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
			since = n
		}
	}
	epoch := r.URL.Query().Get("epoch")
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		h.log.Debug("hub: upgrade failed", "err", err)
		return
	}
	c := &conn{
		h:       h,
		ws:      ws,
		user:    user,
		channel: ChannelFor(user),
		in:      make(chan item, h.sendQueue),
		done:    make(chan struct{}),
	}
	// Register before reading the channel head: frames published from now on are
	// queued, and the writer drops those the replay or snapshot already covers.
	h.register(c)
	defer h.unregister(c)
	h.pageOpened(user)
	defer h.pageClosed(user)
	go c.readLoop()
	c.writeLoop(since, epoch)
}

func (c *conn) write(data []byte) error {
	c.ws.SetWriteDeadline(time.Now().Add(c.h.writeWait))
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		return err
	}
	c.h.m.frames.Inc()
	return nil
}

func (c *conn) writeLoop(since int64, epoch string) {
	defer c.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.done:
		case <-c.h.stop:
		}
		cancel()
	}()
	if err := c.start(ctx, since, epoch); err != nil {
		c.h.log.Debug("hub: page start failed", "login", c.user.Login, "err", err)
		return
	}
	ping := time.NewTicker(c.h.pingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.h.stop:
			c.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"),
				time.Now().Add(time.Second))
			return
		case it := <-c.in:
			if err := c.handle(ctx, it); err != nil {
				c.h.log.Debug("hub: page write failed", "login", c.user.Login, "err", err)
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.h.writeWait)); err != nil {
				return
			}
		}
	}
}

// start brings a new page up to the channel head: a replay of what it missed when
// it names an epoch and seq the history still holds, a snapshot otherwise.
func (c *conn) start(ctx context.Context, since int64, epoch string) error {
	m, err := c.h.readMeta(ctx, c.channel)
	if err != nil {
		m = c.h.localMeta(c.channel)
	}
	if since >= 0 && epoch == m.epoch && since <= m.seq {
		if since == m.seq {
			c.epoch, c.last = m.epoch, since
			return nil
		}
		if !m.local {
			frames, err := c.h.history(ctx, c.channel, since+1, m.seq)
			if err == nil {
				c.epoch, c.last = m.epoch, since
				c.h.m.resumes.WithLabelValues("replay").Inc()
				return c.writeFrames(frames)
			}
			c.h.log.Debug("hub: replay impossible, sending snapshot", "channel", c.channel, "err", err)
		}
	}
	if since >= 0 {
		c.h.m.resumes.WithLabelValues("snapshot").Inc()
	}
	return c.sendSnapshot(ctx, m.seq, m.epoch)
}

func (c *conn) writeFrames(frames []item) error {
	for _, f := range frames {
		if err := c.write(f.data); err != nil {
			return err
		}
		c.last = f.seq
	}
	return nil
}

func (c *conn) handle(ctx context.Context, it item) error {
	switch it.kind {
	case itemRaw:
		return c.write(it.data)
	case itemCheck:
		m, err := c.h.readMeta(ctx, c.channel)
		if err != nil {
			return nil // still down; the next wake-up or check tries again
		}
		if m.epoch != c.epoch {
			return c.sendSnapshot(ctx, m.seq, m.epoch)
		}
		if m.seq > c.last {
			return c.catchUp(ctx, m.seq)
		}
		return nil
	}
	if it.epoch != c.epoch {
		// The channel's history changed life (Redis restarted or came back from an
		// outage): what the page holds cannot be patched, so it starts over from a
		// snapshot placed just before this frame, and then gets the frame.
		if err := c.sendSnapshot(ctx, it.seq-1, it.epoch); err != nil {
			return err
		}
	}
	if it.seq <= c.last {
		return nil // already covered by the replay or the snapshot
	}
	if it.seq > c.last+1 {
		if err := c.catchUp(ctx, it.seq-1); err != nil {
			return err
		}
	}
	if err := c.write(it.data); err != nil {
		return err
	}
	c.last = it.seq
	return nil
}

// catchUp fills the frames after c.last up to and including to from history, or
// resyncs the page from a snapshot when history cannot.
func (c *conn) catchUp(ctx context.Context, to int64) error {
	if c.epoch != c.h.localEpoch {
		frames, err := c.h.history(ctx, c.channel, c.last+1, to)
		if err == nil {
			return c.writeFrames(frames)
		}
		c.h.log.Debug("hub: catch-up from history failed", "channel", c.channel, "err", err)
	}
	return c.sendSnapshot(ctx, to, c.epoch)
}

// snapshotHead is the fixed part of a snapshot frame.
type snapshotHead struct {
	Type  string     `json:"type"`
	Seq   int64      `json:"seq"`
	Epoch string     `json:"epoch"`
	User  *desk.User `json:"user"`
	// Degraded is set when the snapshot payload could not be built (store down).
	Degraded bool `json:"degraded,omitempty"`
}

func (c *conn) sendSnapshot(ctx context.Context, seq int64, epoch string) error {
	head := snapshotHead{Type: desk.EventSnapshot, Seq: seq, Epoch: epoch, User: c.user}
	var payload any
	if c.h.snapshot != nil {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		p, err := c.h.snapshot(sctx, c.user)
		cancel()
		if err != nil {
			c.h.log.Warn("hub: snapshot payload failed", "login", c.user.Login, "err", err)
			head.Degraded = true
		} else {
			payload = p
		}
	}
	data, err := encodeObject(head, payload)
	if err != nil {
		c.h.log.Error("hub: snapshot payload is not an object", "err", err)
		head.Degraded = true
		data, _ = encodeObject(head)
	}
	if err := c.write(data); err != nil {
		return err
	}
	c.h.m.snapshots.Inc()
	c.epoch, c.last = epoch, seq
	return nil
}

// clientFrame is what a page may send.
type clientFrame struct {
	Type string `json:"type"`
	Away *bool  `json:"away"`
}

func (c *conn) readLoop() {
	defer c.close()
	wait := 2 * c.h.pingInterval
	c.ws.SetReadLimit(8 << 10)
	c.ws.SetReadDeadline(time.Now().Add(wait))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(wait))
	})
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		c.ws.SetReadDeadline(time.Now().Add(wait))
		var f clientFrame
		if err := json.Unmarshal(data, &f); err != nil {
			c.sendError("bad json: " + err.Error())
			continue
		}
		switch f.Type {
		case "presence":
			c.setAway(f)
		default:
			// Unknown frames are ignored so that newer pages work with older nodes.
		}
	}
}

func (c *conn) setAway(f clientFrame) {
	switch {
	case c.user.Role != desk.RoleOperator:
		c.sendError("presence: only operators set away")
		return
	case f.Away == nil:
		c.sendError("presence: away is required")
		return
	case c.h.presence == nil:
		c.sendError("presence: not available")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.h.redisTimeout)
	defer cancel()
	if err := c.h.presence.SetAway(ctx, c.user.Login, *f.Away); err != nil {
		c.h.log.Warn("hub: set away", "login", c.user.Login, "err", err)
		msg := "presence: could not save"
		if errors.Is(err, desk.ErrUnavailable) {
			msg = "presence: store unavailable"
		}
		c.sendError(msg)
		return
	}
	c.h.publishPresence(ctx, c.user.Login)
}

type errorFrame struct {
	Type  string `json:"type"`
	Error string `json:"error"`
}

func (c *conn) sendError(msg string) {
	data, _ := json.Marshal(errorFrame{Type: "error", Error: msg})
	c.offer(item{kind: itemRaw, data: data})
}
