//go:build goolm

package matrix

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	_ "modernc.org/sqlite" // pure-Go SQLite for the device's key store: no cgo
)

// Files of the bridge's device keys in its directory (both 0600).
const (
	cryptoDBFile  = "crypto.db"  // Olm account, sessions, devices (mautrix's SQL store)
	pickleKeyFile = "pickle.key" // encrypts the account and sessions inside crypto.db
)

// e2ee is end-to-end encryption in an encrypted room: mautrix's OlmMachine
// with goolm, its keys in the bridge's directory.
type e2ee struct {
	b    *Bridge
	db   *sql.DB
	mach *crypto.OlmMachine

	mu      sync.Mutex
	members []id.UserID // who the current outbound session was shared with
}

// newE2EE opens (or makes) the device's keys and uploads them.
func newE2EE(ctx context.Context, b *Bridge) (*e2ee, error) {
	key, err := readOrMakeKey(filepath.Join(b.opts.Dir, pickleKeyFile))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(b.opts.Dir, cryptoDBFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, fmt.Errorf("matrix: key store: %w", err)
	}
	db.SetMaxOpenConns(1)
	x := &e2ee{b: b, db: db}
	fail := func(err error) (*e2ee, error) {
		db.Close()
		return nil, err
	}
	dbu, err := dbutil.NewWithDB(db, "sqlite3")
	if err != nil {
		return fail(fmt.Errorf("matrix: key store: %w", err))
	}
	store := crypto.NewSQLCryptoStore(dbu, dbutil.NoopLogger, b.cfg.User, b.cli.DeviceID, key)
	if err := store.DB.Upgrade(ctx); err != nil {
		return fail(fmt.Errorf("matrix: key store: %w", err))
	}
	level := zerolog.InfoLevel
	if b.logger.Enabled(ctx, slog.LevelDebug) {
		level = zerolog.DebugLevel
	}
	zl := zerolog.New(zerologSlog{b.logger}).Level(level)
	x.mach = crypto.NewOlmMachine(b.cli, &zl, store, roomState{b.room})
	if err := x.mach.Load(ctx); err != nil {
		return fail(fmt.Errorf("matrix: device keys: %w", err))
	}
	if err := x.mach.ShareKeys(ctx, -1); err != nil {
		return fail(fmt.Errorf("matrix: upload device keys: %w", err))
	}
	return x, nil
}

// readOrMakeKey reads a 32-byte key from path, making it (0600) if absent.
func readOrMakeKey(path string) ([]byte, error) {
	k, err := os.ReadFile(path)
	if err == nil && len(k) == 32 {
		return k, nil
	}
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("matrix: %s: want 32 bytes (%v)", path, err)
	}
	k = make([]byte, 32)
	rand.Read(k)
	if err := writeAtomic(filepath.Dir(path), filepath.Base(path), k, 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// Send encrypts c for the room's joined members and sends it. When the
// members changed since the session was shared, a new session is made, so
// who left cannot read on and who joined can.
func (x *e2ee) Send(ctx context.Context, c content, txn string) error {
	jm, err := x.b.cli.JoinedMembers(ctx, x.b.room)
	if err != nil {
		return fmt.Errorf("matrix: joined members: %w", err)
	}
	var members []id.UserID
	for u := range jm.Joined {
		members = append(members, u)
	}
	slices.Sort(members)
	x.mu.Lock()
	defer x.mu.Unlock()
	if !slices.Equal(members, x.members) {
		if err := x.mach.CryptoStore.RemoveOutboundGroupSession(ctx, x.b.room); err != nil {
			return fmt.Errorf("matrix: %w", err)
		}
	}
	if err := x.mach.ShareGroupSession(ctx, x.b.room, members); err != nil {
		return fmt.Errorf("matrix: share room key: %w", err)
	}
	x.members = members
	enc, err := x.mach.EncryptMegolmEvent(ctx, x.b.room, event.EventMessage, c)
	if err != nil {
		return fmt.Errorf("matrix: encrypt: %w", err)
	}
	var extra []mautrix.ReqSendEvent
	if txn != "" {
		extra = append(extra, mautrix.ReqSendEvent{TransactionID: txn})
	}
	if _, err := x.b.cli.SendMessageEvent(ctx, x.b.room, event.EventEncrypted, enc, extra...); err != nil {
		return fmt.Errorf("matrix: send: %w", err)
	}
	return nil
}

// Decrypt decrypts a room event, once: errKeyMissing when its room key
// has not arrived (yet), errUndecryptable when no key will help, the
// context's error when the bridge stops meanwhile.
func (x *e2ee) Decrypt(ctx context.Context, ev *event.Event) (*event.Event, error) {
	if ev.Content.Parsed == nil {
		if err := ev.Content.ParseRaw(ev.Type); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errUndecryptable, ev.ID, err)
		}
	}
	if ev.RoomID == "" {
		ev.RoomID = x.b.room
	}
	dec, err := x.mach.DecryptMegolmEvent(ctx, ev)
	switch {
	case err == nil:
		return dec, nil
	case errors.Is(err, crypto.ErrNoSessionFound):
		return nil, fmt.Errorf("%w: %s: %w", errKeyMissing, ev.ID, err)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("matrix: decrypt %s: %w", ev.ID, ctx.Err())
	default:
		return nil, fmt.Errorf("%w: %s: %w", errUndecryptable, ev.ID, err)
	}
}

// ProcessSync hands a sync's to-device events, device lists and key
// counts to the machine.
func (x *e2ee) ProcessSync(ctx context.Context, resp *mautrix.RespSync, since string) {
	x.mach.ProcessSyncResponse(ctx, resp, since)
}

// Close closes the key store.
func (x *e2ee) Close() error { return x.db.Close() }

// roomState is the machine's view of room state: the bridge's room is
// encrypted (the bridge checked) and shared with everyone it sees.
type roomState struct{ room id.RoomID }

func (r roomState) IsEncrypted(_ context.Context, room id.RoomID) (bool, error) {
	return room == r.room, nil
}

func (r roomState) GetEncryptionEvent(_ context.Context, room id.RoomID) (*event.EncryptionEventContent, error) {
	if room != r.room {
		return nil, nil
	}
	return &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}, nil
}

func (r roomState) GetHistoryVisibility(context.Context, id.RoomID) (*event.HistoryVisibilityEventContent, error) {
	return &event.HistoryVisibilityEventContent{HistoryVisibility: event.HistoryVisibilityShared}, nil
}

func (r roomState) FindSharedRooms(context.Context, id.UserID) ([]id.RoomID, error) {
	return []id.RoomID{r.room}, nil
}
