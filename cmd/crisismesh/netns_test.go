package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNetnsPartition runs three nodes in their own network namespaces on a
// bridge (our own test hosts, 10.213.0.0/24, inside namespaces this test
// makes and deletes), cuts one node's link, writes on both sides, heals
// and checks convergence; then caps a link to satellite bandwidth with tbf.
func TestNetnsPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts processes in network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip(8): network namespaces unavailable here")
	}
	r, _ := rand.Int(rand.Reader, big.NewInt(1<<20))
	tag := fmt.Sprintf("cm%05x", r.Int64())
	sh := func(args ...string) error {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	brNS := tag + "-br"
	if err := sh("ip", "netns", "add", brNS); err != nil {
		t.Skipf("ip netns unavailable: %v", err)
	}
	nss := []string{brNS}
	t.Cleanup(func() {
		for _, ns := range nss {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	must := func(args ...string) {
		t.Helper()
		if err := sh(args...); err != nil {
			t.Fatal(err)
		}
	}
	must("ip", "netns", "exec", brNS, "ip", "link", "add", "br0", "type", "bridge")
	must("ip", "netns", "exec", brNS, "ip", "link", "set", "br0", "up")
	const nodes = 3
	ip := func(i int) string { return fmt.Sprintf("10.213.0.%d", 10+i) }
	ns := func(i int) string { return fmt.Sprintf("%s-%d", tag, i) }
	hostIf := func(i int) string { return fmt.Sprintf("%sh%d", tag, i) } // in the node's namespace
	brIf := func(i int) string { return fmt.Sprintf("%sb%d", tag, i) }   // on the bridge
	for i := 0; i < nodes; i++ {
		must("ip", "netns", "add", ns(i))
		nss = append(nss, ns(i))
		must("ip", "netns", "exec", ns(i), "ip", "link", "set", "lo", "up")
		must("ip", "link", "add", hostIf(i), "netns", ns(i), "type", "veth", "peer", "name", brIf(i), "netns", brNS)
		must("ip", "netns", "exec", brNS, "ip", "link", "set", brIf(i), "master", "br0")
		must("ip", "netns", "exec", brNS, "ip", "link", "set", brIf(i), "up")
		must("ip", "netns", "exec", ns(i), "ip", "addr", "add", ip(i)+"/24", "dev", hostIf(i))
		must("ip", "netns", "exec", ns(i), "ip", "link", "set", hostIf(i), "up")
	}

	bin := filepath.Join(t.TempDir(), "crisismesh")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command(bin, "testnet", "--nodes", fmt.Sprint(nodes), "--dir", dir, "--base-port", "4100", "--json").CombinedOutput(); err != nil {
		t.Fatalf("testnet: %v\n%s", err, out)
	}
	for i := 0; i < nodes; i++ {
		// Point each node at its namespace address and its peers at theirs.
		var peers []string
		for j := 0; j < nodes; j++ {
			if j != i {
				id, err := peerIDOf(filepath.Join(dir, fmt.Sprintf("node%d", j)))
				if err != nil {
					t.Fatal(err)
				}
				peers = append(peers, fmt.Sprintf("%q", fmt.Sprintf("/ip4/%s/tcp/4100/p2p/%s", ip(j), id)))
			}
		}
		cfg := fmt.Sprintf("listen = [\"/ip4/%s/tcp/4100\", \"/ip4/%s/udp/4100/quic-v1\"]\nprofile = \"lan\"\npeers = [%s]\nmdns = false\napi = \"127.0.0.1:4600\"\nlog_format = \"text\"\nlog_level = \"info\"\n",
			ip(i), ip(i), strings.Join(peers, ", "))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("node%d", i), "config.toml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nodeDir := func(i int) string { return filepath.Join(dir, fmt.Sprintf("node%d", i)) }
	var procs []*exec.Cmd
	for i := 0; i < nodes; i++ {
		cmd := exec.Command("ip", "netns", "exec", ns(i), bin, "run", "--dir", nodeDir(i))
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("node%d.log", i)))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
	})
	cli := func(i int, args ...string) (string, error) {
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns(i), bin}, args...)...).CombinedOutput()
		return string(out), err
	}
	digest := func(i int) string {
		out, err := cli(i, "status", "--dir", nodeDir(i), "--json")
		if err != nil {
			return ""
		}
		var s struct {
			Digest string `json:"digest"`
		}
		json.Unmarshal([]byte(out), &s)
		return s.Digest
	}
	wait := func(d time.Duration, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				for i := 0; i < nodes; i++ {
					b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d.log", i)))
					t.Logf("node%d log tail:\n%s", i, tail(string(b), 10))
				}
				t.Fatalf("timed out after %s waiting for %s", d, what)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	converged := func() bool {
		d := digest(0)
		return d != "" && digest(1) == d && digest(2) == d
	}
	var acked []string
	post := func(i int, text string) {
		t.Helper()
		var out string
		var err error
		wait(30*time.Second, "a post", func() bool { out, err = cli(i, "post", "--dir", nodeDir(i), text); return err == nil })
		acked = append(acked, strings.TrimSpace(lastLine(out)))
	}
	wait(60*time.Second, "the nodes to come up and converge", func() bool {
		for i := 0; i < nodes; i++ {
			if _, err := cli(i, "post", "--dir", nodeDir(i), "hello"); err != nil {
				return false
			}
		}
		return converged()
	})

	// Cut node2's link on the bridge; both sides keep writing.
	must("ip", "netns", "exec", brNS, "ip", "link", "set", brIf(2), "down")
	post(0, "majority side")
	post(1, "majority side, too")
	post(2, "cut-off side")
	if converged() {
		t.Fatal("converged while node2 is cut off: the cut did not hold")
	}
	must("ip", "netns", "exec", brNS, "ip", "link", "set", brIf(2), "up")
	wait(90*time.Second, "convergence after heal", converged)

	// Satellite bandwidth on node1's link (tbf works on this kernel; netem
	// does not).
	must("ip", "netns", "exec", ns(1), "tc", "qdisc", "add", "dev", hostIf(1), "root", "tbf", "rate", "256kbit", "burst", "32kbit", "latency", "400ms")
	for k := 0; k < 5; k++ {
		post(0, fmt.Sprintf("over a satellite-sized link %d", k))
	}
	wait(120*time.Second, "convergence over the capped link", converged)
	out, err := cli(1, "log", "--dir", nodeDir(1), "--json")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range acked {
		if !strings.Contains(out, id) {
			t.Errorf("node1 lacks acknowledged entry %s", id)
		}
	}
}

// peerIDOf reads the peer ID from a data directory's card.json.
func peerIDOf(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "card.json"))
	if err != nil {
		return "", err
	}
	var c struct {
		PeerID string `json:"peer_id"`
	}
	return c.PeerID, json.Unmarshal(b, &c)
}
