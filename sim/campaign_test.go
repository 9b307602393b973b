package sim

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// A campaign plays the shipped scenarios with new seeds: those of the
// Raft layer in virtual time, the quick ones of the network layer in real
// time. Its seeds derive from -campaign (.ci/run passes the commit), so a
// campaign is reproducible and every commit explores new schedules. It
// does not gate CI: a failure is printed loudly with its replay lines, to
// be fixed or added to scenarios/regressions.txt, which does gate
// (TestRegressions).
var (
	campaignFlag = flag.String("campaign", "", "run TestCampaign with seeds derived from this string (.ci/run passes the commit)")
	budgetFlag   = flag.Duration("budget", 5*time.Minute, "TestCampaign starts no schedule after this long (one running finishes)")
	replayFlag   = flag.String("replay", "", `TestRegressions replays only these "FILE SEED" lines (separated by ";"), not the list`)
)

// The campaign's floor: fewer schedules than this in the budget is
// reported loudly (the machine was too slow, or the budget too short).
const (
	campaignRaftRuns    = 200
	campaignNetworkRuns = 20
)

// regressionsFile lists the seeds that once failed and now gate CI.
const regressionsFile = "scenarios/regressions.txt"

// campaignSeed derives the k-th seed of a scenario file from the
// campaign's string: the same string gives the same seeds.
func campaignSeed(campaign, file string, k int) uint64 {
	h := sha256.Sum256([]byte(fmt.Sprintf("crisismesh campaign\x00%s\x00%s\x00%d", campaign, filepath.Base(file), k)))
	return binary.BigEndian.Uint64(h[:8])>>1 | 1
}

// campaignScenarios returns the scenario files a campaign plays: every one
// of the Raft layer, and those of the network layer that are quick (at
// most 7 nodes, converging within a minute: no satellite links, long
// outages or 50-node networks).
func campaignScenarios(t *testing.T) (raftFiles, netFiles []string) {
	t.Helper()
	files, err := filepath.Glob("scenarios/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		sc, err := Load(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch {
		case sc.Layer == LayerRaft:
			raftFiles = append(raftFiles, f)
		case sc.Nodes <= 7 && sc.ConvergeWithin.Duration <= time.Minute:
			netFiles = append(netFiles, f)
		}
	}
	return raftFiles, netFiles
}

// play runs the scenario in file with seed, the Raft layer in a synctest
// bubble (virtual time), and returns its report and its output; err means
// the run could not be carried out.
func play(t *testing.T, file string, seed uint64) (rep *Report, out string, err error) {
	t.Helper()
	sc, err := Load(file)
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	if sc.Layer == LayerRaft {
		synctest.Test(t, func(t *testing.T) {
			rep, err = Execute(context.Background(), sc, file, Options{Out: &buf, Seed: seed})
		})
		return rep, buf.String(), err
	}
	dir, err := os.MkdirTemp("", "crisismesh-campaign-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err = Execute(ctx, sc, file, Options{Out: &buf, Dir: dir, Seed: seed})
	return rep, buf.String(), err
}

// replayLines says how to replay a schedule.
func replayLines(file string, seed uint64) string {
	base := filepath.Base(file)
	return fmt.Sprintf("  replay: crisismesh sim run sim/%s --seed %d\n"+
		"  replay under go test (the Raft layer in virtual time): go test ./sim -run TestRegressions -args -replay '%s %d'\n"+
		"  fix it, or gate on it: add the line \"%s %d  # why\" to sim/%s and name it in the issue note",
		filepath.ToSlash(file), seed, base, seed, base, seed, regressionsFile)
}

// TestCampaign plays new schedules of the shipped scenarios until the
// budget is spent, two Raft-layer workers and one network-layer worker at
// a time. Run it as .ci/run does:
//
//	go test ./sim -run TestCampaign -count=1 -v -timeout 15m -args -campaign "$(git rev-parse HEAD)" -budget 5m
func TestCampaign(t *testing.T) {
	if *campaignFlag == "" {
		t.Skip("no -campaign: .ci/run runs it with the commit")
	}
	began := time.Now()
	stop := began.Add(*budgetFlag)
	raftFiles, netFiles := campaignScenarios(t)
	type outcome struct {
		file string
		seed uint64
		took time.Duration
		err  string // "" when every invariant held
	}
	var mu gosync.Mutex
	var raftRuns, netRuns []outcome
	worker := func(t *testing.T, files []string, next *atomic.Int64, runs *[]outcome) {
		for time.Now().Before(stop) {
			k := int(next.Add(1) - 1)
			file := files[k%len(files)]
			seed := campaignSeed(*campaignFlag, file, k/len(files))
			t0 := time.Now()
			rep, out, err := play(t, file, seed)
			o := outcome{file: file, seed: seed, took: time.Since(t0)}
			switch {
			case err != nil:
				o.err = "the run could not be carried out: " + err.Error()
			case !rep.OK:
				o.err = rep.Failed
			}
			if o.err != "" {
				t.Errorf("CAMPAIGN FAILURE: %s seed %d: %s\n%s\n--- its output:\n%s", filepath.Base(file), seed, o.err, replayLines(file, seed), out)
			}
			mu.Lock()
			*runs = append(*runs, o)
			mu.Unlock()
		}
	}
	// Workers are subtests run from goroutines of their own (not
	// t.Parallel, whose concurrency -parallel would bound).
	var raftNext, netNext atomic.Int64
	var wg gosync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			t.Run(fmt.Sprintf("raft-%d", w), func(t *testing.T) { worker(t, raftFiles, &raftNext, &raftRuns) })
		})
	}
	wg.Go(func() {
		t.Run("network", func(t *testing.T) { worker(t, netFiles, &netNext, &netRuns) })
	})
	wg.Wait()
	summary := func(layer string, runs []outcome, floor int) {
		var failed int
		var took time.Duration
		per := map[string]int{}
		for _, o := range runs {
			took += o.took
			per[filepath.Base(o.file)]++
			if o.err != "" {
				failed++
			}
		}
		t.Logf("campaign %.12s: %d %s-layer schedules (%d failed) over %d scenarios, %s of runs", *campaignFlag, len(runs), layer, failed, len(per), took.Round(time.Second))
		if len(runs) < floor {
			t.Logf("CAMPAIGN SHORT: %d %s-layer schedules, fewer than %d: a slow machine or a short -budget", len(runs), layer, floor)
		}
	}
	summary("Raft", raftRuns, campaignRaftRuns)
	summary("network", netRuns, campaignNetworkRuns)
	t.Logf("campaign took %s (budget %s)", time.Since(began).Round(time.Second), *budgetFlag)
}

