package archive_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/archive"
	"github.com/crisismesh/crisismesh/replication/log"
)

// An archive written by a member and verified by anyone holding the
// genesis: no node, no keys.
func ExampleVerify() {
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	admin, _ := crypto.NewIdentity("enisa", now)
	lu, _ := crypto.NewIdentity("cert-lu", now)
	genesis, _ := crypto.NewGenesis(crypto.GenesisSpec{Network: "example", Created: now,
		Members: []crypto.Member{
			{Card: admin.Card(), Roles: []crypto.Role{crypto.RoleAdmin}},
			{Card: lu.Card(), Roles: []crypto.Role{crypto.RoleCSIRT}},
		},
		Voters: []crypto.MemberID{admin.ID()}, Admins: []crypto.MemberID{admin.ID()}}, admin)
	key, _ := crypto.NewGroupKey("all", 1)
	entries, _ := log.Build(lu, genesis.NetworkID(), log.Tip{}, 0, now, []log.Draft{
		{Body: log.Body{Kind: log.KindIncident, TLP: log.TLPAmber, Text: "ransomware at a hospital"}, Key: key},
		{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber, Text: "contained"}, Key: key},
	})

	// The exporting member writes the file...
	var file bytes.Buffer
	w, _ := archive.NewWriter(&file)
	for _, e := range entries {
		w.Entry(e)
	}
	w.Close(lu, genesis.NetworkID(), archive.Meta{Created: now})

	// ...and anyone with the genesis verifies it.
	a, err := archive.Read(bytes.NewReader(file.Bytes()), int64(file.Len()))
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := archive.Verify(genesis, a, archive.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d entries by %s, %d sealed, exported by %s\n", rep.Entries, rep.Members[0].Name, rep.Sealed, rep.Exporter)
	// Output: 2 entries by cert-lu, 2 sealed, exported by cert-lu
}
