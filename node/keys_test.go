package node

import (
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// A hostile member M of a three-member network tries both ways of reading
// or planting TLP:RED that issue 11 found: a newer key for the pair of
// node0 and node1 (finding 3), and an entry labelled RED sealed to the
// whole network (finding 5). node0's RED post to node1 stays closed to M;
// the RED-to-all entry is stored but shown without its text; status and
// metrics count both against M.
func TestPostRedKeySubstitutionAndRedToAll(t *testing.T) {
	nodes, err := Testnet(TestnetOptions{Dir: t.TempDir(), Nodes: 3, BasePort: freeBasePort(t), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	n, err := Open(nodes[0].Dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	b, err := LoadIdentity(nodes[1].Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadIdentity(nodes[2].Dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the network key", func() bool { _, ok := n.Store().CurrentKey("all"); return ok })
	all, _ := n.Store().CurrentKey("all")
	network := n.Store().Network()

	// M: a key for the pair, sealed to the pair and M, at a higher epoch.
	evil, _ := crypto.NewGroupKey(log.RecipientGroup([]crypto.MemberID{n.Identity().ID(), b.ID()}), 9)
	ke, err := crypto.NewKeyEnvelope(network, evil, []crypto.Recipient{n.Identity().Card().Recipient(), b.Card().Recipient(), m.Card().Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	es, err := log.Build(m, network, log.Tip{}, 0, time.Now(), []log.Draft{
		{Body: log.Body{Kind: log.KindKey, TLP: log.TLPClear, Payload: ke.Bytes()}},
		{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPAmber, Text: "placeholder"}, Key: all},
	})
	if err != nil {
		t.Fatal(err)
	}
	red := relabelRed(t, m, all, es[1], "for everyone, labelled red")
	if res, err := n.Store().Ingest(context.Background(), es[0], red); err != nil || len(res.Added) != 2 {
		t.Fatalf("ingest: %v %+v", err, res)
	}

	post, err := n.Post(context.Background(), PostRequest{TLP: "red", Text: "for node1 only", To: []string{nodes[1].Name}})
	if err != nil {
		t.Fatal(err)
	}
	if post.Header.KeyID == evil.ID() {
		t.Fatal("node0 sealed its TLP:RED post to node1 under the key M issued")
	}
	v := n.ViewEntry(red)
	if v.Readable || strings.Contains(v.Text, "labelled red") || v.NotBelieved != log.BeliefRedToRecipients {
		t.Errorf("RED sealed to all is shown: %+v", v)
	}
	st := n.Status(context.Background())
	got := map[string]int{}
	for _, o := range st.Offences {
		if o.Member != nodes[2].Name {
			t.Errorf("offence of %s: %+v", o.Member, o)
		}
		got[o.Rule] = o.Entries
	}
	if got[log.KeyRuleGroup] != 1 || got[log.BeliefRedToRecipients] != 1 {
		t.Errorf("offences: %+v", st.Offences)
	}
	resp, err := http.Get("http://" + nodes[0].API + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := `crisismesh_offences_total{member="` + nodes[2].Name + `",rule="red-not-to-recipients"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("metrics lack %s", want)
	}
}

// relabelRed re-seals e's body as TLP:RED under key and signs it again as
// author: what log.Build refuses to write.
func relabelRed(t *testing.T, author *crypto.Identity, key *crypto.GroupKey, e *log.Entry, text string) *log.Entry {
	t.Helper()
	plain, err := (&log.Body{Kind: log.KindMessage, TLP: log.TLPRed, Text: text}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	body, err := crypto.SealWith(key, e.Header.Network, e.HeaderBytes(), plain)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write([]byte("crisismesh/entry-id/v1\x00"))
	h.Write(e.HeaderBytes())
	h.Write(body)
	sig, err := author.Sign(crypto.ContextEntry, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := crypto.MarshalCanonical(map[uint64][]byte{1: e.HeaderBytes(), 2: body, 3: sig})
	if err != nil {
		t.Fatal(err)
	}
	out, err := log.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
