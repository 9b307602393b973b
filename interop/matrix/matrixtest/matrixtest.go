// Package matrixtest runs a real Matrix homeserver for tests: Dendrite
// (github.com/matrix-org/dendrite, pinned by the module in tools/dendrite;
// never the element-hq fork), as a separate process with SQLite in the
// test's temporary directory, listening on a free port of 127.0.0.1.
//
// [Main] builds the binaries before any test starts (call it from
// TestMain, so the build does not eat a test's timeout) and caches them by
// version outside the repository, in os.UserCacheDir()/crisismesh-dendrite/
// VERSION-GOOS-GOARCH (a lock file lets one of several test processes
// build; the first build takes minutes). `.ci/run` warms that cache by
// running TestDendriteBuilds with CRISISMESH_REQUIRE_DENDRITE=1, which
// fails instead of skipping when Dendrite cannot be built. [Start] starts
// a server, [Server.Register] creates users with the shared-secret
// registration (create-account), and the server stops when the test ends;
// [Server.Stop] and [Server.Start] stop and restart it on the same port
// and data (outage tests). When the binaries cannot be built, [Start]
// skips the test with a loud message saying why.
//
// It is a test helper: only tests may import it.
package matrixtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Version is the Dendrite version tools/dendrite/go.mod pins.
const Version = "v0.13.8"

// Tools are the Dendrite commands built.
var Tools = []string{"dendrite", "create-account", "generate-keys", "generate-config"}

// SharedSecret is the registration shared secret of every test server.
const SharedSecret = "crisismesh-test-registration-secret"

// ServerName is the server part of the test users' IDs (@NAME:localhost).
const ServerName = "localhost"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Main builds the binaries (or finds them in the cache) and runs the
// tests. Call it from TestMain: func TestMain(m *testing.M) { matrixtest.Main(m) }.
func Main(m *testing.M) {
	if _, err := Build(); err != nil {
		fmt.Fprintf(os.Stderr, "\n%s\n\n", skipMessage(err))
	}
	os.Exit(m.Run())
}

func skipMessage(err error) string {
	return fmt.Sprintf("!!!!!!!! MATRIX TESTS SKIPPED: Dendrite %s could not be built: %v !!!!!!!!", Version, err)
}

// CacheDir is where the binaries of Version are kept.
func CacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("matrixtest: %w", err)
	}
	return filepath.Join(d, "crisismesh-dendrite", Version+"-"+runtime.GOOS+"-"+runtime.GOARCH), nil
}

// moduleDir is tools/dendrite of this repository.
func moduleDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("matrixtest: cannot locate the source tree")
	}
	d := filepath.Join(filepath.Dir(file), "..", "..", "..", "tools", "dendrite")
	if _, err := os.Stat(filepath.Join(d, "go.mod")); err != nil {
		return "", fmt.Errorf("matrixtest: %w", err)
	}
	return d, nil
}

// Build returns the directory of the Dendrite binaries, building them
// first if the cache lacks them (several minutes the first time). Several
// test processes may call it at once: a lock file lets one build.
func Build() (string, error) {
	buildOnce.Do(func() { binDir, buildErr = build() })
	return binDir, buildErr
}

func build() (string, error) {
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	stamp := filepath.Join(dir, "complete")
	if _, err := os.Stat(stamp); err == nil {
		return dir, nil
	}
	src, err := moduleDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("matrixtest: %w", err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("matrixtest: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("matrixtest: lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(stamp); err == nil {
		return dir, nil // another process built it meanwhile
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "build-")
	if err != nil {
		return "", fmt.Errorf("matrixtest: %w", err)
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-o", tmp + string(filepath.Separator)}
	for _, t := range Tools {
		args = append(args, "github.com/matrix-org/dendrite/cmd/"+t)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = src
	// The wrapper module is built as it is pinned: its own go.mod and
	// go.sum, whatever the caller's flags say.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("matrixtest: go build in %s: %w\n%s", src, err, out)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("matrixtest: %w", err)
	}
	if err := os.WriteFile(stamp, []byte(Version+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("matrixtest: %w", err)
	}
	return dir, nil
}

// Server is one Dendrite process and its data directory. Its methods are
// not safe for concurrent use.
type Server struct {
	// URL is the client API's base URL (http://127.0.0.1:PORT).
	URL string

	t      testing.TB
	bin    string
	dir    string
	config string
	addr   string
	cmd    *exec.Cmd
	done   chan struct{}
	log    *os.File
}

// Start builds (if needed) and starts a Dendrite in t.TempDir(); it is
// stopped when the test ends. It skips t loudly if Dendrite cannot be
// built.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Build()
	if err != nil {
		t.Skip(skipMessage(err))
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	if err := s.configure(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *Server) configure() error {
	run := func(name string, args ...string) ([]byte, error) {
		cmd := exec.Command(filepath.Join(s.bin, name), args...)
		cmd.Dir = s.dir
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return nil, fmt.Errorf("matrixtest: %s: %w: %s", name, err, ee.Stderr)
			}
			return nil, fmt.Errorf("matrixtest: %s: %w", name, err)
		}
		return out, nil
	}
	if _, err := run("generate-keys", "--private-key", "matrix_key.pem"); err != nil {
		return err
	}
	cfg, err := run("generate-config", "-dir", s.dir, "-server", ServerName)
	if err != nil {
		return err
	}
	cfg, err = edit(cfg)
	if err != nil {
		return err
	}
	s.config = filepath.Join(s.dir, "dendrite.yaml")
	if err := os.WriteFile(s.config, cfg, 0o600); err != nil {
		return fmt.Errorf("matrixtest: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("matrixtest: %w", err)
	}
	s.addr = l.Addr().String()
	l.Close()
	s.URL = "http://" + s.addr
	return nil
}

// edit sets what the tests need in generate-config's output: the shared
// secret, and no rate limits (tests send bursts).
func edit(cfg []byte) ([]byte, error) {
	out := string(cfg)
	for _, r := range []struct{ old, new string }{
		{"registration_shared_secret: \"\"", "registration_shared_secret: \"" + SharedSecret + "\""},
		{"  rate_limiting:\n    enabled: true", "  rate_limiting:\n    enabled: false"},
	} {
		if !strings.Contains(out, r.old) {
			return nil, fmt.Errorf("matrixtest: generate-config's output has no %q any more", r.old)
		}
		out = strings.Replace(out, r.old, r.new, 1)
	}
	return []byte(out), nil
}

// Start starts the server (again, after Stop) on the same port and data,
// and waits until its client API answers.
func (s *Server) Start() error {
	if s.cmd != nil {
		return errors.New("matrixtest: already running")
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "dendrite.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("matrixtest: %w", err)
	}
	cmd := exec.Command(filepath.Join(s.bin, "dendrite"), "--config", s.config, "--http-bind-address", s.addr)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("matrixtest: start dendrite: %w", err)
	}
	s.cmd, s.log, s.done = cmd, logf, make(chan struct{})
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			s.cmd = nil
			logf.Close()
			return fmt.Errorf("matrixtest: dendrite exited at start: %s", s.tail())
		default:
		}
		resp, err := http.Get(s.URL + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond) // polling a starting process: no event to wait on
	}
	s.Stop()
	return fmt.Errorf("matrixtest: dendrite did not answer within 60s: %s", s.tail())
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s); the data stays
// for Start.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	s.log.Close()
}

