package matrix

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/crisismesh/crisismesh/interop/matrix/matrixtest"
	"github.com/crisismesh/crisismesh/replication/log"
)

func TestMain(m *testing.M) { matrixtest.Main(m) }

// env is a homeserver with a room: alice (allowed) made it and invited the
// bot and mallory (not allowed), who joined.
type env struct {
	t       testing.TB
	hs      *matrixtest.Server
	bot     matrixtest.User
	alice   *mautrix.Client
	mallory *mautrix.Client
	room    id.RoomID
	dir     string
}

func newEnv(t *testing.T, encrypted bool) *env { return newEnvTB(t, encrypted) }

func newEnvTB(t testing.TB, encrypted bool) *env {
	t.Helper()
	hs := matrixtest.Start(t)
	e := &env{t: t, hs: hs, dir: t.TempDir()}
	var err error
	if e.bot, err = hs.Register("bot"); err != nil {
		t.Fatal(err)
	}
	e.alice = e.client("alice")
	e.mallory = e.client("mallory")
	ctx := context.Background()
	if e.room, err = matrixtest.NewRoom(e.alice, encrypted, e.bot.ID, string(e.mallory.UserID)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mallory.JoinRoomByID(ctx, e.room); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "bot.token"), []byte(e.bot.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) client(name string) *mautrix.Client {
	e.t.Helper()
	c, _, err := e.hs.Client(name)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) config() Config {
	return Config{Homeserver: e.hs.URL, User: e.bot.ID, AccessTokenFile: "bot.token", Room: string(e.room),
		Allow: []string{string(e.alice.UserID)}, Poll: Duration{50 * time.Millisecond}}
}

// start starts a bridge of n in state directory e.dir/state.
func (e *env) start(cfg Config, n Node) *Bridge {
	e.t.Helper()
	b, err := New(cfg, n, Options{Dir: filepath.Join(e.dir, "state"), Base: e.dir, MaxBackoff: 500 * time.Millisecond, Logger: testLogger(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { b.Close() })
	return b
}

// testLogger logs to the test's output (shown with -v or when it fails)
// until the test's cleanups run; a cleanup registered after it (a
// bridge's Close) runs first, so the bridge logs to the end.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter writes to t.Output, and nothing once the test ends (mautrix
// may log from goroutines of its own).
type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	return w.t.Output().Write(p)
}

// roomEvent is a message as alice reads it in the room.
type roomEvent struct {
	Sender, Body, Entry, MsgType, Notice string
}

// read returns the room's messages, oldest first.
func (e *env) read() []roomEvent {
	e.t.Helper()
	ms, err := matrixtest.Read(e.alice, e.room)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]roomEvent, len(ms))
	for i, m := range ms {
		ent, _ := m.Content[KeyEntry].(string)
		out[i] = roomEvent{Sender: m.Sender, Body: m.Body, Entry: ent, MsgType: m.MsgType}
	}
	return out
}

// entriesInRoom counts the bot's messages per entry ID.
func (e *env) entriesInRoom() map[string]int {
	m := map[string]int{}
	for _, ev := range e.read() {
		if ev.Entry != "" {
			m[ev.Entry]++
		}
	}
	return m
}

func (e *env) say(c *mautrix.Client, text string) id.EventID {
	e.t.Helper()
	resp, err := c.SendText(context.Background(), e.room, text)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.EventID
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond) // polling a separate process: there is no event to wait on
	}
}

