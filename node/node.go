package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/interop/matrix"
	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/store"
	"github.com/crisismesh/crisismesh/replication/sync"
	"github.com/crisismesh/crisismesh/transport"
)

// RaftProtocol is the libp2p protocol Raft's RPCs travel on.
const RaftProtocol = "/crisismesh/raft/1"

// ErrRunning reports a data directory another node process holds.
var ErrRunning = errors.New("node: another crisismesh node is running in this directory")

// Options are what Open needs beyond the data directory.
type Options struct {
	// Passphrase opens a passphrase-protected identity (nil: none).
	Passphrase []byte
	// Logger receives the node's logs; nil: discard.
	Logger *slog.Logger
	// Faults puts the node's host under a shared fault injector (tests
	// and sim only).
	Faults *transport.Faults
	// Now is the node's wall clock (nil: time.Now): the author time of
	// its entries (posts, key and roster entries, checkpoints), the time
	// it stamps into Raft entries as leader (the committed time of crisis
	// commands; never earlier than the last committed one), bundle dates
	// and the time left to Reserve deadlines. Ordering never depends on it
	// (Lamport clocks, Raft indexes) and timeouts use the monotonic clock.
	// Simulators skew it.
	Now func() time.Time
	// FreeSpace reports the bytes free on the store's file system (nil:
	// statfs of the data directory). Below the store's reserve every write
	// is refused with store.ErrDiskFull; reads go on and writing resumes
	// by itself. With less than 4 MiB free, Open fails with
	// store.ErrDiskFull (badger could not even start). Simulators return
	// 0 to fake a full disk.
	FreeSpace func() (uint64, error)
	// APIWriteTimeout is the API server's write timeout (0: 2 minutes);
	// tests shorten it. The event stream has none.
	APIWriteTimeout time.Duration
}

// Node is one running participant: its store, libp2p host, sync and Raft
// member. It owns every goroutine it starts; Close stops them all. It is
// safe for concurrent use.
type Node struct {
	dir     string
	cfg     Config
	logger  *slog.Logger
	id      *crypto.Identity
	genesis *crypto.Genesis
	lock    *os.File

	store   *store.Store
	host    *transport.Host
	sync    *sync.Service
	raftTr  *raft.NetworkTransport
	engine  *consensus.Engine
	profile transport.Profile
	api     *http.Server
	web     *webGuard // the API's guard and login codes; nil without an API
	metrics *metrics
	matrix  *matrix.Bridge // nil without a [matrix] section
	now     func() time.Time
	// waiting reads the entries held waiting for their post-quantum
	// signature (nil: the store's Waiting); tests set it before the
	// first read.
	waiting func() []store.WaitingEntry

	stop      chan struct{}
	wg        gosync.WaitGroup
	closeOnce gosync.Once
	closeErr  error
}

