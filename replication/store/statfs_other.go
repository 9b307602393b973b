//go:build !(linux || darwin)

package store

import "errors"

// statfsFree is not implemented on this system: the store writes without
// the disk-full guard (unless Options.FreeSpace is set).
func statfsFree(string) (uint64, error) {
	return 0, errors.New("store: measuring free space is not supported on this system")
}
