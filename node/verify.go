package node

import (
	"fmt"
	"os"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/archive"
	"github.com/crisismesh/crisismesh/replication/log"
)

// ArchiveReport is what an archive that verifies holds
// (archive.Report).
type ArchiveReport = archive.Report

// VerifyArchive reads the archive file and verifies it with nothing but
// the genesis (archive.Verify): no node runs, no network is used. With
// dir (a data directory) the keys found there, the current one and the
// one kept from before a rotation, open the bodies they can, capped by
// maxTLP.
func VerifyArchive(file, genesisPath, dir string, passphrase []byte, maxTLP log.TLP) (*ArchiveReport, error) {
	g, err := ReadGenesis(genesisPath)
	if err != nil {
		return nil, err
	}
	opts := archive.Options{MaxTLP: maxTLP}
	if dir != "" {
		id, err := LoadIdentity(dir, passphrase)
		if err != nil {
			return nil, err
		}
		prev, err := loadPrevious(dir, passphrase)
		if err != nil {
			return nil, err
		}
		opts.Identities = append([]*crypto.Identity{id}, prev...)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	a, err := archive.Read(f, fi.Size())
	if err != nil {
		return nil, err
	}
	return archive.Verify(g, a, opts)
}
