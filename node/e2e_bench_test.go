package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/node/api"
	"github.com/crisismesh/crisismesh/replication/log"
)

// BenchmarkEndToEnd: 1 KiB TLP:AMBER entries posted through the HTTP API
// of one node of a 3-node testnet (real libp2p on 127.0.0.1, badger,
// Raft), until every node holds them: entries/s; and the latency from a
// post to the entry being stored on the farthest node (p50, p99).
func BenchmarkEndToEnd(b *testing.B) {
	nodes, specs := openTestnet(b, 3, nil)
	waitUntil(b, 30*time.Second, "the network key everywhere", func() bool {
		for _, n := range nodes {
			if _, ok := n.Store().CurrentKey("all"); !ok {
				return false
			}
		}
		return true
	})
	token, _ := ReadToken(specs[0].Dir)
	text := strings.Repeat("x", 1024)
	post := func() (string, error) {
		body, _ := json.Marshal(PostRequest{Kind: "sitrep", TLP: "amber", Text: text})
		req, _ := http.NewRequest("POST", "http://"+specs[0].API+api.PathEntries, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var e EntryView
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != http.StatusCreated {
			return "", fmt.Errorf("post: %d %v", resp.StatusCode, err)
		}
		return e.ID, nil
	}
	held := func(n *Node, id string) bool {
		h, _ := log.ParseHash(id)
		_, err := n.Store().Get(h)
		return err == nil
	}

	b.Run("throughput", func(b *testing.B) {
		const clients = 8
		var last string
		var mu sync.Mutex
		start := time.Now()
		var wg sync.WaitGroup
		next := make(chan struct{})
		go func() {
			for i := 0; i < b.N; i++ {
				next <- struct{}{}
			}
			close(next)
		}()
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range next {
					id, err := post()
					if err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					last = id
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		d := nodes[0].Store().Digest()
		waitUntil(b, 5*time.Minute, "every node to hold every entry", func() bool {
			return nodes[1].Store().Digest() == d && nodes[2].Store().Digest() == d && held(nodes[2], last)
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s-visible-everywhere")
	})

	b.Run("latency", func(b *testing.B) {
		var lat []time.Duration
		for i := 0; i < b.N; i++ {
			start := time.Now()
			id, err := post()
			if err != nil {
				b.Fatal(err)
			}
			for !held(nodes[1], id) || !held(nodes[2], id) {
				select {
				case <-time.After(200 * time.Microsecond):
				case <-context.Background().Done():
				}
				if time.Since(start) > time.Minute {
					b.Fatal("entry not visible within a minute")
				}
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	})
}
