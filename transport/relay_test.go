package transport

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// TestRelay: c keeps a reservation on relay r; a reaches c through r on a
// limited connection that still runs TLS with the hybrid key exchange.
func TestRelay(t *testing.T) {
	t.Parallel()
	ids := newIdentities(t, 3)
	roster := newRoster(t, ids...)
	rcfg := tcpConfig(t, ids[0], roster)
	rcfg.Relay.Service = true
	r := startHost(t, rcfg)

	var relayAddr string
	for _, a := range r.Addrs() {
		relayAddr = a.String()
	}
	ccfg := tcpConfig(t, ids[1], roster)
	ccfg.Relay = RelayConfig{Client: true, Relays: []string{relayAddr}}
	c := startHost(t, ccfg)
	acfg := tcpConfig(t, ids[2], roster)
	acfg.Relay.Client = true
	a := startHost(t, acfg)

	waitFor(t, 15*time.Second, "c's reservation on r", func() bool { _, ok := c.Reservations()[r.ID()]; return ok })

	circuit, err := ma.NewMultiaddr(relayAddr + "/p2p-circuit")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: c.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	var relayed *ConnInfo
	for _, ci := range a.ConnInfo(c.ID()) {
		if ci.Transport == "relay" {
			relayed = &ci
		}
	}
	if relayed == nil {
		t.Fatalf("no relayed connection: %+v", a.ConnInfo(c.ID()))
	}
	t.Logf("relayed: %+v", *relayed)
	if !relayed.Limited || relayed.Group != "X25519MLKEM768" {
		t.Errorf("relayed connection %+v, want limited with group X25519MLKEM768", *relayed)
	}
	if err := echo(ctx, a, c, func(ctx context.Context) context.Context {
		return network.WithAllowLimitedConn(ctx, "test")
	}); err != nil {
		t.Fatalf("echo through the relay: %v", err)
	}
}
