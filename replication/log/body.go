package log

import (
	"embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/crisismesh/crisismesh/crypto"
)

// A Kind says what an entry is.
type Kind string

// The kinds of entries.
const (
	KindIncident   Kind = "incident"   // an incident report
	KindSitrep     Kind = "sitrep"     // a situation report
	KindRequest    Kind = "request"    // a request for help
	KindDecision   Kind = "decision"   // a decision taken
	KindMessage    Kind = "message"    // chat
	KindAck        Kind = "ack"        // acknowledges the entries in refs
	KindProposal   Kind = "proposal"   // a signed crisis-state command awaiting Raft
	KindCheckpoint Kind = "checkpoint" // a committed crisis state and its voters' votes (replication/consensus)
	KindKey        Kind = "key"        // distributes a group key (plain)
	KindRoster     Kind = "roster"     // a roster update signed by an admin (plain)
	KindIntel      Kind = "intel"      // an item of threat intelligence from MISP (payload: an Intel)
)

// Kinds lists every kind.
var Kinds = []Kind{KindIncident, KindSitrep, KindRequest, KindDecision, KindMessage, KindAck, KindProposal, KindCheckpoint, KindKey, KindRoster, KindIntel}

// plainKind reports whether entries of kind k travel in clear.
func plainKind(k Kind) bool { return k == KindKey || k == KindRoster }

// systemKind reports whether kind k is written by the system at control
// priority.
func systemKind(k Kind) bool {
	return k == KindKey || k == KindRoster || k == KindProposal || k == KindCheckpoint
}

// A TLP is a Traffic Light Protocol 2.0 label.
type TLP string

// TLP 2.0 labels.
const (
	TLPClear       TLP = "clear"
	TLPGreen       TLP = "green"
	TLPAmber       TLP = "amber"
	TLPAmberStrict TLP = "amber+strict"
	TLPRed         TLP = "red"
)

// Rank orders TLP labels from the widest (clear, 0) to the narrowest
// (red, 4); it is -1 for anything else.
func (t TLP) Rank() int {
	return slices.Index([]TLP{TLPClear, TLPGreen, TLPAmber, TLPAmberStrict, TLPRed}, t)
}

// Attachment refers to a file carried alongside an entry.
type Attachment struct {
	Name      string `cbor:"1,keyasint" json:"name"`
	MediaType string `cbor:"2,keyasint" json:"media_type"`
	Size      uint64 `cbor:"3,keyasint" json:"size"`
	SHA256    []byte `cbor:"4,keyasint" json:"sha256"`
}

// Body is the sealed content of an entry. Structured fields use the
// vocabularies CSIRTs already speak: RSIT for incident class and type, the
// EU large-scale-incident (NIS2) taxonomy for sectors, impact and outlook.
type Body struct {
	Kind        Kind         `cbor:"1,keyasint" json:"kind"`
	TLP         TLP          `cbor:"2,keyasint" json:"tlp"`
	Text        string       `cbor:"3,keyasint,omitempty" json:"text,omitempty"`
	RSITClass   string       `cbor:"4,keyasint,omitempty" json:"rsit_class,omitempty"`
	RSITType    string       `cbor:"5,keyasint,omitempty" json:"rsit_type,omitempty"`
	Sectors     []string     `cbor:"6,keyasint,omitempty" json:"sectors,omitempty"`
	Impact      string       `cbor:"7,keyasint,omitempty" json:"impact,omitempty"`
	Outlook     string       `cbor:"8,keyasint,omitempty" json:"outlook,omitempty"`
	Attachments []Attachment `cbor:"9,keyasint,omitempty" json:"attachments,omitempty"`
	// Payload is kind-specific: a signed crisis command (proposal), a
	// checkpoint, a crypto.KeyEnvelope (key), a crypto.Update (roster),
	// an Intel (intel; checked by Validate).
	Payload  []byte `cbor:"10,keyasint,omitempty" json:"payload,omitempty"`
	Exercise bool   `cbor:"11,keyasint,omitempty" json:"exercise,omitempty"`
}

// Encode returns the canonical encoding of b after validating it.
func (b *Body) Encode() ([]byte, error) { return encodeValid(b) }

// DecodeBody parses and validates a body.
func DecodeBody(raw []byte) (*Body, error) {
	return decodeValid[Body](raw, func(err error) error { return fmt.Errorf("log: body: %w", err) })
}

// encodeValid returns the canonical encoding of v after validating it.
func encodeValid(v interface{ Validate() error }) ([]byte, error) {
	if err := v.Validate(); err != nil {
		return nil, err
	}
	return crypto.MarshalCanonical(v)
}

// decodeValid parses raw canonically into a T and validates it; wrap
// says what a parse error was reading.
func decodeValid[T any, P interface {
	*T
	Validate() error
}](raw []byte, wrap func(error) error) (*T, error) {
	var v T
	if err := crypto.UnmarshalCanonical(raw, &v); err != nil {
		return nil, wrap(err)
	}
	if err := P(&v).Validate(); err != nil {
		return nil, err
	}
	return &v, nil
}

//go:embed taxonomies/*.json
var taxonomyFS embed.FS