// A regression is a schedule that once failed: FILE SEED  # why.
type regression struct {
	file string
	seed uint64
	why  string
	line int
}

// parseRegressions reads the list: one schedule a line, "#" comments,
// every schedule with its reason.
func parseRegressions(text string) ([]regression, error) {
	var out []regression
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line, why, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: %q: want FILE SEED  # why", n, sc.Text())
		}
		seed, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil || seed == 0 {
			return nil, fmt.Errorf("line %d: seed %q: want a positive number", n, fields[1])
		}
		if strings.TrimSpace(why) == "" {
			return nil, fmt.Errorf("line %d: %s %d: say why it is listed (# what failed, and the issue)", n, fields[0], seed)
		}
		out = append(out, regression{file: fields[0], seed: seed, why: strings.TrimSpace(why), line: n})
	}
	return out, sc.Err()
}

func TestParseRegressions(t *testing.T) {
	got, err := parseRegressions("# comment\n\nraft-bridge.toml 42  # two leaders, issue 17\n")
	if err != nil || len(got) != 1 || got[0].file != "raft-bridge.toml" || got[0].seed != 42 || got[0].why != "two leaders, issue 17" {
		t.Errorf("got %+v, %v", got, err)
	}
	for _, bad := range []string{"raft-bridge.toml 42\n", "raft-bridge.toml  # why\n", "raft-bridge.toml x  # why\n", "a b c  # why\n"} {
		if _, err := parseRegressions(bad); err == nil {
			t.Errorf("%q: got nil error", bad)
		}
	}
}

// Every schedule in the regression list keeps every invariant: these gate
// CI. With -replay, only the schedules given run.
func TestRegressions(t *testing.T) {
	text := strings.ReplaceAll(*replayFlag, ";", "  # replayed\n")
	if *replayFlag == "" {
		b, err := os.ReadFile(regressionsFile)
		if err != nil {
			t.Fatal(err)
		}
		text = string(b)
	} else if !strings.HasSuffix(text, "\n") {
		text += "  # replayed\n"
	}
	regs, err := parseRegressions(text)
	if err != nil {
		t.Fatalf("%s: %v", regressionsFile, err)
	}
	for _, r := range regs {
		t.Run(fmt.Sprintf("%s-%d", r.file, r.seed), func(t *testing.T) {
			file := filepath.Join("scenarios", r.file)
			sc, err := Load(file)
			if err != nil {
				t.Fatalf("line %d: %v", r.line, err)
			}
			if raceEnabled && sc.Nodes > 20 {
				t.Skipf("%d nodes under the race detector", sc.Nodes)
			}
			rep, out, err := play(t, file, r.seed)
			if err != nil {
				t.Fatalf("%s seed %d (%s): %v\n%s", r.file, r.seed, r.why, err, out)
			}
			if !rep.OK {
				t.Fatalf("%s seed %d (%s): %s\n%s\n%s", r.file, r.seed, r.why, rep.Failed, replayLines(file, r.seed), out)
			}
		})
	}
}
