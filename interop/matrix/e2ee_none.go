//go:build !goolm

package matrix

import (
	"context"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
)

// e2ee is end-to-end encryption in an encrypted room.
type e2ee struct{}

// newE2EE refuses: this build has no end-to-end encryption.
func newE2EE(context.Context, *Bridge) (*e2ee, error) { return nil, ErrNoEncryption }

func (*e2ee) Send(context.Context, content, string) error { return ErrNoEncryption }
func (*e2ee) Decrypt(context.Context, *event.Event) (*event.Event, error) {
	return nil, ErrNoEncryption
}
func (*e2ee) ProcessSync(context.Context, *mautrix.RespSync, string) {}
func (*e2ee) Close() error                                           { return nil }