// machinetag is the MISP taxonomy file format.
type machinetag struct {
	Predicates []struct {
		Value string `json:"value"`
	} `json:"predicates"`
	Values []struct {
		Predicate string `json:"predicate"`
		Entry     []struct {
			Value string `json:"value"`
		} `json:"entry"`
	} `json:"values"`
}

// Taxonomy holds the values crisismesh accepts, read from the embedded MISP
// taxonomies. It is immutable and safe for concurrent use.
type Taxonomy struct {
	TLP         []string
	RSIT        map[string][]string // class → types
	Sectors     []string            // nis2 impact-sectors-impacted
	Impact      []string            // nis2 impact-severity
	Outlook     []string            // nis2 impact-outlook
	RootCause   []string            // nis2 nature-root-cause
	NIS2        map[string][]string // every nis2 predicate → its values
	legacyTLP   map[string]string
	rsitClasses []string
}

// taxonomy is parsed once from embedded files that are part of the binary;
// a parse error is a build defect every test catches.
var taxonomy = mustTaxonomy()

// Taxonomies returns the embedded vocabularies.
func Taxonomies() *Taxonomy { return taxonomy }

func mustTaxonomy() *Taxonomy {
	read := func(name string) machinetag {
		b, err := taxonomyFS.ReadFile("taxonomies/" + name)
		if err != nil {
			panic(err)
		}
		var m machinetag
		if err := json.Unmarshal(b, &m); err != nil {
			panic(fmt.Sprintf("taxonomies/%s: %v", name, err))
		}
		return m
	}
	t := &Taxonomy{RSIT: map[string][]string{}, NIS2: map[string][]string{}, legacyTLP: map[string]string{}}
	// TLP 2.0 only: the tlp file also lists TLP 1.0's white and others.
	for _, p := range read("tlp.json").Predicates {
		switch p.Value {
		case string(TLPClear), string(TLPGreen), string(TLPAmber), string(TLPAmberStrict), string(TLPRed):
			t.TLP = append(t.TLP, p.Value)
		case "white":
			t.legacyTLP[p.Value] = "TLP:WHITE is TLP 1.0; TLP 2.0 calls it clear"
		default:
			t.legacyTLP[p.Value] = "not a TLP 2.0 label"
		}
	}
	rsit := read("rsit.json")
	for _, v := range rsit.Values {
		if v.Predicate == "test" {
			continue
		}
		for _, e := range v.Entry {
			t.RSIT[v.Predicate] = append(t.RSIT[v.Predicate], e.Value)
		}
		t.rsitClasses = append(t.rsitClasses, v.Predicate)
	}
	for _, v := range read("nis2.json").Values {
		var vals []string
		for _, e := range v.Entry {
			vals = append(vals, e.Value)
		}
		t.NIS2[v.Predicate] = vals
		switch v.Predicate {
		case "impact-sectors-impacted":
			t.Sectors = vals
		case "impact-severity":
			t.Impact = vals
		case "impact-outlook":
			t.Outlook = vals
		case "nature-root-cause":
			t.RootCause = vals
		}
	}
	if len(t.TLP) != 5 || len(t.RSIT) == 0 || len(t.Sectors) == 0 || len(t.Impact) == 0 || len(t.Outlook) == 0 {
		panic("log: embedded taxonomies are incomplete")
	}
	return t
}

func oneOf(what, v string, allowed []string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return fmt.Errorf("log: unknown %s %q (allowed: %s)", what, v, strings.Join(allowed, ", "))
}

// Validate checks the body's kind, TLP label and taxonomy values.
func (b *Body) Validate() error {
	if !slices.Contains(Kinds, b.Kind) {
		names := make([]string, len(Kinds))
		for i, k := range Kinds {
			names[i] = string(k)
		}
		return fmt.Errorf("log: unknown kind %q (kinds: %s)", b.Kind, strings.Join(names, ", "))
	}
	t := taxonomy
	if hint, ok := t.legacyTLP[string(b.TLP)]; ok {
		return fmt.Errorf("log: TLP label %q: %s (TLP 2.0 labels: %s)", b.TLP, hint, strings.Join(t.TLP, ", "))
	}
	if err := oneOf("TLP label", string(b.TLP), t.TLP); err != nil {
		return err
	}
	if b.RSITClass != "" || b.RSITType != "" {
		if err := oneOf("RSIT class", b.RSITClass, t.rsitClasses); err != nil {
			return err
		}
		if b.RSITType != "" {
			if err := oneOf("RSIT type of class "+b.RSITClass, b.RSITType, t.RSIT[b.RSITClass]); err != nil {
				return err
			}
		}
	}
	for _, s := range b.Sectors {
		if err := oneOf("NIS2 sector", s, t.Sectors); err != nil {
			return err
		}
	}
	if b.Impact != "" {
		if err := oneOf("NIS2 impact severity", b.Impact, t.Impact); err != nil {
			return err
		}
	}
	if b.Outlook != "" {
		if err := oneOf("NIS2 outlook", b.Outlook, t.Outlook); err != nil {
			return err
		}
	}
	if b.Kind == KindIntel {
		if _, err := DecodeIntel(b.Payload); err != nil {
			return err
		}
	}
	for _, a := range b.Attachments {
		if a.Name == "" || len(a.SHA256) != 32 {
			return fmt.Errorf("log: attachment %q needs a name and a 32-byte SHA-256", a.Name)
		}
	}
	return nil
}