// Open starts the node of data directory dir: it locks the directory
// (one process per directory), loads config, identity and genesis, opens
// the store (checking its integrity), and starts the host, sync and Raft.
func Open(dir string, opts Options) (_ *Node, err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// n is not the result: a failed Open returns nil, and the cleanups
	// (and the goroutines already started, until they stop) still use n.
	n := &Node{dir: dir, logger: logger, stop: make(chan struct{}), metrics: newMetrics(), now: opts.Now}
	if n.now == nil {
		n.now = time.Now
	}
	cleanup := []func(){}
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()
	if n.lock, err = lockDir(dir); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { unlockDir(n.lock) })
	if n.cfg, err = LoadConfig(dir); err != nil {
		return nil, err
	}
	if n.id, err = LoadIdentity(dir, opts.Passphrase); err != nil {
		return nil, err
	}
	if n.genesis, err = ReadGenesis(filepath.Join(dir, GenesisFile)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("node: no genesis in %s: get the genesis file from your network admin and run: crisismesh join --genesis FILE --dir %s", dir, dir)
		}
		return nil, err
	}
	if m, ok := n.genesis.Roster().Member(n.id.ID()); ok && m.Revoked {
		return nil, fmt.Errorf("node: %s (%s) is revoked in this genesis", n.id.Name(), n.id.ID().Short())
	}
	n.profile, _ = transport.ProfileByName(n.cfg.Profile)

	if err := finishAdopt(dir); err != nil {
		return nil, err
	}
	previous, err := loadPrevious(dir, opts.Passphrase)
	if err != nil {
		return nil, err
	}
	sopts := store.Options{Logger: logger, Now: n.now, FreeSpace: opts.FreeSpace, Previous: previous}
	if n.store, err = store.Open(filepath.Join(dir, storeDir), n.genesis, n.id, sopts); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { n.store.Close() })
	// This member's keys were rotated and the next identity waits beside
	// the old one: adopt it now, keeping the old one to read what was
	// sealed to it.
	if due, err := rotationDue(dir, n.store.Roster(), n.id); err != nil {
		return nil, err
	} else if due {
		old := n.id
		if err := n.store.Close(); err != nil {
			return nil, err
		}
		if err := adoptNext(dir, old); err != nil {
			return nil, err
		}
		if n.id, err = LoadIdentity(dir, opts.Passphrase); err != nil {
			return nil, err
		}
		sopts.Previous = append(sopts.Previous, old)
		if n.store, err = store.Open(filepath.Join(dir, storeDir), n.genesis, n.id, sopts); err != nil {
			return nil, err
		}
		logger.Info("this member's keys were rotated: now running as the new identity", "member", n.id.Name(), "old_id", old.ID().Short(), "new_id", n.id.ID().Short())
	}

	tcfg := transport.DefaultConfig()
	tcfg.ListenAddrs = n.cfg.Listen
	tcfg.PeerKey = n.id.PeerKey()
	tcfg.Roster = n.store.Roster()
	if _, admitted := tcfg.Roster.ByPeer(n.id.PeerID()); !admitted {
		if m, ok := tcfg.Roster.Member(n.id.ID()); ok && m.Revoked {
			return nil, fmt.Errorf("node: %s (%s) was revoked (%s) at roster version %d: this identity cannot rejoin; make a new one with crisismesh init and ask an admin to add it", n.id.Name(), n.id.ID().Short(), m.Reason, m.RevokedAt)
		}
		// A new member with the unchanged genesis: it dials the peers in
		// its config and learns the roster update that adds it from them.
		tcfg.AwaitAdmission = true
		logger.Warn("this node is not in the roster yet: waiting for a roster update that adds it (an admin runs `crisismesh member add` with this node's card); dialling the peers in config.toml",
			"member", n.id.Name(), "member_id", n.id.ID().String(), "peers", len(n.cfg.Peers))
	}
	tcfg.Profile = n.cfg.Profile
	tcfg.StaticPeers = n.cfg.Peers
	tcfg.MDNS = n.cfg.MDNS
	tcfg.Relay = transport.RelayConfig{Service: n.cfg.RelayService, Client: n.cfg.RelayClient, Relays: n.cfg.Relays}
	tcfg.Faults = opts.Faults
	tcfg.Metrics = n.metrics.reg
	tcfg.Logger = logger
	if n.host, err = transport.New(tcfg); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { n.host.Close() })

	if n.sync, err = sync.New(sync.Config{
		Store: n.store, Host: n.host.Host(), Identity: n.id, Logger: logger, Interval: n.profile.SyncInterval,
		Timing: func(p peer.ID) sync.Timing {
			pr := n.host.ProfileFor(p)
			t := sync.Timing{ChunkSize: pr.ChunkSize, SessionTimeout: pr.SessionTimeout, PushTimeout: pr.PushTimeout}
			if _, on := n.cfg.NarrowWindow(); on && pr.Narrow {
				t.Window = n.narrowWindow()
			}
			return t
		},
	}); err != nil {
		return nil, err
	}
	n.sync.Start()
	cleanup = append(cleanup, n.sync.Close)

	sl, err := transport.NewStreamLayer(n.host.Host(), RaftProtocol)
	if err != nil {
		return nil, err
	}
	raftLog := consensus.LogWriter{Logger: logger.With("component", "raft-transport"), Level: slog.LevelDebug}
	n.raftTr = raft.NewNetworkTransport(sl, 3, n.profile.RaftIOTimeout, raftLog)
	cleanup = append(cleanup, func() { n.raftTr.Close() })
	if err := os.MkdirAll(filepath.Join(dir, raftDir), 0o700); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(dir, raftDir), 3, raftLog)
	if err != nil {
		return nil, fmt.Errorf("node: snapshots: %w", err)
	}
	if n.engine, err = consensus.New(consensus.Config{
		Store: n.store, Identity: n.id, Genesis: n.genesis, Transport: n.raftTr, Snapshots: snaps, Logger: logger, Now: n.now,
		Timing: consensus.Timing{Heartbeat: n.profile.HeartbeatTimeout, Election: n.profile.ElectionTimeout,
			LeaderLease: n.profile.LeaderLeaseTimeout, Commit: n.profile.CommitTimeout},
	}); err != nil {
		return nil, err
	}
	if n.cfg.API != "" {
		if err := n.startAPI(cmp.Or(opts.APIWriteTimeout, apiWriteTimeout)); err != nil {
			n.engine.Close()
			return nil, err
		}
	}
	n.metrics.reg.MustRegister(collector{n})
	if err := n.startMatrix(); err != nil {
		n.stopAPI()
		n.engine.Close()
		return nil, err
	}
	n.wg.Add(1)
	go n.followRoster()
	logger.Info("node started", "member", n.id.Name(), "peer_id", n.host.ID(), "network", n.genesis.NetworkID().String()[:16], "addrs", n.host.Addrs())
	return n, nil
}

