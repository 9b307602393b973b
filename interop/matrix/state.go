package matrix

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// StateFile is the bridge's state in its directory (the node's data
// directory's matrix/).
const StateFile = "state.json"

// maxSeen bounds the Matrix event IDs remembered (the newest are kept).
const maxSeen = 10000

// maxNotices bounds the notices remembered (two per Reserve request: far
// more requests than a crisis has).
const maxNotices = 1000

// state is what the bridge keeps across restarts. It is written whole and
// atomically (a new file, fsync, rename, fsync of the directory) after
// every change, so a crash leaves either the old or the new state.
type state struct {
	// Position: how far each author's feed went to the room.
	Position Position `json:"position"`
	// LastSent marks the last event sent and recorded (an entry ID, or a
	// notice's key): the timeline check after a reconnect stops there.
	LastSent string `json:"last_sent,omitempty"`
	// Notices are the keys of the Reserve deadline notices handled (sent
	// or withheld), oldest first.
	Notices []string `json:"notices,omitempty"`
	// From is the Matrix pagination token the room is read from.
	From string `json:"from,omitempty"`
	// Seen are Matrix event IDs already written into the mesh (or
	// answered), oldest first.
	Seen []string `json:"seen,omitempty"`
	// DeviceID is the bot's device (password login reuses it).
	DeviceID string `json:"device_id,omitempty"`

	fresh bool // no state file yet: a new bridge
}

func loadState(dir string) (state, error) {
	var s state
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		s.Position = Position{}
		s.fresh = true
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("matrix: state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("matrix: state %s: %w", filepath.Join(dir, StateFile), err)
	}
	if s.Position == nil {
		s.Position = Position{}
	}
	return s, nil
}

func saveState(dir string, s state) error {
	if len(s.Seen) > maxSeen {
		s.Seen = s.Seen[len(s.Seen)-maxSeen:]
	}
	if len(s.Notices) > maxNotices {
		s.Notices = s.Notices[len(s.Notices)-maxNotices:]
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("matrix: state: %w", err)
	}
	return writeAtomic(dir, StateFile, b, 0o600)
}

// writeAtomic replaces dir/name with data durably.
func writeAtomic(dir, name string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(dir, name+".new-*")
	if err != nil {
		return fmt.Errorf("matrix: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("matrix: write %s: %w", name, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("matrix: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("matrix: sync %s: %w", dir, err)
	}
	return nil
}
