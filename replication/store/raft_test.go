package store

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftbench "github.com/hashicorp/raft/bench"
)

// raftStores is a Raft LogStore and StableStore under test.
type raftStores interface {
	raft.LogStore
	raft.StableStore
}

// The suite runs on the badger store and on hashicorp/raft's InmemStore:
// the InmemStore passing proves the suite asks only what Raft relies on.
var raftStoreImpls = map[string]func(t testing.TB) raftStores{
	"badger": func(t testing.TB) raftStores {
		return openStore(t, t.TempDir(), newTestNet(t), newTestNet(t).lu).Raft()
	},
	"badger-in-memory": func(t testing.TB) raftStores {
		n := newTestNet(t)
		s, err := Open("", n.genesis, n.lu, Options{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Raft()
	},
	"raft.InmemStore": func(testing.TB) raftStores { return raft.NewInmemStore() },
}

func testRaftLog(idx uint64, data string) *raft.Log {
	return &raft.Log{Data: []byte(data), Index: idx, Term: idx / 3, Type: raft.LogCommand,
		AppendedAt: time.Date(2026, 11, 26, 12, 0, 0, int(idx), time.UTC)}
}

// Ported from hashicorp/raft-boltdb's bolt_store_test.go.
func TestRaftStoreSuite(t *testing.T) {
	for name, mk := range raftStoreImpls {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				name  string
				index func(raftStores) (uint64, error)
				want  uint64 // after logs 1 to 3
			}{
				{"FirstIndex", raftStores.FirstIndex, 1},
				{"LastIndex", raftStores.LastIndex, 3},
			} {
				t.Run(tc.name, func(t *testing.T) {
					s := mk(t)
					if idx, err := tc.index(s); err != nil || idx != 0 {
						t.Fatalf("empty: got %d, %v; want 0", idx, err)
					}
					if err := s.StoreLogs([]*raft.Log{testRaftLog(1, "a"), testRaftLog(2, "b"), testRaftLog(3, "c")}); err != nil {
						t.Fatal(err)
					}
					if idx, err := tc.index(s); err != nil || idx != tc.want {
						t.Fatalf("got %d, %v; want %d", idx, err, tc.want)
					}
				})
			}
			t.Run("GetLog", func(t *testing.T) {
				s := mk(t)
				var l raft.Log
				if err := s.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
					t.Fatalf("missing: got %v, want raft.ErrLogNotFound", err)
				}
				want := []*raft.Log{testRaftLog(1, "a"), testRaftLog(2, "b"), testRaftLog(3, "c")}
				if err := s.StoreLogs(want); err != nil {
					t.Fatal(err)
				}
				if err := s.GetLog(2, &l); err != nil {
					t.Fatal(err)
				}
				if !sameLog(&l, want[1]) {
					t.Fatalf("got %+v, want %+v", l, *want[1])
				}
			})
			t.Run("StoreLog", func(t *testing.T) {
				s := mk(t)
				want := testRaftLog(1, "log1")
				if err := s.StoreLog(want); err != nil {
					t.Fatal(err)
				}
				var l raft.Log
				if err := s.GetLog(1, &l); err != nil || !sameLog(&l, want) {
					t.Fatalf("got %+v, %v", l, err)
				}
			})
			t.Run("StoreLogs", func(t *testing.T) {
				s := mk(t)
				logs := []*raft.Log{testRaftLog(1, "log1"), testRaftLog(2, "log2")}
				if err := s.StoreLogs(logs); err != nil {
					t.Fatal(err)
				}
				for _, want := range logs {
					var l raft.Log
					if err := s.GetLog(want.Index, &l); err != nil || !sameLog(&l, want) {
						t.Fatalf("index %d: got %+v, %v", want.Index, l, err)
					}
				}
			})
			t.Run("DeleteRange", func(t *testing.T) {
				s := mk(t)
				logs := []*raft.Log{testRaftLog(1, "log1"), testRaftLog(2, "log2"), testRaftLog(3, "log3")}
				if err := s.StoreLogs(logs); err != nil {
					t.Fatal(err)
				}
				if err := s.DeleteRange(1, 2); err != nil {
					t.Fatal(err)
				}
				var l raft.Log
				for _, idx := range []uint64{1, 2} {
					if err := s.GetLog(idx, &l); !errors.Is(err, raft.ErrLogNotFound) {
						t.Fatalf("index %d after delete: %v", idx, err)
					}
				}
				if err := s.GetLog(3, &l); err != nil {
					t.Fatal(err)
				}
				if first, _ := s.FirstIndex(); first != 3 {
					t.Fatalf("first index after delete: %d, want 3", first)
				}
			})
			t.Run("SetGet", func(t *testing.T) {
				s := mk(t)
				if _, err := s.Get([]byte("bad")); err == nil || err.Error() != "not found" {
					t.Fatalf("missing key: got %v, want an error reading exactly \"not found\"", err)
				}
				k, v := []byte("hello"), []byte("world")
				if err := s.Set(k, v); err != nil {
					t.Fatal(err)
				}
				got, err := s.Get(k)
				if err != nil || !bytes.Equal(got, v) {
					t.Fatalf("got %q, %v", got, err)
				}
			})
			t.Run("SetUint64GetUint64", func(t *testing.T) {
				s := mk(t)
				// Raft accepts (0, nil) or an error reading "not found" for a missing key.
				if v, err := s.GetUint64([]byte("bad")); v != 0 || (err != nil && err.Error() != "not found") {
					t.Fatalf("missing key: got %d, %v", v, err)
				}
				k := []byte("abc")
				if err := s.SetUint64(k, 123); err != nil {
					t.Fatal(err)
				}
				if v, err := s.GetUint64(k); err != nil || v != 123 {
					t.Fatalf("got %d, %v; want 123", v, err)
				}
			})
			t.Run("LargeStoreLogs", func(t *testing.T) {
				s := mk(t)
				// More than one badger transaction holds.
				logs := make([]*raft.Log, 5000)
				for i := range logs {
					logs[i] = &raft.Log{Index: uint64(i + 1), Term: 1, Data: bytes.Repeat([]byte{byte(i)}, 2048)}
				}
				if err := s.StoreLogs(logs); err != nil {
					t.Fatal(err)
				}
				if last, _ := s.LastIndex(); last != 5000 {
					t.Fatalf("last index %d, want 5000", last)
				}
				if err := s.DeleteRange(1, 4999); err != nil {
					t.Fatal(err)
				}
				if first, _ := s.FirstIndex(); first != 5000 {
					t.Fatalf("first index %d, want 5000", first)
				}
			})
		})
	}
}

