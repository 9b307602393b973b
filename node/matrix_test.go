package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/crisismesh/crisismesh/interop/matrix"
	"github.com/crisismesh/crisismesh/interop/matrix/matrixtest"
	"github.com/crisismesh/crisismesh/node/api"
)

// Builds Dendrite (or finds it cached) before any test's timeout starts.
func TestMain(m *testing.M) { matrixtest.Main(m) }

// A node with a [matrix] section bridges its log and a room of a real
// homeserver both ways, keeps RED out, ignores users not allowed, and
// loses nothing when it restarts mid-queue while the homeserver is down.
func TestMatrixNodeBridge(t *testing.T) {
	hs := matrixtest.Start(t)
	bot, err := hs.Register("cert-lu-bot")
	if err != nil {
		t.Fatal(err)
	}
	alice, _, err := hs.Client("alice")
	if err != nil {
		t.Fatal(err)
	}
	mallory, _, err := hs.Client("mallory")
	if err != nil {
		t.Fatal(err)
	}
	room, err := matrixtest.NewRoom(alice, false, bot.ID, string(mallory.UserID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.JoinRoomByID(context.Background(), room); err != nil {
		t.Fatal(err)
	}

	specs, err := Testnet(TestnetOptions{Dir: t.TempDir(), Nodes: 1, BasePort: freeBasePort(t), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	dir := specs[0].Dir
	if err := os.WriteFile(filepath.Join(dir, "matrix.token"), []byte(bot.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Matrix = &matrix.Config{Homeserver: hs.URL, User: bot.ID, AccessTokenFile: "matrix.token", Room: string(room),
		Allow: []string{string(alice.UserID)}, Poll: matrix.Duration{Duration: 50 * time.Millisecond}}
	b, err := encodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if back, err := LoadConfig(dir); err != nil || back.Matrix == nil || back.Matrix.Poll.Duration != 50*time.Millisecond {
		t.Fatalf("config.toml with [matrix] reads back as %+v, %v", back.Matrix, err)
	}
	open := func() *Node {
		n, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	n := open()
	ctx := context.Background()
	waitUntil(t, 30*time.Second, "the network key", func() bool { _, ok := n.Store().NetworkKey(); return ok })

	inRoom := func() map[string]int {
		ms, err := matrixtest.Read(alice, room)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, msg := range ms {
			if e, ok := msg.Content[matrix.KeyEntry].(string); ok {
				m[e]++
			}
		}
		return m
	}
	green, err := n.Post(ctx, PostRequest{Kind: "sitrep", TLP: "green", Text: "sitrep: DDoS on the ministry"})
	if err != nil {
		t.Fatal(err)
	}
	red, err := n.Post(ctx, PostRequest{Kind: "incident", TLP: "red", Text: "RED: who is hit", To: []string{specs[0].Name}})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the green sitrep in the room", func() bool { return inRoom()[green.ID().String()] == 1 })

	say := func(c *mautrix.Client, text string) {
		t.Helper()
		if _, err := c.SendText(ctx, id.RoomID(room), text); err != nil {
			t.Fatal(err)
		}
	}
	say(mallory, "from mallory")
	say(alice, "from alice")
	var fromAlice EntryView
	waitUntil(t, 30*time.Second, "alice's message in the log", func() bool {
		es, err := n.Entries("", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Bridged != nil {
				fromAlice = e
				return true
			}
		}
		return false
	})
	if fromAlice.Text != "from alice" || fromAlice.Kind != "message" || fromAlice.TLP != "green" || fromAlice.Author != specs[0].Name ||
		fromAlice.Bridged.Sender != string(alice.UserID) || fromAlice.Bridged.Via != "matrix" || fromAlice.Bridged.EventID == "" {
		t.Errorf("bridged entry %+v, %+v", fromAlice, fromAlice.Bridged)
	}

	// The status through the API, as `crisismesh matrix status` reads it.
	tok, err := ReadToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := api.NewClient("http://"+specs[0].API, tok, nil).MatrixStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || !st.Running || st.Room != string(room) || st.LastSuccess == nil || st.Withheld[matrix.WithheldRed] != 1 || st.Ignored != 1 {
		t.Errorf("matrix status %+v", st)
	}

	// Homeserver down; the node writes and restarts with a full queue.
	hs.Stop()
	var queued []string
	for i := range 15 {
		e, err := n.Post(ctx, PostRequest{Kind: "message", TLP: "clear", Text: fmt.Sprintf("while the homeserver is down %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		queued = append(queued, e.ID().String())
	}
	waitUntil(t, 30*time.Second, "the queue to fill", func() bool { return n.MatrixStatus().Queue > 0 })
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := hs.Start(); err != nil {
		t.Fatal(err)
	}
	n = open()
	waitUntil(t, 60*time.Second, "the queued entries in the room", func() bool {
		m := inRoom()
		for _, q := range queued {
			if m[q] == 0 {
				return false
			}
		}
		return true
	})
	m := inRoom()
	for e, c := range m {
		if c != 1 {
			t.Errorf("entry %s is %d times in the room", e[:12], c)
		}
	}
	if m[red.ID().String()] != 0 {
		t.Error("the RED entry is in the room")
	}
}
