package matrix

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/crisismesh/crisismesh/replication/log"
)

// fakeNode is an in-memory log with authors' feeds, as matrix.Node.
type fakeNode struct {
	mu      sync.Mutex
	self    string
	entries []Entry // in display (append) order
	seq     map[string]uint64
	alerts  []Alert
}

func newFakeNode() *fakeNode { return &fakeNode{self: "cert-lu", seq: map[string]uint64{}} }

func (f *fakeNode) add(author string, kind log.Kind, tlp log.TLP, text string, bridged *log.Bridged) Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq[author]++
	h := sha256.Sum256(fmt.Appendf(nil, "%s/%d", author, f.seq[author]))
	e := Entry{ID: hex.EncodeToString(h[:]), AuthorID: "id-" + author, Author: author, Seq: f.seq[author], Time: time.Now(),
		Readable: true, Kind: kind, TLP: tlp, Text: text, Bridged: bridged}
	f.entries = append(f.entries, e)
	return e
}

// post adds a message by author at tlp.
func (f *fakeNode) post(author string, tlp log.TLP, text string) Entry {
	return f.add(author, log.KindMessage, tlp, text, nil)
}

func (f *fakeNode) After(pos Position, limit int) ([]Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Entry
	for _, e := range f.entries {
		if e.Seq > pos[e.AuthorID] && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fakeNode) PostBridged(_ context.Context, text string, tlp log.TLP, from log.Bridged) (string, error) {
	e := f.add(f.self, log.KindMessage, tlp, text, &from)
	return e.ID, nil
}

func (f *fakeNode) ReserveAlerts() []Alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.alerts)
}

func (f *fakeNode) Crisis() string { return "crisis: open, level 2, phase detection, IPCR monitoring" }

// bridged returns the bridged entries' texts, in order.
func (f *fakeNode) bridged() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.entries {
		if e.Bridged != nil {
			out = append(out, e.Text)
		}
	}
	return out
}

// bridgedEntries returns the bridged entries.
func (f *fakeNode) bridgedEntries() []Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(f.entries), func(e Entry) bool { return e.Bridged == nil })
}
