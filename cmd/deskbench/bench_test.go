package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSmoke runs the harness as CI does (-quick: a few seconds per phase at low
// rates) so that it cannot rot. It asserts that calls succeed and that every
// figure is produced, never a figure's value: those depend on the machine and
// are the full run's business.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("the harness smoke run takes about a minute")
	}
	for _, tool := range []string{"sipp", "redis-server", "kamailio"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; .ci/test installs it", tool)
		}
	}
	out := filepath.Join(t.TempDir(), "bench.json")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"-quick", "-kamailio", "on", "-json", out}, &stdout, &stderr); err != nil {
		t.Fatalf("deskbench -quick: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	t.Log(stdout.String())
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r results
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("bench.json: %v", err)
	}
	firstStepOK := func(rs *rateSearch) bool {
		return rs != nil && len(rs.Steps) > 0 && rs.Steps[0].Clean && rs.Steps[0].Successful == rs.Steps[0].Calls
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"desk: the first rate step completes every call", firstStepOK(r.Desk)},
		{"kamailio: the first rate step completes every call", firstStepOK(r.Kamailio)},
		{"a clean-rate ratio", r.RateRatio > 0},
		{"pop latency from every call", r.Pop != nil && r.Pop.Load.Failed == 0 && r.Pop.Matched == r.Pop.Load.Calls && r.Pop.Latency.Max > 0},
		{"fan-out delays", r.Fanout != nil && r.Fanout.Frames > 0 && r.Fanout.Delay.P99 > 0},
		{"memory readings with live calls", r.Memory != nil && r.Memory.Live > 0 && r.Memory.Load.Failed == 0 &&
			r.Memory.Before.Goroutines > 0 && r.Memory.Peak.HeapLive > 0 && r.Memory.After.RSS > 0},
		{"every REGISTER succeeded", r.Registrations != nil && r.Registrations.Successful == r.Registrations.Count && r.Registrations.PerSecond > 0},
		{"kamailio REGISTERs too", r.KamailioRegistrations != nil && r.KamailioRegistrations.Successful == r.KamailioRegistrations.Count},
		{"targets listed, not judged in a smoke run", len(r.Targets) >= 5 && !r.Targets[0].Valid},
		{"media: the first step bridges every call, RTP counted both ways", r.Media != nil && len(r.Media.Steps) > 0 &&
			r.Media.Steps[0].Answered == r.Media.Steps[0].Calls && r.Media.Steps[0].Peers.Received > 0 &&
			r.Media.Steps[0].Bridge.Received > 0 && r.Media.Steps[0].CPUPerCallSecond > 0},
		{"media: supervisor legs timed to their first RTP packet", r.Media != nil && r.Media.Monitor != nil &&
			r.Media.Monitor.Joined > 0 && r.Media.Monitor.FirstRTP.Max > 0 && r.Media.Monitor.HistCount > 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: no (JSON: %s)", c.name, raw)
		}
	}
	if !bytes.Contains(stdout.Bytes(), []byte("media supervisor setup")) {
		t.Errorf("the table lacks the media rows:\n%s", stdout.String())
	}
	if !bytes.Contains(stdout.Bytes(), []byte("clean rate desk/kamailio")) {
		t.Errorf("the table lacks the ratio:\n%s", stdout.String())
	}
}