func TestBridgeCrossesBothWaysPlainRoom(t *testing.T) {
	e := newEnv(t, false)
	n := newFakeNode()
	b := e.start(e.config(), n)

	green := n.post("cert-fr", log.TLPGreen, "ransomware at a hospital in Lille")
	red := n.add("cert-fr", log.KindIncident, log.TLPRed, "RED: the hospital's name", nil)
	amber := n.post("cert-fr", log.TLPAmber, "AMBER: indicators")
	strict := n.post("cert-fr", log.TLPAmberStrict, "AMBER+STRICT: the vendor")
	clear := n.add("cert-lu", log.KindDecision, log.TLPClear, "CSIRTs Network meets at 14:00", nil)
	sealed := n.post("cert-de", log.TLPGreen, "")
	n.mu.Lock()
	n.entries[len(n.entries)-1].Readable = false
	n.mu.Unlock()

	waitFor(t, 30*time.Second, "the green and clear entries in the room", func() bool {
		m := e.entriesInRoom()
		return m[green.ID] == 1 && m[clear.ID] == 1
	})
	e.say(e.alice, "CERT-LU sees it too: blocking the C2 now")
	e.say(e.mallory, "mallory: please bridge me")
	e.say(e.alice, "!crisis")
	waitFor(t, 30*time.Second, "alice's message in the log", func() bool { return len(n.bridged()) == 1 })
	waitFor(t, 30*time.Second, "the !crisis answer", func() bool {
		for _, ev := range e.read() {
			if ev.Sender == e.bot.ID && strings.HasPrefix(ev.Body, "crisis: open, level 2") && ev.MsgType == "m.notice" {
				return true
			}
		}
		return false
	})
	// Wait until every entry is handled: then nothing else will come.
	waitFor(t, 30*time.Second, "the queue to drain", func() bool { return b.Status().Queue == 0 && len(b.position()) == 3 })

	m := e.entriesInRoom()
	for _, bad := range []Entry{red, amber, strict, sealed} {
		if m[bad.ID] != 0 {
			t.Errorf("entry %q (TLP %s, readable %v) is in the room", bad.Text, bad.TLP, bad.Readable)
		}
	}
	for _, ev := range e.read() {
		if strings.Contains(ev.Body, "RED") || strings.Contains(ev.Body, "AMBER") {
			t.Errorf("the room holds %q", ev.Body)
		}
	}
	var gotGreen, gotClear roomEvent
	for _, ev := range e.read() {
		switch ev.Entry {
		case green.ID:
			gotGreen = ev
		case clear.ID:
			gotClear = ev
		}
	}
	if want := "[TLP:GREEN] message from cert-fr: ransomware at a hospital in Lille"; gotGreen.Body != want || gotGreen.MsgType != "m.text" {
		t.Errorf("green entry in the room: %q (%s), want %q (m.text)", gotGreen.Body, gotGreen.MsgType, want)
	}
	if gotClear.MsgType != "m.notice" || !strings.Contains(gotClear.Body, "[TLP:CLEAR] decision from cert-lu") {
		t.Errorf("decision in the room: %q (%s), want a notice naming TLP:CLEAR and cert-lu", gotClear.Body, gotClear.MsgType)
	}

	got := n.bridgedEntries()
	if len(got) != 1 {
		t.Fatalf("bridged entries %v, want alice's only (mallory is not allowed; !crisis is a command)", n.bridged())
	}
	be := got[0]
	if be.Text != "CERT-LU sees it too: blocking the C2 now" || be.TLP != log.TLPGreen || be.Kind != log.KindMessage ||
		be.Author != "cert-lu" || be.Bridged.Sender != string(e.alice.UserID) || be.Bridged.Via != "matrix" || be.Bridged.Event == "" {
		t.Errorf("bridged entry %+v %+v", be, be.Bridged)
	}
	// The bridged entry is not sent back to the room.
	if m := e.entriesInRoom(); m[be.ID] != 0 {
		t.Errorf("the bridged entry went back to the room")
	}
	s := b.Status()
	if s.Ignored != 1 || s.Received != 1 || s.Sent != 2 {
		t.Errorf("status %+v: want 1 ignored, 1 received, 2 sent", s)
	}
	for _, r := range []string{WithheldRed, WithheldAmberStrict, WithheldAboveMax, WithheldSealed, WithheldBridged} {
		if s.Withheld[r] != 1 {
			t.Errorf("withheld[%s] = %d, want 1 (%v)", r, s.Withheld[r], s.Withheld)
		}
	}
}

