package node

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/crisismesh/crisismesh/interop/matrix"
	"github.com/crisismesh/crisismesh/replication/log"
)

// matrixDir is the bridge's directory in the data directory: its state
// (position, room token, Matrix event IDs) and device keys.
const matrixDir = "matrix"

// startMatrix starts the bridge when config.toml has a [matrix] section.
func (n *Node) startMatrix() error {
	if n.cfg.Matrix == nil {
		return nil
	}
	b, err := matrix.New(*n.cfg.Matrix, matrixLog{n}, matrix.Options{
		Dir: filepath.Join(n.dir, matrixDir), Base: n.dir, Logger: n.logger, Registerer: n.metrics.reg,
	})
	if err != nil {
		return err
	}
	if err := b.Start(); err != nil {
		return err
	}
	n.matrix = b
	n.logger.Info("matrix bridge started", "homeserver", n.cfg.Matrix.Homeserver, "room", n.cfg.Matrix.Room)
	return nil
}

// MatrixStatus reports the Matrix bridge's state.
func (n *Node) MatrixStatus() MatrixStatusView {
	if n.matrix == nil {
		return MatrixStatusView{Withheld: map[string]uint64{}}
	}
	s := n.matrix.Status()
	v := MatrixStatusView{Enabled: true, Homeserver: s.Homeserver, Room: s.Room, User: s.User, Running: s.Running,
		Encrypted: s.Encrypted, Queue: s.Queue, LastError: s.LastError, Errors: s.Errors, Sent: s.Sent,
		Received: s.Received, Ignored: s.Ignored, Withheld: s.Withheld}
	if !s.LastSuccess.IsZero() {
		t := s.LastSuccess.UTC()
		v.LastSuccess = &t
	}
	return v
}

func (n *Node) handleMatrixStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.MatrixStatus())
}

// matrixLog is the node as the bridge sees it (matrix.Node).
type matrixLog struct{ n *Node }

// After returns the entries past pos, each author's in seq order, all in
// display order.
func (m matrixLog) After(pos matrix.Position, limit int) ([]matrix.Entry, error) {
	var es []*log.Entry
	for author, head := range m.n.store.Frontier() {
		done := pos[author.String()]
		if head.Seq <= done {
			continue
		}
		f, err := m.n.store.Feed(author, done, limit)
		if err != nil {
			return nil, err
		}
		es = append(es, f...)
	}
	slices.SortFunc(es, func(a, b *log.Entry) int {
		ka, kb := a.Order(), b.Order()
		return bytes.Compare(ka[:], kb[:])
	})
	// Cutting the sorted list keeps a prefix of each author's feed.
	if len(es) > limit {
		es = es[:limit]
	}
	out := make([]matrix.Entry, 0, len(es))
	for _, e := range es {
		v := m.n.ViewEntry(e)
		me := matrix.Entry{ID: v.ID, AuthorID: v.AuthorID, Author: v.Author, Seq: v.Seq, Time: v.Time,
			Readable: v.Readable && v.NotBelieved == "", Kind: log.Kind(v.Kind), TLP: log.TLP(v.TLP), Text: v.Text, Exercise: v.Exercise}
		if v.Bridged != nil {
			me.Bridged = &log.Bridged{Via: v.Bridged.Via, Sender: v.Bridged.Sender, Event: v.Bridged.EventID, Room: v.Bridged.Room}
		}
		out = append(out, me)
	}
	return out, nil
}

// PostBridged writes a message from the room as this node's member,
// sealed to the whole network.
func (m matrixLog) PostBridged(ctx context.Context, text string, tlp log.TLP, from log.Bridged) (string, error) {
	payload, err := from.Encode()
	if err != nil {
		return "", err
	}
	e, err := m.n.post(ctx, PostRequest{Kind: string(log.KindMessage), TLP: string(tlp), Text: text}, payload)
	if err != nil {
		return "", err
	}
	return e.ID().String(), nil
}

// Crisis is the local crisis view in a few lines.
func (m matrixLog) Crisis() string {
	v, err := m.n.Crisis(context.Background(), false)
	if err != nil {
		return "crisis state unavailable: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "crisis: %s, level %d, phase %s, IPCR %s", v.Status, v.Level, v.Phase, v.IPCRMode)
	if v.Title != "" {
		fmt.Fprintf(&b, " (%s)", v.Title)
	}
	if v.AgeMS >= 0 {
		fmt.Fprintf(&b, "; local view, last contact with the leader %s ago", (time.Duration(v.AgeMS) * time.Millisecond).Round(time.Second))
	} else {
		b.WriteString("; local view, never in contact with a leader")
	}
	if v.Summary != "" {
		b.WriteString("\n" + v.Summary)
	}
	for _, r := range v.Requests {
		if r.Status == "open" {
			fmt.Fprintf(&b, "\nReserve request %s (%s): deadline %s", r.ID[:min(12, len(r.ID))], r.Sector, r.Deadline.Format(time.RFC3339))
		}
	}
	return b.String()
}

// ReserveAlerts are the Reserve alerts `status` shows, from the local
// crisis view at the node's clock.
func (m matrixLog) ReserveAlerts() []matrix.Alert {
	var out []matrix.Alert
	for _, a := range reserveAlerts(m.n.engine.Local().State, m.n.now()) {
		out = append(out, matrix.Alert{Code: a.Code, Request: a.Request, Text: a.Message})
	}
	return out
}

// bridgedView reads the bridged marker of a message body (nil if none).
func bridgedView(b *log.Body) *BridgedView {
	if b.Kind != log.KindMessage || len(b.Payload) == 0 {
		return nil
	}
	br, err := log.DecodeBridged(b.Payload)
	if err != nil {
		return nil
	}
	return &BridgedView{Via: br.Via, Sender: br.Sender, EventID: br.Event, Room: br.Room}
}
