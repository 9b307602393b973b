package node

import (
	"encoding/json"
	"strings"
	"testing"
)

// The status of a command is a contract: scripts read these exact words.
func TestCommandStatusJSON(t *testing.T) {
	for _, tc := range []struct {
		status CommandStatus
		want   string
	}{
		{StatusCommitted, `"status":"committed"`},
		{StatusPending, `"status":"pending"`},
		{StatusRefused, `"status":"refused"`},
	} {
		b, err := json.Marshal(CommandResult{Status: tc.status})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "{"+tc.want+",") {
			t.Errorf("CommandResult{Status: %q} = %s, want it to start with {%s,", tc.status, b, tc.want)
		}
		var back CommandResult
		if err := json.Unmarshal(b, &back); err != nil || back.Status != tc.status {
			t.Errorf("decode %s: got %q, %v, want %q", b, back.Status, err, tc.status)
		}
	}
}
