package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sippStats is the last row of a sipp -trace_stat file: cumulative counters.
type sippStats struct {
	Created, Current, Successful, Failed, Retransmissions, Unexpected, DeadCall int
}

// readStats reads the last row of a sipp statistics file.
func readStats(path string) (sippStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return sippStats{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var head, last []string
	for sc.Scan() {
		row := strings.Split(sc.Text(), ";")
		if head == nil {
			head = row
			continue
		}
		if len(row) >= len(head)-1 {
			last = row
		}
	}
	if last == nil {
		return sippStats{}, fmt.Errorf("%s: no statistics row", path)
	}
	col := func(name string) int {
		for i, h := range head {
			if h == name && i < len(last) {
				n, _ := strconv.Atoi(strings.TrimSpace(last[i]))
				return n
			}
		}
		return 0
	}
	return sippStats{
		Created:         col("TotalCallCreated"),
		Current:         col("CurrentCall"),
		Successful:      col("SuccessfulCall(C)"),
		Failed:          col("FailedCall(C)"),
		Retransmissions: col("Retransmissions(C)"),
		Unexpected:      col("FailedUnexpectedMessage(C)"),
		DeadCall:        col("DeadCallMsgs(C)"),
	}, sc.Err()
}

// callerLoad is one sipp caller run: rate calls/s for dur, each holding hold.
type callerLoad struct {
	target string // the server, host:port
	rate   int
	dur    time.Duration
	hold   time.Duration
	trace  bool // keep a message trace, for the INVITE send times
	name   string
	server int // pid of the server under load (with its children), for CPU per call; the desk when 0
}

// loadResult is what one caller run did; Retrans counts both sides, the callers'
// and the operators' phone's.
type loadResult struct {
	Rate       int     `json:"rate"`
	Seconds    float64 `json:"seconds"`
	Calls      int     `json:"calls"`
	Successful int     `json:"successful"`
	Failed     int     `json:"failed"`
	Retrans    int     `json:"retransmissions"`
	Clean      bool    `json:"clean"`
	// CPU milliseconds per placed call over the run: the server's (the desk, or
	// Kamailio with its children) and Redis's, from /proc; 0 when unknown.
	ServerCPUPerCall float64 `json:"server_cpu_ms_per_call,omitempty"`
	RedisCPUPerCall  float64 `json:"redis_cpu_ms_per_call,omitempty"`
	statFile         string
	traceFile        string
}

// callers writes the injection file of caller numbers: every other caller is a
// contact the desk knows.
func (b *bench) callers() (string, error) {
	var sb strings.Builder
	sb.WriteString("SEQUENTIAL\n")
	for i := 0; i < 2*knownContacts; i++ {
		n := knownNumber(i / 2)
		if i%2 == 1 {
			n = unknownNumber(i / 2)
		}
		fmt.Fprintf(&sb, "%s;Caller %d\n", n, i)
	}
	return b.writeFile("callers.csv", sb.String())
}

// startCallers starts a sipp caller load; wait on the returned process.
func (b *bench) startCallers(ctx context.Context, l callerLoad) (*process, *loadResult, error) {
	inf, err := b.callers()
	if err != nil {
		return nil, nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	calls := int(float64(l.rate) * l.dur.Seconds())
	if calls < 1 {
		calls = 1
	}
	res := &loadResult{Rate: l.rate, Calls: calls, statFile: filepath.Join(b.dir, l.name+"_stat.csv")}
	args := []string{l.target, "-sf", filepath.Join(b.sipps, "uac.xml"), "-s", "sales", "-inf", inf,
		"-p", strconv.Itoa(port), "-r", strconv.Itoa(l.rate), "-rp", "1000", "-m", strconv.Itoa(calls),
		"-d", ms(l.hold), "-l", strconv.Itoa(calls),
		"-trace_stat", "-stf", res.statFile, "-fd", "1",
		"-trace_err", "-error_file", filepath.Join(b.dir, l.name+"_errors.log"),
		"-timeout", strconv.Itoa(int(l.dur.Seconds()+l.hold.Seconds()) + 60), "-timeout_error"}
	if l.trace {
		res.traceFile = filepath.Join(b.dir, l.name+"_messages.log")
		args = append(args, "-trace_msg", "-message_file", res.traceFile)
	}
	p, err := b.start("sipp "+l.name, b.sippCmd(args...))
	return p, res, err
}

// runCallers runs a caller load to its end and counts it, the phone's
// retransmissions over the same run included.
func (b *bench) runCallers(ctx context.Context, l callerLoad) (*loadResult, error) {
	before := b.phoneRetrans()
	serverPID, redisPID := l.server, b.redisPID(ctx)
	if serverPID == 0 {
		serverPID = b.deskPID()
	}
	serverCPU, redisCPU := procTreeCPU(serverPID), procCPU(redisPID)
	start := time.Now()
	p, res, err := b.startCallers(ctx, l)
	if err != nil {
		return nil, err
	}
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	if serverPID > 0 {
		res.ServerCPUPerCall = float64((procTreeCPU(serverPID) - serverCPU).Milliseconds()) / float64(res.Calls)
	}
	if redisPID > 0 {
		res.RedisCPUPerCall = float64((procCPU(redisPID) - redisCPU).Milliseconds()) / float64(res.Calls)
	}
	st, err := readStats(res.statFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.name, err)
	}
	time.Sleep(1500 * time.Millisecond) // the phone writes its statistics every second
	res.Successful, res.Failed = st.Successful, st.Failed
	res.Retrans = st.Retransmissions + b.phoneRetrans() - before
	res.Clean = res.Successful == res.Calls && res.Failed == 0 && res.Retrans == 0
	return res, nil
}

// registrations is a timed bulk REGISTER run.
type registrations struct {
	Count      int     `json:"count"`
	Successful int     `json:"successful"`
	Failed     int     `json:"failed"`
	Retrans    int     `json:"retransmissions"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"per_second"`
}

// register registers operators from..to (inclusive) at target with digest, from
// port src (any when 0) with their Contact at phonePort, offering up to rate
// REGISTERs a second.
func (b *bench) register(ctx context.Context, target string, from, to, rate, src, phonePort int, name string) (*registrations, error) {
	var sb strings.Builder
	sb.WriteString("SEQUENTIAL\n")
	for i := from; i <= to; i++ {
		l := opLogin(i)
		fmt.Fprintf(&sb, "%s;%s;[authentication username=%s password=%s];%d\n", l, domain, l, password, phonePort)
	}
	inf, err := b.writeFile(name+"_users.csv", sb.String())
	if err != nil {
		return nil, err
	}
	port := src
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	n := to - from + 1
	stat := filepath.Join(b.dir, name+"_stat.csv")
	cmd := b.sippCmd(target, "-sf", filepath.Join(b.sipps, "register_bulk.xml"), "-inf", inf,
		"-p", strconv.Itoa(port), "-r", strconv.Itoa(rate), "-rp", "1000", "-m", strconv.Itoa(n), "-l", "200",
		"-trace_stat", "-stf", stat, "-fd", "1",
		"-trace_err", "-error_file", filepath.Join(b.dir, name+"_errors.log"),
		"-timeout", "120", "-timeout_error")
	start := time.Now()
	p, err := b.start("sipp "+name, cmd)
	if err != nil {
		return nil, err
	}
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	st, err := readStats(stat)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r := &registrations{Count: n, Successful: st.Successful, Failed: st.Failed, Retrans: st.Retransmissions,
		Seconds: secs, PerSecond: float64(st.Successful) / secs}
	if st.Successful != n {
		return r, fmt.Errorf("%s: %d of %d REGISTERs succeeded (see %s)", name, st.Successful, n, b.dir)
	}
	return r, nil
}

// inviteTimes reads, from a sipp -trace_msg file, when each call's first INVITE was
// sent, by Call-ID. On loopback this is when it reached the desk's socket.
func inviteTimes(path string) (map[string]time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	out := map[string]time.Time{}
	var stamp time.Time
	var sent, invite bool
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "-----------"):
			fields := strings.Fields(line)
			if len(fields) >= 3 {
				stamp, _ = time.ParseInLocation("2006-01-02 15:04:05.000000", fields[1]+" "+fields[2], time.Local)
			}
			sent, invite = false, false
		case strings.Contains(line, " message sent"):
			sent = true
		case sent && strings.HasPrefix(line, "INVITE "):
			invite = true
		case invite && strings.HasPrefix(strings.ToLower(line), "call-id:"):
			id := strings.TrimSpace(line[len("call-id:"):])
			if _, seen := out[id]; !seen {
				out[id] = stamp
			}
			invite = false
		}
	}
	return out, sc.Err()
}

// procCPU is the CPU time (user and system) pid has used, from /proc; 0 when
// unknown. The kernel counts in clock ticks, 100 a second on Linux.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: the fields start after its ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// procTreeCPU is procCPU of pid and its children (Kamailio's workers).
func procTreeCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	total := procCPU(pid)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if f := strings.Fields(string(b[i+1:])); i >= 0 && len(f) > 1 && f[1] == strconv.Itoa(pid) {
			total += procCPU(child)
		}
	}
	return total
}

func (b *bench) deskPID() int {
	if b.desk == nil || b.desk.cmd.Process == nil {
		return 0
	}
	return b.desk.cmd.Process.Pid
}

// redisPID is the Redis server's pid, when it runs on this host (INFO server).
func (b *bench) redisPID(ctx context.Context) int {
	info, err := b.rdb.Info(ctx, "server").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}
