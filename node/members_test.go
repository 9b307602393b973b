package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/transport"
)

// With two admins who must agree, one admin's revocation stays pending on
// every node (the member keeps writing and is not cut off) until the other
// approves; then it is in force everywhere, in the roster and in Raft. A
// member who is not an admin cannot approve, nor change the roster; the
// proposer cannot approve its own update twice; an unknown member cannot
// be revoked.
func TestRosterChangeNeedsTwoAdmins(t *testing.T) {
	nodes, specs := openTestnetWith(t, TestnetOptions{Nodes: 3, Admins: 2, AdminThreshold: 2}, nil)
	ctx := context.Background()
	node0, node1, node2 := nodes[0], nodes[1], nodes[2]

	res, err := node0.ChangeRoster(ctx, UpdateRequest{Op: "revoke", Member: "node9"})
	if err != nil || res.Status != UpdateRefused || res.Rule != "member-unknown" {
		t.Fatalf("revoke an unknown member: %+v, %v", res, err)
	}
	res, err = node2.ChangeRoster(ctx, UpdateRequest{Op: "revoke", Member: "node1", Reason: "x"})
	if err != nil || res.Status != UpdateRefused || res.Rule != "signer-admin" {
		t.Fatalf("a non-admin revokes: %+v, %v", res, err)
	}
	res, err = node0.ChangeRoster(ctx, UpdateRequest{Op: "revoke", Member: "node2", Reason: "laptop stolen"})
	if err != nil || res.Status != UpdatePending || res.WaitingFor != "approvals" || res.Approvals != 1 || res.Needed != 2 {
		t.Fatalf("one admin's revocation: %+v, %v", res, err)
	}
	id := res.UpdateID

	// Every node sees it pending, node2 still active.
	waitUntil(t, 30*time.Second, "every node to list the pending update", func() bool {
		for _, n := range nodes {
			v, err := n.Members()
			if err != nil || len(v.Pending) != 1 || v.Pending[0].UpdateID != id {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		v, _ := n.Members()
		if v.RosterVersion != 0 || v.AdminThreshold != 2 || memberStatus(v, "node2") != MemberActive {
			t.Fatalf("%s: roster version %d, node2 %s while the revocation waits", n.id.Name(), v.RosterVersion, memberStatus(v, "node2"))
		}
	}
	if res, err := node0.Approve(ctx, id); err != nil || res.Rule != "approval-duplicate" {
		t.Fatalf("the proposer approving its own update: %+v, %v", res, err)
	}
	if res, err := node2.Approve(ctx, id); err != nil || res.Rule != "signer-admin" {
		t.Fatalf("a non-admin approving: %+v, %v", res, err)
	}
	// node2 writes under the network key: wait until it holds it (under
	// load it can arrive after the checks above).
	waitNetworkKey(t, nodes)
	if _, err := node2.Post(ctx, PostRequest{Kind: "message", Text: "still here", TLP: "amber"}); err != nil {
		t.Fatalf("node2 writes while its revocation waits: %v", err)
	}

	// The second admin approves, through the API as the CLI does.
	code, body := apiCall(t, specs[1], "POST", "/api/v1/members/updates/"+id+"/approve", "{}")
	if code != http.StatusOK {
		t.Fatalf("approve: %d %s", code, body)
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Status == UpdateRefused {
		t.Fatalf("approve: %s (%v)", body, err)
	}
	waitUntil(t, 30*time.Second, "the revocation in force on every node and in Raft", func() bool {
		for _, n := range nodes[:2] {
			r, err := n.UpdateStatus(id)
			if err != nil || r.Status != UpdateInForce {
				return false
			}
		}
		return true
	})
	v, _ := node1.Members()
	if memberStatus(v, "node2") != MemberRevoked || v.RosterVersion != 1 || v.RaftRosterVersion != 1 || len(v.Pending) != 0 {
		t.Fatalf("after approval: %+v", v)
	}
	if res, err := node1.Approve(ctx, id); err != nil || res.Rule != "update-in-force" {
		t.Fatalf("approving an update in force: %+v, %v", res, err)
	}
	if code, body := apiCall(t, specs[1], "GET", "/api/v1/members/updates/zz", ""); code != http.StatusBadRequest {
		t.Fatalf("bad update ID: %d %s", code, body)
	}
	// An update ID is taken by any prefix of at least 8 hex digits; the
	// answer carries the full ID.
	if r, err := node1.UpdateStatus(strings.ToUpper(id[:8])); err != nil || r.UpdateID != id || r.Status != UpdateInForce {
		t.Fatalf("update status by an 8-digit prefix: %+v, %v", r, err)
	}
	if res, err := node1.Approve(ctx, id[:10]); err != nil || res.Rule != "update-in-force" {
		t.Fatalf("approving by a prefix an update in force: %+v, %v", res, err)
	}
	_ = node1
}

// memberStatus returns the status of the member called name: the active
// one if there is one (a rotated key keeps the name).
func memberStatus(v MembersView, name string) string {
	status := ""
	for _, m := range v.Members {
		if m.Name == name && (status == "" || m.Status == MemberActive) {
			status = m.Status
		}
	}
	return status
}

// A 3-node network is running; a 4th member is initialised on its own,
// joins with the original genesis (which does not list it) and waits; the
// admin adds it; the running nodes admit it, it catches up on the whole
// log, and its post is read on the other three. No node restarts.
func TestNewMemberJoinsRunningNetwork(t *testing.T) {
	nodes, specs := openTestnetWith(t, TestnetOptions{Nodes: 3}, nil)
	ctx := context.Background()
	waitNetworkKey(t, nodes)
	for i, n := range nodes {
		if _, err := n.Post(ctx, PostRequest{Kind: "sitrep", Text: fmt.Sprintf("before: node%d", i)}); err != nil {
			t.Fatal(err)
		}
	}

	// The new member: init, join with the unchanged genesis, a peer.
	dir := filepath.Join(t.TempDir(), "cert-de")
	card, err := Init(dir, "cert-de", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	g, err := Join(dir, filepath.Join(specs[0].Dir, GenesisFile))
	if err != nil {
		t.Fatalf("join with a genesis that does not list the member: %v", err)
	}
	if listed, err := Listed(g, dir); err != nil || listed {
		t.Fatalf("listed %v, %v", listed, err)
	}
	base := freeBasePort(t)
	cfg := DefaultConfig()
	cfg.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", base)}
	cfg.API = fmt.Sprintf("127.0.0.1:%d", base+500)
	cfg.MDNS = false
	cfg.Profile = "lan"
	if err := os.Remove(filepath.Join(dir, ConfigFile)); err != nil {
		t.Fatal(err)
	}
	if err := WriteConfig(dir, cfg); err != nil {
		t.Fatal(err)
	}
	if err := AddPeers(dir, []string{specs[1].Listen[0] + "/p2p/" + specs[1].PeerID}); err != nil {
		t.Fatal(err)
	}
	de, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("open the new member's node before it is added: %v", err)
	}
	t.Cleanup(func() { de.Close() })
	if _, err := de.Post(ctx, PostRequest{Kind: "message", Text: "too early"}); err == nil {
		t.Error("a node not yet admitted posted")
	}

	res, err := nodes[0].ChangeRoster(ctx, UpdateRequest{Op: "add", Card: card, Roles: []string{"csirt"}, Addrs: cfg.Listen})
	if err != nil || res.Status == UpdateRefused {
		t.Fatalf("add: %+v, %v", res, err)
	}
	all := append(slices.Clone(nodes), de)
	waitUntil(t, 60*time.Second, "the new member to hold the whole log and the network key", func() bool {
		if _, ok := de.Store().CurrentKey("all"); !ok {
			return false
		}
		want := nodes[0].Store().Digest()
		for _, n := range all {
			if n.Store().Digest() != want {
				return false
			}
		}
		return true
	})
	// It reads what was written before it joined.
	es, err := de.Entries("", 100)
	if err != nil {
		t.Fatal(err)
	}
	before := 0
	for _, e := range es {
		if strings.HasPrefix(e.Text, "before: ") {
			before++
		}
	}
	if before != 3 {
		t.Fatalf("the new member reads %d of the 3 posts written before it joined", before)
	}
	post, err := de.Post(ctx, PostRequest{Kind: "sitrep", Text: "hello from cert-de"})
	if err != nil {
		t.Fatalf("the new member posts: %v", err)
	}
	waitAllRead(t, 30*time.Second, "the other three to read the new member's post", nodes, post, func(v EntryView) bool {
		return v.Text == "hello from cert-de" && v.Author == "cert-de"
	})
}

// A group post is read by the group's members and by no one else, checked
// on every node; removing a member starts a new epoch it does not receive.
func TestGroupPostReadByMembersOnly(t *testing.T) {
	nodes, _ := openTestnetWith(t, TestnetOptions{Nodes: 4}, nil)
	ctx := context.Background()
	admin := nodes[0]
	if res, err := admin.ChangeGroup(ctx, GroupRequest{Op: "create", Group: "ops", Members: []string{"node1", "nodeX"}}); err != nil || res.Rule != "member-unknown" {
		t.Fatalf("a group with an unknown member: %+v, %v", res, err)
	}
	if res, err := nodes[1].ChangeGroup(ctx, GroupRequest{Op: "create", Group: "ops", Members: []string{"node1"}}); err != nil || res.Rule != "signer-admin" {
		t.Fatalf("a non-admin creates a group: %+v, %v", res, err)
	}
	if res, err := admin.ChangeGroup(ctx, GroupRequest{Op: "create", Group: "ops", Members: []string{"node1", "node2"}}); err != nil || res.Status != UpdateInForce && res.Status != UpdatePending {
		t.Fatalf("create: %+v, %v", res, err)
	}
	waitUntil(t, 30*time.Second, "every node to hold group ops", func() bool {
		for _, n := range nodes {
			if _, ok := n.Store().Roster().Group("ops"); !ok {
				return false
			}
		}
		return true
	})
	if _, err := nodes[3].Post(ctx, PostRequest{Group: "ops", Text: "not mine"}); err == nil {
		t.Fatal("a non-member posted to the group")
	}
	if _, err := nodes[1].Post(ctx, PostRequest{Group: "ops", TLP: "red", Text: "red"}); err == nil {
		t.Fatal("TLP:RED to a group accepted")
	}
	readers := func(e string, want ...int) func() bool {
		return func() bool {
			for i, n := range nodes {
				h, _ := n.Store().Get(mustHash(t, e))
				if h == nil {
					return false
				}
				if v := n.ViewEntry(h); v.Readable != slices.Contains(want, i) {
					return false
				}
			}
			return true
		}
	}
	first, err := nodes[1].Post(ctx, PostRequest{Group: "ops", Text: "for ops only"})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "node1 and node2 (and nobody else) to read the group post", readers(first.ID().String(), 1, 2))

	if res, err := admin.ChangeGroup(ctx, GroupRequest{Op: "remove", Group: "ops", Members: []string{"node2"}}); err != nil || res.Status == UpdateRefused {
		t.Fatalf("remove: %+v, %v", res, err)
	}
	waitUntil(t, 30*time.Second, "node1 to know node2 left ops", func() bool {
		ids, _ := nodes[1].Store().Roster().Group("ops")
		return len(ids) == 1
	})
	second, err := nodes[1].Post(ctx, PostRequest{Group: "ops", Text: "after node2 left"})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "only node1 to read the post after node2 left", readers(second.ID().String(), 1))
	if second.Header.KeyID == first.Header.KeyID {
		t.Fatal("the post after the removal is sealed under the old key")
	}
	// node2 still reads what was written while it was in the group.
	if h, _ := nodes[2].Store().Get(first.ID()); h == nil || !nodes[2].ViewEntry(h).Readable {
		t.Fatal("node2 lost the post written while it was a member")
	}
}

func mustHash(t *testing.T, s string) log.Hash {
	t.Helper()
	h, err := log.ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A member is revoked while partitioned away and keeps writing. After the
// heal it is cut off (the others refuse its connections); what it wrote
// after the revocation is accepted nowhere, even when carried to the
// others by hand, and its own node sets it aside once it learns of the
// revocation; it cannot read an AMBER entry written after the
// revocation, and the other members can.
func TestRevokedWhilePartitioned(t *testing.T) {
	faults := transport.NewFaults(1, nil)
	nodes, specs := openTestnetWith(t, TestnetOptions{Nodes: 4}, func(int) Options { return Options{Faults: faults} })
	ctx := context.Background()
	waitNetworkKey(t, nodes)
	var ids []peer.ID
	for _, s := range specs {
		p, err := peer.Decode(s.PeerID)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p)
	}
	outcast := nodes[3]
	before, err := outcast.Post(ctx, PostRequest{Text: "before the cut"})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the admin to hold node3's first post", func() bool {
		_, err := nodes[0].Store().Get(before.ID())
		return err == nil
	})
	faults.Partition(ids[3:], ids[:3])
	res, err := nodes[0].ChangeRoster(ctx, UpdateRequest{Op: "revoke", Member: "node3", Reason: "laptop stolen"})
	if err != nil || res.Status == UpdateRefused {
		t.Fatalf("revoke: %+v, %v", res, err)
	}
	var late []*log.Entry
	for i := range 3 {
		e, err := outcast.Post(ctx, PostRequest{Text: fmt.Sprintf("after the revocation %d", i)})
		if err != nil {
			t.Fatalf("node3 writes while cut off: %v", err)
		}
		late = append(late, e)
	}
	waitUntil(t, 30*time.Second, "a new network key epoch without node3", func() bool {
		k, ok := nodes[1].Store().CurrentKey("all")
		return ok && k.Epoch() > 1
	})
	secret, err := nodes[1].Post(ctx, PostRequest{Text: "written after the revocation", TLP: "amber"})
	if err != nil {
		t.Fatal(err)
	}
	faults.Heal()
	waitUntil(t, 60*time.Second, "the other three to hold the same log", func() bool {
		want := nodes[0].Store().Digest()
		for _, n := range nodes[:3] {
			if n.Store().Digest() != want {
				return false
			}
		}
		return true
	})
	for i, n := range nodes[:3] {
		if n.Host().Host().Network().Connectedness(ids[3]) == network.Connected {
			t.Errorf("node%d is connected to the revoked node3", i)
		}
		if _, err := n.Store().Ingest(ctx, late...); err != nil {
			t.Logf("node%d ingesting node3's late entries: %v", i, err)
		}
	}
	all, err := nodes[1].Store().Entries(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := outcast.Store().Ingest(ctx, all...); err != nil {
		t.Logf("node3 ingesting the others' log: %v", err)
	}
	for i, n := range nodes {
		if i < 3 {
			for _, e := range late {
				if _, err := n.Store().Get(e.ID()); err == nil {
					t.Errorf("node%d holds node3's entry %d written after its revocation", i, e.Header.Seq)
				}
			}
		}
		if _, err := n.Store().Get(before.ID()); err != nil {
			t.Errorf("node%d lost node3's entry from before the revocation: %v", i, err)
		}
		e, err := n.Store().Get(secret.ID())
		if err != nil {
			t.Fatalf("node%d does not hold the post written after the revocation: %v", i, err)
		}
		if readable := n.ViewEntry(e).Readable; readable != (i != 3) {
			t.Errorf("node%d reads the post written after the revocation: %v", i, readable)
		}
	}
	if outcast.Store().Roster().Active(outcast.Identity().ID()) {
		t.Error("node3 does not know it is revoked after receiving the log")
	}
	for _, e := range late {
		if _, err := outcast.Store().Get(e.ID()); err == nil {
			t.Errorf("node3 still holds its own entry %d written after its revocation", e.Header.Seq)
		}
	}
}

// A member rotates its keys: the admin rotates it to the card `init
// --rotate` made; the member's node switches to the new identity at its
// next start, keeping its data; its entries under the new key are accepted
// and read everywhere, an entry signed with the old key after the rotation
// is refused, its old entries stay valid, and it still reads what was
// sealed to its old key.
func TestMemberRotatesKeys(t *testing.T) {
	nodes, specs := openTestnetWith(t, TestnetOptions{Nodes: 3}, nil)
	ctx := context.Background()
	waitNetworkKey(t, nodes)
	old := nodes[2].Identity()
	oldPost, err := nodes[2].Post(ctx, PostRequest{Text: "signed with the old key"})
	if err != nil {
		t.Fatal(err)
	}
	sealedToOld, err := nodes[1].Post(ctx, PostRequest{Text: "for node1 and node2", TLP: "red", To: []string{"node2"}})
	if err != nil {
		t.Fatal(err)
	}
	card, err := PrepareRotation(specs[2].Dir, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PrepareRotation(specs[2].Dir, nil, time.Now()); err == nil {
		t.Fatal("a second init --rotate replaced the waiting identity")
	}
	waitUntil(t, 30*time.Second, "the admin to hold node2's posts and the red one", func() bool {
		_, err1 := nodes[0].Store().Get(oldPost.ID())
		_, err2 := nodes[2].Store().Get(sealedToOld.ID())
		return err1 == nil && err2 == nil
	})
	res, err := nodes[0].ChangeRoster(ctx, UpdateRequest{Op: "rotate", Member: "node2", Card: card})
	if err != nil || res.Status == UpdateRefused {
		t.Fatalf("rotate: %+v, %v", res, err)
	}
	waitUntil(t, 30*time.Second, "node2 to hold its rotation", func() bool {
		m, ok := nodes[2].Store().Roster().Member(old.ID())
		return ok && m.Revoked
	})
	if err := nodes[2].Close(); err != nil {
		t.Fatal(err)
	}
	re, err := Open(specs[2].Dir, Options{})
	if err != nil {
		t.Fatalf("reopen after the rotation: %v", err)
	}
	t.Cleanup(func() { re.Close() })
	if re.Identity().ID() != card.ID() {
		t.Fatalf("the node runs as %s, want the new identity %s", re.Identity().ID().Short(), card.ID().Short())
	}
	nodes[2] = re
	if e, err := re.Store().Get(sealedToOld.ID()); err != nil || !re.ViewEntry(e).Readable {
		t.Fatalf("the rotated node no longer reads what was sealed to its old key: %v", err)
	}
	fresh, err := re.Post(ctx, PostRequest{Text: "signed with the new key"})
	if err != nil {
		t.Fatalf("post with the new key: %v", err)
	}
	waitAllRead(t, 60*time.Second, "every node to read the post under the new key", nodes, fresh, func(v EntryView) bool {
		return v.Author == "node2"
	})
	// The old key signs after the rotation (a Lamport clock above the
	// rotation's: an entry below it sorts before the rotation in the log
	// and is judged as written before it, see log's "Revocation"):
	// refused everywhere.
	head, _ := nodes[0].Store().Head(old.ID())
	key, _ := nodes[0].Store().CurrentKey("all")
	forged, err := log.Build(old, nodes[0].Store().Network(), log.Tip{Seq: head.Seq, ID: head.ID, Lamport: head.Lamport}, nodes[0].Store().MaxLamport()+1, time.Now(),
		[]log.Draft{{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPAmber, Text: "old key, after the rotation"}, Key: key}})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		n.Store().Ingest(ctx, forged...)
		if _, err := n.Store().Get(forged[0].ID()); err == nil {
			t.Errorf("node%d accepted an entry signed with the old key after the rotation", i)
		}
		if _, err := n.Store().Get(oldPost.ID()); err != nil {
			t.Errorf("node%d lost the entry signed with the old key before the rotation: %v", i, err)
		}
	}
	v, _ := nodes[1].Members()
	if got := memberStatus(v, "node2"); got != MemberActive {
		t.Errorf("node2 (new key) is %s", got)
	}
	rotated := 0
	for _, m := range v.Members {
		if m.Status == MemberRotated {
			rotated++
		}
	}
	if rotated != 1 {
		t.Errorf("%d rotated members listed, want 1 (node2's old key)", rotated)
	}
}

// waitNetworkKey waits until every node holds the network key.
func waitNetworkKey(t *testing.T, nodes []*Node) {
	t.Helper()
	waitUntil(t, 30*time.Second, "every node to hold the network key", func() bool {
		for _, n := range nodes {
			if _, ok := n.Store().CurrentKey("all"); !ok {
				return false
			}
		}
		return true
	})
}

// waitAllRead waits until every node of nodes holds e and reads it, and
// check holds for what it shows.
func waitAllRead(t *testing.T, d time.Duration, what string, nodes []*Node, e *log.Entry, check func(EntryView) bool) {
	t.Helper()
	waitUntil(t, d, what, func() bool {
		for _, n := range nodes {
			got, err := n.Store().Get(e.ID())
			if err != nil {
				return false
			}
			if v := n.ViewEntry(got); !v.Readable || !check(v) {
				return false
			}
		}
		return true
	})
}
