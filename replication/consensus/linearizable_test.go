package consensus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/replication/crisis"
)

// linInput is an operation on the set of affected member states.
type linInput struct {
	Add  string // add this state; "" for a read
	Read bool
}

// linOutput is its result.
type linOutput struct {
	OK      bool     // add: committed
	Refused bool     // add: refused (already there)
	Unknown bool     // add: outcome unknown (leadership lost mid-way)
	Set     []string // read: the affected states
}

var affectedModel = porcupine.Model{
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(string), input.(linInput), output.(linOutput)
		set := strings.Split(s, ",")
		if s == "" {
			set = nil
		}
		if in.Read {
			return strings.Join(out.Set, ",") == s, s
		}
		present := slices.Contains(set, in.Add)
		switch {
		case out.Unknown:
			if present {
				return true, s
			}
		case out.Refused:
			return present, s
		case !present:
		default:
			return false, s
		}
		next := slices.Clone(set)
		if !present {
			next = append(next, in.Add)
			slices.Sort(next)
		}
		return true, strings.Join(next, ",")
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		if in.Read {
			return "read → {" + strings.Join(out.Set, ",") + "}"
		}
		switch {
		case out.Unknown:
			return "add " + in.Add + " → ?"
		case out.Refused:
			return "add " + in.Add + " → refused"
		}
		return "add " + in.Add + " → ok"
	},
	DescribeState: func(state any) string { return "{" + state.(string) + "}" },
}

// Concurrent clients add affected states and read linearizably while
// partitions come and go; the history must be linearizable.
func TestLinearizable(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	var history []porcupine.Operation
	synctest.Test(t, func(t *testing.T) {
		c, cl := startCluster(t, 5, 5)
		l := cl.leader()
		res := openCrisis(t, c, l)
		id := res.State.Crisis
		states := []string{"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE"}
		var mu gosync.Mutex
		var wg gosync.WaitGroup
		stop := make(chan struct{})
		rnd := rand.New(rand.NewPCG(seed, 4))
		seeds := make([]uint64, 4)
		for i := range seeds {
			seeds[i] = rnd.Uint64()
		}
		for client := 0; client < 4; client++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seeds[client], 5))
				for op := 0; op < 15; op++ {
					var leader *member
					for _, m := range cl.members {
						if m.eng.IsLeader() {
							leader = m
						}
					}
					if leader == nil {
						time.Sleep(100 * time.Millisecond)
						continue
					}
					call := time.Now().UnixNano()
					if r.IntN(2) == 0 {
						st := states[r.IntN(len(states))]
						sc := command(t, c.byName["cert-de"], c.genesis.NetworkID(), crisis.Command{Kind: crisis.KindAffected, Crisis: id, Add: []string{st}})
						ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
						_, err := leader.eng.apply(ctx, entryCommand, sc.Bytes())
						cancel()
						out := linOutput{OK: err == nil}
						ret := time.Now().UnixNano()
						switch {
						case err == nil:
						case errors.Is(err, crisis.ErrRefused):
							out.Refused = true
						case errors.Is(err, ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost):
							continue // never entered the log
						default:
							out.Unknown, ret = true, math.MaxInt64
						}
						mu.Lock()
						history = append(history, porcupine.Operation{ClientId: client, Input: linInput{Add: st}, Call: call, Output: out, Return: ret})
						mu.Unlock()
					} else {
						v, err := leader.eng.Linearizable(context.Background())
						if err != nil {
							continue
						}
						mu.Lock()
						history = append(history, porcupine.Operation{ClientId: client, Input: linInput{Read: true}, Call: call,
							Output: linOutput{Set: slices.Clone(v.State.Affected)}, Return: time.Now().UnixNano()})
						mu.Unlock()
					}
					time.Sleep(time.Duration(r.IntN(300)) * time.Millisecond)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 6))
			for {
				select {
				case <-stop:
					cl.heal()
					return
				case <-time.After(time.Duration(500+r.IntN(1500)) * time.Millisecond):
				}
				if r.IntN(2) == 0 {
					cl.isolate(cl.members[r.IntN(5)])
				} else {
					cl.heal()
				}
			}
		}()
		go func() {
			time.Sleep(20 * time.Second)
			close(stop)
		}()
		wg.Wait()
	})
	res, info := porcupine.CheckOperationsVerbose(affectedModel, history, 30*time.Second)
	t.Logf("%d operations: %v", len(history), res)
	if res != porcupine.Ok {
		// Kept after the test, for a person to open.
		path := filepath.Join(os.TempDir(), fmt.Sprintf("crisismesh-linearizability-%d.html", seed))
		if f, err := os.Create(path); err == nil {
			porcupine.Visualize(affectedModel, info, f)
			f.Close()
		}
		t.Fatalf("history is %v (seed %d); visualization at %s", res, seed, path)
	}
	if len(history) < 20 {
		t.Errorf("only %d operations recorded", len(history))
	}
}