// tail returns the end of the server's log.
func (s *Server) tail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "dendrite.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// User is a registered account.
type User struct {
	ID       string // @name:localhost
	Name     string
	Password string
	Token    string
}

// Register creates a user with the shared-secret registration
// (create-account) and returns its access token.
func (s *Server) Register(name string) (User, error) {
	u := User{ID: "@" + name + ":" + ServerName, Name: name, Password: name + "-password-1234"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "create-account"), "--config", s.config,
		"-username", name, "-password", u.Password, "-url", s.URL)
	cmd.Dir = s.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return u, fmt.Errorf("matrixtest: create-account %s: %w: %s", name, err, stderr.String())
	}
	for _, line := range strings.Split(string(out)+stderr.String(), "\n") {
		// logrus: level=info msg="Created account: NAME (AccessToken: TOKEN)"
		if _, tok, ok := strings.Cut(line, "AccessToken: "); ok {
			tok, _, _ = strings.Cut(tok, ")")
			u.Token = strings.TrimSpace(tok)
		}
	}
	if u.Token == "" {
		return u, fmt.Errorf("matrixtest: create-account %s printed no access token: %s%s", name, out, stderr.String())
	}
	return u, nil
}

// Client registers a user and returns a Matrix client logged in as it.
func (s *Server) Client(name string) (*mautrix.Client, User, error) {
	u, err := s.Register(name)
	if err != nil {
		return nil, u, err
	}
	c, err := mautrix.NewClient(s.URL, id.UserID(u.ID), u.Token)
	if err != nil {
		return nil, u, fmt.Errorf("matrixtest: %w", err)
	}
	return c, u, nil
}

// NewRoom has creator make a private room (end-to-end encrypted if
// encrypted) and invite the users; it returns the room's ID.
func NewRoom(creator *mautrix.Client, encrypted bool, invite ...string) (id.RoomID, error) {
	req := &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "CSIRT team"}
	for _, u := range invite {
		req.Invite = append(req.Invite, id.UserID(u))
	}
	if encrypted {
		req.InitialState = []*event.Event{{Type: event.StateEncryption, Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}}
	}
	resp, err := creator.CreateRoom(context.Background(), req)
	if err != nil {
		return "", fmt.Errorf("matrixtest: create room: %w", err)
	}
	return resp.RoomID, nil
}

// Message is a room message as a member reads it.
type Message struct {
	Sender, Body, MsgType string
	Content               map[string]any
}

// Read returns the room's m.room.message events as c reads them, oldest
// first (encrypted events are not decrypted).
func Read(c *mautrix.Client, room id.RoomID) ([]Message, error) {
	ctx := context.Background()
	s, err := c.FullSyncRequest(ctx, mautrix.ReqSync{Timeout: 0, FilterID: `{"room":{"timeline":{"limit":1}}}`})
	if err != nil {
		return nil, fmt.Errorf("matrixtest: sync: %w", err)
	}
	var out []Message
	from := s.NextBatch
	for {
		resp, err := c.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			return nil, fmt.Errorf("matrixtest: messages: %w", err)
		}
		for _, ev := range resp.Chunk {
			if ev.Type != event.EventMessage {
				continue
			}
			body, _ := ev.Content.Raw["body"].(string)
			mt, _ := ev.Content.Raw["msgtype"].(string)
			out = append(out, Message{Sender: string(ev.Sender), Body: body, MsgType: mt, Content: ev.Content.Raw})
		}
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	slices.Reverse(out)
	return out, nil
}
