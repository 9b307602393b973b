//go:build linux || darwin

package store

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// statfsFree returns the bytes an unprivileged writer may still use on
// the file system of dir (f_bavail × f_bsize).
func statfsFree(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("store: statfs %s: %w", dir, err)
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
