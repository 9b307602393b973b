package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

const crashEnv = "CRISISMESH_STORE_CRASH_CHILD"

// TestCrashKill9 runs a child process that appends in a loop and reports
// every acknowledged entry, kills it with SIGKILL at random moments, and
// checks after each kill that every acknowledged entry is present and
// every chain valid.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 processes")
	}
	n := newTestNet(t)
	dir := t.TempDir()
	writeChildFiles(t, dir, n, n.lu)
	dbDir := filepath.Join(dir, "db")
	s := openStore(t, dbDir, n, n.lu)
	mustIngest(t, s, n.keyEntry) // the child learns the group key from it
	s.Close()

	seed := rand.Uint64()
	if v := os.Getenv("CRASH_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (replay with CRASH_SEED=%d)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 1))
	acked := map[uint64]log.Hash{}
	const rounds = 20
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := time.Duration(r.IntN(150)) * time.Millisecond
		var once sync.Once
		kill := func() { once.Do(func() { cmd.Process.Kill() }) }
		sc := bufio.NewScanner(out)
		started := false
		deadline := time.AfterFunc(30*time.Second, kill) // a child that hangs fails the round below
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ACK" {
				continue
			}
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			id, err := log.ParseHash(f[2])
			if err != nil {
				t.Fatal(err)
			}
			acked[seq] = id
			if !started {
				started = true
				time.AfterFunc(killAfter, kill)
			}
		}
		deadline.Stop()
		kill()
		cmd.Wait()
		if !started {
			t.Fatalf("round %d: the child acknowledged nothing", round)
		}

		s, err := Open(dbDir, n.genesis, n.lu, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		feed, err := s.Feed(n.lu.ID(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		held := map[uint64]log.Hash{}
		for _, e := range feed {
			held[e.Header.Seq] = e.ID()
		}
		for seq, id := range acked {
			if held[seq] != id {
				t.Fatalf("round %d: acknowledged entry %d (%s) lost after kill -9", round, seq, id.Short())
			}
		}
		if k, err := log.CheckRun(s.Network(), s.Roster(), log.Head{}, feed); k != len(feed) || err != nil {
			t.Fatalf("round %d: feed does not validate after kill -9: %d of %d, %v", round, k, len(feed), err)
		}
		h, _ := s.Head(n.lu.ID())
		if h.Seq != uint64(len(feed)) {
			t.Fatalf("round %d: head %d, feed %d", round, h.Seq, len(feed))
		}
		s.Close()
	}
	t.Logf("%d rounds, %d acknowledged entries, all present", rounds, len(acked))
}

// writeChildFiles writes self's identity (without a passphrase) and n's
// genesis into dir for a child process, which reads them back with
// readChildFiles.
func writeChildFiles(t *testing.T, dir string, n *testNet, self *crypto.Identity) {
	t.Helper()
	kf, err := crypto.MarshalKeyFile(self, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"identity": kf, "genesis": n.genesis.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// readChildFiles reads the identity and genesis that writeChildFiles
// wrote into dir.
func readChildFiles(t *testing.T, dir string) (*crypto.Identity, *crypto.Genesis) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "identity"))
	if err != nil {
		t.Fatal(err)
	}
	kf, err := crypto.ParseKeyFile(b)
	if err != nil {
		t.Fatal(err)
	}
	id, err := kf.Unlock(nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = os.ReadFile(filepath.Join(dir, "genesis")); err != nil {
		t.Fatal(err)
	}
	g, err := crypto.ParseGenesis(b)
	if err != nil {
		t.Fatal(err)
	}
	return id, g
}

// TestCrashChild is the child of TestCrashKill9; it does nothing unless
// started by it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("run by TestCrashKill9 only")
	}
	id, g := readChildFiles(t, dir)
	s, err := Open(filepath.Join(dir, "db"), g, id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, ok := s.CurrentKey("all")
	if !ok {
		t.Fatal("no group key")
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				drafts := make([]log.Draft, 1+i%4)
				for j := range drafts {
					drafts[j] = log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPGreen, Text: fmt.Sprintf("w%d %d/%d", w, i, j)}, Key: key}
				}
				es, err := s.Append(context.Background(), drafts...)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(3)
				}
				mu.Lock()
				for _, e := range es {
					fmt.Fprintf(os.Stdout, "ACK %d %s\n", e.Header.Seq, e.ID())
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
