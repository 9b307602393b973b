package transport_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/transport"
	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
)

// exampleNetwork makes two members and their roster.
func exampleNetwork() (*crypto.Identity, *crypto.Identity, *crypto.Roster) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	lu, _ := crypto.NewIdentity("cert-lu", now)
	fr, _ := crypto.NewIdentity("cert-fr", now)
	g, err := crypto.NewGenesis(crypto.GenesisSpec{
		Network: "example",
		Created: now,
		Members: []crypto.Member{
			{Card: lu.Card(), Roles: []crypto.Role{crypto.RoleAdmin, crypto.RoleCSIRT}},
			{Card: fr.Card(), Roles: []crypto.Role{crypto.RoleCSIRT}},
		},
		Voters: []crypto.MemberID{lu.ID()},
		Admins: []crypto.MemberID{lu.ID()},
	}, lu)
	if err != nil {
		panic(err)
	}
	return lu, fr, g.Roster()
}

func exampleHost(id *crypto.Identity, r *crypto.Roster) *transport.Host {
	cfg := transport.DefaultConfig()
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	cfg.PeerKey = id.PeerKey()
	cfg.Roster = r
	cfg.MDNS = false
	h, err := transport.New(cfg)
	if err != nil {
		panic(err)
	}
	return h
}

// Two members connect; the connection uses the post-quantum hybrid key
// exchange.
func Example() {
	lu, fr, roster := exampleNetwork()
	a, b := exampleHost(lu, roster), exampleHost(fr, roster)
	defer a.Close()
	defer b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Host().Addrs()}); err != nil {
		panic(err)
	}
	fmt.Println(a.ConnInfo(b.ID())[0].Group)
	// Output: X25519MLKEM768
}

// Raft addresses are peer IDs.
func ExampleNewStreamLayer() {
	lu, fr, roster := exampleNetwork()
	a, b := exampleHost(lu, roster), exampleHost(fr, roster)
	defer a.Close()
	defer b.Close()
	if err := a.AddPeer(peer.AddrInfo{ID: b.ID(), Addrs: b.Host().Addrs()}); err != nil {
		panic(err)
	}
	la, _ := transport.NewStreamLayer(a.Host(), "/crisismesh/raft/1")
	lb, _ := transport.NewStreamLayer(b.Host(), "/crisismesh/raft/1")
	defer la.Close()
	defer lb.Close()
	go func() {
		c, err := lb.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()

	c, err := la.Dial(raft.ServerAddress(lb.Addr().String()), 10*time.Second)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("append entries"))
	buf := make([]byte, len("append entries"))
	_, _ = io.ReadFull(c, buf)
	fmt.Println(string(buf))
	// Output: append entries
}

func ExampleProfileForRTT() {
	for _, rtt := range []time.Duration{time.Millisecond, 80 * time.Millisecond, 600 * time.Millisecond} {
		p := transport.ProfileForRTT(rtt)
		fmt.Println(rtt, p.Name, p.ElectionTimeout)
	}
	// Output:
	// 1ms lan 500ms
	// 80ms internet 3s
	// 600ms satellite 10s
}
