package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/replication/crisis"
)

// A post carries the RSIT and NIS2 classification it is given, checked
// against the taxonomies (a wrong value is refused, listing the allowed
// ones, and nothing is written); while an exercise is open every post is
// marked as exercise, and after it closes none is.
func TestPostClassifiedAndExercise(t *testing.T) {
	nodes, _ := openTestnetWith(t, TestnetOptions{Nodes: 1, Voters: 1, Roles: map[int][]string{0: {"csirt", "cyclone"}}}, func(int) Options { return Options{} })
	n := nodes[0]
	ctx := context.Background()
	waitUntil(t, 30*time.Second, "the network key", func() bool { _, ok := n.Store().NetworkKey(); return ok })
	e, err := n.Post(ctx, PostRequest{Kind: "incident", Text: "SCADA hosts compromised", RSITClass: "intrusions", RSITType: "system-compromise",
		Sectors: []string{"energy"}, Impact: "red", Outlook: "worsening"})
	if err != nil {
		t.Fatal(err)
	}
	v := n.ViewEntry(e)
	if v.RSITClass != "intrusions" || v.RSITType != "system-compromise" || len(v.Sectors) != 1 || v.Sectors[0] != "energy" || v.Impact != "red" || v.Outlook != "worsening" || v.Exercise {
		t.Errorf("classified post shown as %+v", v)
	}
	before := n.Store().Digest()
	for _, bad := range []PostRequest{
		{Text: "x", RSITClass: "intrusion"},
		{Text: "x", RSITClass: "intrusions", RSITType: "ransomware"},
		{Text: "x", Sectors: []string{"energy", "spaceflight"}},
		{Text: "x", Impact: "high"},
		{Text: "x", Outlook: "grim"},
	} {
		if _, err := n.Post(ctx, bad); err == nil || !strings.Contains(err.Error(), "allowed:") {
			t.Errorf("post %+v: %v, want a refusal listing the allowed values", bad, err)
		}
	}
	if n.Store().Digest() != before {
		t.Error("a refused post changed the log")
	}
	commitCommand(t, n, crisis.Command{Kind: crisis.KindOpen, Title: "Blue OLEx", Level: 1, Exercise: true})
	e, err = n.Post(ctx, PostRequest{Kind: "sitrep", Text: "inject 3 received"})
	if err != nil {
		t.Fatal(err)
	}
	if !n.ViewEntry(e).Exercise {
		t.Error("a post written during an exercise is not marked as exercise")
	}
	commitCommand(t, n, crisis.Command{Kind: crisis.KindClose, Reason: "exercise over", Lessons: "more injects"})
	e, err = n.Post(ctx, PostRequest{Kind: "sitrep", Text: "back to normal"})
	if err != nil {
		t.Fatal(err)
	}
	if n.ViewEntry(e).Exercise {
		t.Error("a post written after the exercise closed is marked as exercise")
	}
}