// followRoster hands roster changes in the log to the transport gate, so
// a revoked member is cut off as soon as its revocation arrives.
func (n *Node) followRoster() {
	defer n.wg.Done()
	sub := n.store.Subscribe(16)
	defer sub.Close()
	version := n.store.Roster().Version()
	n.keyDuty()
	for {
		select {
		case <-n.stop:
			return
		case _, ok := <-sub.C:
			if !ok {
				return
			}
			if r := n.store.Roster(); r.Version() != version {
				version = r.Version()
				n.host.SetRoster(r)
				n.logger.Info("roster changed", "version", version)
				if m, ok := r.Member(n.id.ID()); ok && m.Revoked {
					if m.Reason == "rotated" {
						n.logger.Error("this member's keys were rotated: restart the node (crisismesh run) to run as the new identity in " + filepath.Join(n.dir, nextDir))
					} else {
						n.logger.Error("this member was revoked: nothing it signs from now on is accepted", "reason", m.Reason)
					}
				}
				n.keyDuty()
			}
		}
	}
}

func (n *Node) keyDuty() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.ensureGroupKey(ctx); err != nil {
		n.logger.Warn("key duty failed", "err", err)
	}
	if err := n.ensureGroupKeys(ctx); err != nil {
		n.logger.Warn("group key duty failed", "err", err)
	}
}

// Close stops the node: Raft, sync, the host, then the store (everything
// acknowledged is already durable). It is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		if n.matrix != nil {
			n.matrix.Close()
		}
		n.stopAPI()
		n.wg.Wait()
		var errs []error
		errs = append(errs, n.engine.Close())
		errs = append(errs, n.raftTr.Close())
		n.sync.Close()
		errs = append(errs, n.host.Close())
		errs = append(errs, n.store.Close())
		unlockDir(n.lock)
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// Identity returns the node's identity.
func (n *Node) Identity() *crypto.Identity { return n.id }

// Store returns the node's crisis log.
func (n *Node) Store() *store.Store { return n.store }

// Host returns the node's libp2p host.
func (n *Node) Host() *transport.Host { return n.host }

// Sync returns the node's sync service.
func (n *Node) Sync() *sync.Service { return n.sync }

// Consensus returns the node's Raft member.
func (n *Node) Consensus() *consensus.Engine { return n.engine }

// Config returns the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// lockDir takes an exclusive lock on dir/node.lock so that two processes
// never share a store; the lock dies with the process (kill -9 included).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("node: %w (is %s a crisismesh data directory? create one with crisismesh init)", err, dir)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := io.ReadAll(f)
		f.Close()
		pid := strings.TrimSpace(string(b))
		return nil, fmt.Errorf("%w: %s (pid %s); stop it first, or use another --dir", ErrRunning, dir, pid)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

func unlockDir(f *os.File) {
	if f != nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}
