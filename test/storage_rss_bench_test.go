package test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peernode/node"
)

var rssBlobSize = flag.Int64("rss.size", 1<<30, "bytes of the blob BenchmarkDaemonRSS sends")

// BenchmarkDaemonRSS: a `peernode daemon` process receives one blob (1 GiB
// by default, -rss.size) from a node in this process; its peak resident
// set (VmHWM) against its resident set when idle, connected and verified
// just before. Target: under 64 MiB above idle.
//
// Metrics: idle-MiB, peak-MiB, above-idle-MiB, MB/s.
func BenchmarkDaemonRSS(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "peernode")
	build := exec.Command("go", "build", "-o", bin, "peernode/cmd/node")
	build.Stderr = os.Stderr
	require.NoError(b, build.Run(), "build the peernode binary")
	for b.Loop() {
		idle, peak, rate := daemonRSSRun(b, bin, *rssBlobSize)
		b.ReportMetric(idle, "idle-MiB")
		b.ReportMetric(peak, "peak-MiB")
		b.ReportMetric(peak-idle, "above-idle-MiB")
		b.ReportMetric(rate, "MB/s")
	}
}

// daemonRSSRun runs one transfer to a new daemon. The daemon, the sender and
// their data directories (a copy of the blob each) are gone when it
// returns, so that many iterations do not fill the disk.
func daemonRSSRun(b *testing.B, bin string, size int64) (idle, peak, rate float64) {
	dir, err := os.MkdirTemp("", "peernode-rss-")
	require.NoError(b, err)
	defer os.RemoveAll(dir)
	cmd := exec.Command(bin, "daemon", "--data-dir", filepath.Join(dir, "receiver"), "--name", "receiver",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "PEERNODE_SECRET=", "PEERNODE_PATH=")
	out, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	addr := daemonAddr(b, out)
	go func() { _, _ = io.Copy(io.Discard, out) }()
	ai, err := peer.AddrInfoFromString(addr)
	require.NoError(b, err)

	cfg := node.LocalTestConfig(filepath.Join(dir, "sender"))
	cfg.APIAddr = ""
	cfg.Bootstrap = []peer.AddrInfo{*ai}
	sender, err := node.New(cfg)
	require.NoError(b, err)
	defer sender.Close()
	require.NoError(b, sender.Start())
	WaitVerified(b, sender, ai.ID)

	ctx := context.Background()
	src := io.LimitReader(rand.NewChaCha8([32]byte{1}), size)
	res, err := sender.PutBlob(ctx, src, size, 1)
	require.NoError(b, err)
	idle = procStatusMiB(b, cmd.Process.Pid, "VmRSS")
	t0 := time.Now()
	require.NoError(b, sender.ReplicateTo(ctx, ai.ID, res.Info.ID))
	rate = float64(size) / time.Since(t0).Seconds() / 1e6
	peak = procStatusMiB(b, cmd.Process.Pid, "VmHWM")
	return idle, peak, rate
}

// daemonAddr reads the daemon's banner until its 127.0.0.1 TCP address.
func daemonAddr(b *testing.B, out io.Reader) string {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "/ip4/127.0.0.1/tcp/") && strings.Contains(line, "/p2p/") {
			return line
		}
	}
	b.Fatalf("the daemon printed no address: %v", sc.Err())
	return ""
}

// procStatusMiB reads a kB field of /proc/<pid>/status, in MiB.
func procStatusMiB(b *testing.B, pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(b, err)
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			require.NoError(b, err)
			return kb / 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