// The badger Raft store keeps what it stored across a reopen.
func TestRaftStoreDurable(t *testing.T) {
	n := newTestNet(t)
	dir := t.TempDir()
	s := openStore(t, dir, n, n.lu)
	if err := s.Raft().StoreLogs([]*raft.Log{testRaftLog(1, "a"), testRaftLog(2, "b")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Raft().SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openStore(t, dir, n, n.lu)
	var l raft.Log
	if err := s2.Raft().GetLog(2, &l); err != nil || string(l.Data) != "b" || !l.AppendedAt.Equal(testRaftLog(2, "b").AppendedAt) {
		t.Fatalf("after reopen: %+v, %v", l, err)
	}
	if v, err := s2.Raft().GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Fatalf("term after reopen: %d, %v", v, err)
	}
}

func sameLog(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type && bytes.Equal(a.Data, b.Data) &&
		bytes.Equal(a.Extensions, b.Extensions) && a.AppendedAt.Equal(b.AppendedAt)
}

// hashicorp/raft's own LogStore and StableStore benchmarks.
func BenchmarkRaftStore(b *testing.B) {
	for _, name := range []string{"badger", "raft.InmemStore"} {
		mk := raftStoreImpls[name]
		b.Run(name+"/FirstIndex", func(b *testing.B) { raftbench.FirstIndex(b, mk(b)) })
		b.Run(name+"/LastIndex", func(b *testing.B) { raftbench.LastIndex(b, mk(b)) })
		b.Run(name+"/GetLog", func(b *testing.B) { raftbench.GetLog(b, mk(b)) })
		b.Run(name+"/StoreLog", func(b *testing.B) { raftbench.StoreLog(b, mk(b)) })
		b.Run(name+"/StoreLogs", func(b *testing.B) { raftbench.StoreLogs(b, mk(b)) })
		b.Run(name+"/DeleteRange", func(b *testing.B) { raftbench.DeleteRange(b, mk(b)) })
		b.Run(name+"/Set", func(b *testing.B) { raftbench.Set(b, mk(b)) })
		b.Run(name+"/Get", func(b *testing.B) { raftbench.Get(b, mk(b)) })
		b.Run(name+"/SetUint64", func(b *testing.B) { raftbench.SetUint64(b, mk(b)) })
		b.Run(name+"/GetUint64", func(b *testing.B) { raftbench.GetUint64(b, mk(b)) })
	}
}
