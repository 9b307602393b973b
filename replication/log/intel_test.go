package log

import (
	"bytes"
	"errors"
	"testing"
)

func validIntel() Intel {
	return Intel{Format: IntelMISP, Type: "attribute", ID: "575c8598-f1f0-4c16-a94a-0612c0a83866",
		Parent: "5758ebf5-c898-48e6-9fe9-5665c0a83866", Version: 1465681304,
		Data: []byte(`{"type":"url","value":"http://fake.website.com/malware/is/here"}`)}
}

func TestIntelRoundTripAndRefusals(t *testing.T) {
	in := validIntel()
	raw, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeIntel(raw)
	if err != nil || got.ID != in.ID || !bytes.Equal(got.Data, in.Data) {
		t.Fatalf("DecodeIntel(Encode()) = %+v, %v; want %+v", got, err, in)
	}
	// An intel body needs an intel payload.
	if err := (&Body{Kind: KindIntel, TLP: TLPGreen, Payload: raw}).Validate(); err != nil {
		t.Fatalf("intel body: %v", err)
	}
	if err := (&Body{Kind: KindIntel, TLP: TLPGreen}).Validate(); !errors.Is(err, ErrIntel) {
		t.Fatalf("intel body without payload: got %v, want ErrIntel", err)
	}
	for name, mut := range map[string]func(*Intel){
		"format":   func(i *Intel) { i.Format = "stix-1" },
		"no type":  func(i *Intel) { i.Type = "" },
		"no id":    func(i *Intel) { i.ID = "" },
		"long id":  func(i *Intel) { i.ID = string(make([]byte, MaxIntelID+1)) },
		"version":  func(i *Intel) { i.Version = -1 },
		"not json": func(i *Intel) { i.Data = []byte(`{"a":`) },
		"array":    func(i *Intel) { i.Data = []byte(`[1]`) },
	} {
		i := validIntel()
		mut(&i)
		if _, err := i.Encode(); !errors.Is(err, ErrIntel) {
			t.Errorf("%s: Encode = %v; want ErrIntel", name, err)
		}
	}
}

// FuzzDecodeIntel: what DecodeIntel accepts encodes back to the same bytes.
//
//	go test ./replication/log/ -run '^$' -fuzz '^FuzzDecodeIntel$' -fuzztime 60s -parallel 2
func FuzzDecodeIntel(f *testing.F) {
	in := validIntel()
	raw, err := in.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	addMutants(f, raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeIntel(b)
		if err != nil {
			if !errors.Is(err, ErrIntel) {
				t.Fatalf("DecodeIntel error %v is not ErrIntel", err)
			}
			return
		}
		out, err := got.Encode()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("Encode of an accepted payload: %v (bytes equal: %v)", err, bytes.Equal(out, b))
		}
	})
}
