// Package redistest gives tests a real Redis server and keys of their own.
//
// Tests never flush a database: each gets a random key prefix and, at cleanup,
// deletes only the keys under it. Tests that must stop or restart Redis start a
// private redis-server on a free port instead.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvAddr names the variable that points tests at a Redis server. The CI script
// sets it to a private server; a developer's machine defaults to the local one.
const EnvAddr = "DESK_TEST_REDIS_ADDR"

// Addr returns the shared test Redis address and fails the test when nothing answers
// there: a store test that silently skips would prove nothing.
func Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(EnvAddr)
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redistest: no Redis at %s (%v): run the tests through .ci/test, or set %s", addr, err, EnvAddr)
	}
	return addr
}

// Prefix returns a fresh key prefix such as "test:3f9a…:".
func Prefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "test:" + hex.EncodeToString(b) + ":"
}

// Client returns a client of the shared test Redis and a fresh prefix. At cleanup
// it deletes the keys under that prefix, and only those.
func Client(t testing.TB) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: Addr(t)})
	prefix := Prefix()
	t.Cleanup(func() {
		DeletePrefix(context.Background(), rdb, prefix)
		rdb.Close()
	})
	return rdb, prefix
}

// DeletePrefix removes every key under prefix.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			rdb.Del(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		rdb.Del(ctx, batch...)
	}
	return iter.Err()
}

// Server is a private redis-server process.
type Server struct {
	Addr string
	cmd  *exec.Cmd
	port int
	dir  string
}

// StartServer starts a private redis-server on a free loopback port, stopped at
// cleanup. Use it for tests that stop, restart or fill Redis.
func StartServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{dir: t.TempDir(), port: FreePort(t)}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	if err := s.Start(); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// NewServer returns a private redis-server on 127.0.0.1:port that keeps its files
// in dir, for tools outside tests (the load harness); call Start, then Stop.
func NewServer(dir string, port int) *Server {
	return &Server{dir: dir, port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
}

// Start (re)starts the server on its port and waits until it answers.
func (s *Server) Start() error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("redis-server not installed (run .ci/test, which installs it): %w", err)
	}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer rdb.Close()
	for i := 0; i < 100; i++ {
		if rdb.Ping(context.Background()).Err() == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not answer", s.Addr)
}

// Stop kills the server; its data is gone, as in an outage without persistence.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