// The homeserver stops while both sides write; after its restart every
// message arrives once in each direction.
func TestBridgeHomeserverOutage(t *testing.T) {
	e := newEnv(t, false)
	n := newFakeNode()
	b := e.start(e.config(), n)
	first := n.post("cert-fr", log.TLPGreen, "before the outage")
	waitFor(t, 30*time.Second, "the first entry in the room", func() bool { return e.entriesInRoom()[first.ID] == 1 })
	// Matrix users write just before the homeserver goes down: the
	// bridge has not read them yet, or is reading them.
	for i := range 5 {
		e.say(e.alice, fmt.Sprintf("alice before the outage %d", i))
	}
	// The outage starts once alice's messages are in the room: Dendrite
	// can lose an event it accepted just before SIGTERM (see
	// TestBridgeEncryptedRoomOutageAndRestart), which no bridge can
	// bring back.
	waitFor(t, 30*time.Second, "alice's messages in the room", func() bool {
		held := 0
		for _, ev := range e.read() {
			if ev.Sender == string(e.alice.UserID) && strings.HasPrefix(ev.Body, "alice before the outage") {
				held++
			}
		}
		return held == 5
	})
	e.hs.Stop()
	var during []Entry
	for i := range 20 {
		during = append(during, n.post("cert-fr", log.TLPGreen, fmt.Sprintf("during the outage %d", i)))
	}
	waitFor(t, 30*time.Second, "the bridge to notice the outage", func() bool { return b.Status().Errors > 0 })
	if err := e.hs.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		e.say(e.alice, fmt.Sprintf("alice after the outage %d", i))
	}
	waitFor(t, 60*time.Second, "every entry in the room", func() bool {
		m := e.entriesInRoom()
		for _, d := range during {
			if m[d.ID] == 0 {
				return false
			}
		}
		return true
	})
	deadline := time.Now().Add(60 * time.Second)
	for len(n.bridged()) < 10 {
		if time.Now().After(deadline) {
			var alice []string
			for _, ev := range e.read() {
				if ev.Sender == string(e.alice.UserID) {
					alice = append(alice, ev.Body)
				}
			}
			t.Fatalf("after 60s the log holds %q; alice wrote %q; bridge %+v", n.bridged(), alice, b.Status())
		}
		time.Sleep(50 * time.Millisecond) // polling a separate process
	}
	for id, c := range e.entriesInRoom() {
		if c != 1 {
			t.Errorf("entry %s is %d times in the room", id[:12], c)
		}
	}
	seen := map[string]int{}
	for _, t := range n.bridged() {
		seen[t]++
	}
	for i := range 5 {
		for _, w := range []string{"alice before the outage %d", "alice after the outage %d"} {
			if s := fmt.Sprintf(w, i); seen[s] != 1 {
				t.Errorf("%q is %d times in the log", s, seen[s])
			}
		}
	}
}

// A bridge stopped mid-queue, and one whose recorded state is older than
// the room (a crash between a send and its record), loses nothing and
// sends nothing twice after a restart.
func TestBridgeRestartMidQueue(t *testing.T) {
	e := newEnv(t, false)
	n := newFakeNode()
	before := n.post("cert-fr", log.TLPGreen, "before the bridge was configured")
	b := e.start(e.config(), n)
	var all []Entry
	for i := range 60 {
		all = append(all, n.post("cert-fr", log.TLPGreen, fmt.Sprintf("entry %d", i)))
	}
	waitFor(t, 60*time.Second, "some entries in the room", func() bool { return b.Status().Sent >= 10 })
	b.Close()
	stateFile := filepath.Join(e.dir, "state", StateFile)
	old, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	b2 := e.start(e.config(), n)
	waitFor(t, 60*time.Second, "the rest in the room", func() bool { return b2.Status().Queue == 0 && b2.position()["id-cert-fr"] == 61 })
	b2.Close()
	// Roll the state back, as if the process died after sending but
	// before recording: the timeline check finds what was sent.
	if err := os.WriteFile(stateFile, old, 0o600); err != nil {
		t.Fatal(err)
	}
	more := n.post("cert-fr", log.TLPGreen, "after the rollback")
	b3 := e.start(e.config(), n)
	waitFor(t, 60*time.Second, "the last entry in the room", func() bool { return e.entriesInRoom()[more.ID] == 1 })
	waitFor(t, 30*time.Second, "the queue to drain", func() bool { return b3.Status().Queue == 0 })
	m := e.entriesInRoom()
	for _, en := range append(all, more) {
		if m[en.ID] != 1 {
			t.Errorf("%q is %d times in the room, want once", en.Text, m[en.ID])
		}
	}
	if m[before.ID] != 0 {
		t.Errorf("an entry written before the bridge was configured went to the room")
	}
}
