package sim

import (
	"encoding/xml"
	"errors"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// plotTimeline is a synthetic timeline of n nodes over samples samples
// (250 ms apart): node i gains an entry every i+1 samples, node 1 (if
// any) is down for the second fifth of the run, the leader is node 0 then
// nobody then node n-1 (term 1, then 2), and every pair of the first
// links nodes carried traffic.
func plotTimeline(n, samples, links int) *Timeline {
	t := &Timeline{}
	for i := range n {
		t.Nodes = append(t.Nodes, fmt.Sprintf("node%d", i))
	}
	for k := range samples {
		s := Sample{At: time.Duration(k) * 250 * time.Millisecond, Leader: 0, Term: 1}
		for i := range n {
			e := k / (i + 1)
			if i == 1 && k >= samples/5 && k < 2*samples/5 {
				e = -1 // crashed
			}
			s.Entries = append(s.Entries, e)
		}
		switch {
		case k >= samples/2 && k < samples/2+3:
			s.Leader = -1
		case k >= samples/2+3:
			s.Leader, s.Term = n-1, 2
		}
		t.Samples = append(t.Samples, s)
	}
	end := t.Samples[len(t.Samples)-1].At
	t.Faults = []Span{
		{From: end / 5, To: 2 * end / 5, Label: "node1 crashed"},
		{From: end / 2, Label: "partition [[0 1] [2 3 4]]"}, // still in force
	}
	for a := range links {
		for b := a + 1; b < links; b++ {
			t.Links = append(t.Links, LinkUse{A: a, B: b, Bytes: uint64(1000 * (a + 1) * (b + 1))})
		}
	}
	return t
}

func TestWritePlots(t *testing.T) {
	tests := []struct {
		name string
		tl   *Timeline
		// want are texts each SVG must show.
		want map[string][]string
	}{
		{
			name: "five nodes, a crash and two faults",
			tl:   plotTimeline(5, 120, 5),
			want: map[string][]string{
				"entries": {"Entries known per node over time", "node0", "node1", "node4", "node1 crashed", "partition [[0 1] [2 3 4]]", "fault in force"},
				"leader":  {"Raft leader and term over time", "none", "node0", "node3", "node4", "Raft term", "node1 crashed"},
				"links":   {"Bytes carried per link (10 links)", "node3–node4", "node0–node1"},
			},
		},
		{
			name: "fifty nodes",
			tl:   plotTimeline(50, 600, 50),
			want: map[string][]string{
				"entries": {"Entries known per node over time (50 nodes)", "each node (50)", "min of nodes up", "median of nodes up", "max of nodes up", "node1 crashed"},
				"leader":  {"none", "node0", "node49", "of 50 nodes"},
				"links":   {"top 30 of 1225 links", "node48–node49"},
			},
		},
		{
			name: "no links",
			tl:   plotTimeline(3, 40, 0),
			want: map[string][]string{
				"entries": {"node0", "node2"},
				"links":   {"Bytes carried per link", "No link traffic was recorded."},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			got, err := tt.tl.WritePlots(dir)
			if err != nil {
				t.Fatalf("WritePlots: %v", err)
			}
			var want []string
			for _, f := range []string{"entries", "leader", "links"} {
				want = append(want, filepath.Join(dir, f+".svg"), filepath.Join(dir, f+".png"))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("files written (-want +got):\n%s", diff)
			}
			sizes := map[string][2]int{
				"entries": {entriesW, entriesH},
				"leader":  {leaderW, leaderH},
				"links":   {linksW, linksH},
			}
			for fig, size := range sizes {
				texts := svgTexts(t, filepath.Join(dir, fig+".svg"))
				for _, w := range tt.want[fig] {
					if !strings.Contains(texts, w) {
						t.Errorf("%s.svg does not show %q; it shows:\n%s", fig, w, texts)
					}
				}
				checkPNG(t, filepath.Join(dir, fig+".png"), size[0], size[1])
			}
		})
	}
}

// svgTexts parses an SVG file as XML and returns the content of its text
// elements, one a line.
func svgTexts(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	var (
		b      strings.Builder
		inText bool
		root   string
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", path, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
			inText = tok.Name.Local == "text"
		case xml.EndElement:
			if inText {
				b.WriteString("\n")
			}
			inText = false
		case xml.CharData:
			if inText {
				b.Write(tok)
			}
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root element %q, want svg", path, root)
	}
	return b.String()
}

// checkPNG decodes a PNG file and checks its size in pixels.
func checkPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if got := img.Bounds().Size(); got.X != w || got.Y != h {
		t.Errorf("%s is %dx%d pixels, want %dx%d", path, got.X, got.Y, w, h)
	}
}

func TestWritePlotsRefusesAnEmptyTimeline(t *testing.T) {
	for _, tl := range []*Timeline{nil, {}, {Nodes: []string{"node0"}, Links: []LinkUse{{A: 0, B: 0, Bytes: 1}}}} {
		dir := t.TempDir()
		got, err := tl.WritePlots(dir)
		if !errors.Is(err, ErrNoSamples) {
			t.Errorf("WritePlots(%+v): error %v, want ErrNoSamples", tl, err)
		}
		if got != nil {
			t.Errorf("WritePlots(%+v) wrote %v, want nothing", tl, got)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("WritePlots(%+v) left %d files in %s", tl, len(ents), dir)
		}
	}
}

// TestWritePlotsOddTimelines draws timelines a buggy recorder could
// produce: they must not panic, and are drawn.
func TestWritePlotsOddTimelines(t *testing.T) {
	tests := []struct {
		name string
		tl   *Timeline
	}{
		{"one sample", &Timeline{Nodes: []string{"a"}, Samples: []Sample{{Entries: []int{0}, Leader: -1}}}},
		{"every node down", &Timeline{Nodes: []string{"a", "b"}, Samples: []Sample{
			{At: 0, Entries: []int{-1, -1}, Leader: -1}, {At: time.Second, Entries: []int{-1, -1}, Leader: -1},
		}}},
		{"indexes past the names", &Timeline{
			Nodes:   []string{"a"},
			Samples: []Sample{{Entries: []int{1, 2, 3}, Leader: 5}, {At: time.Second, Entries: []int{2}, Leader: 2, Term: 9}},
			Faults:  []Span{{From: 3 * time.Second, To: time.Second, Label: "backwards"}, {Label: strings.Repeat("x", 200)}},
			Links:   []LinkUse{{A: 0, B: 7, Bytes: 0}, {A: 2, B: 3, Bytes: 5 << 30}},
		}},
		{"no nodes", &Timeline{Samples: []Sample{{Leader: -1}, {At: time.Minute, Leader: -1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.tl.WritePlots(t.TempDir())
			if err != nil {
				t.Fatalf("WritePlots: %v", err)
			}
			if len(got) != 6 {
				t.Errorf("WritePlots wrote %d files, want 6: %v", len(got), got)
			}
		})
	}
}

func TestPlotFaultLabelRows(t *testing.T) {
	s := &faultShade{label: textStyle(9), spans: []faultSpan{
		{from: 0, to: 10, label: "first fault, a long label"},
		{from: 1, to: 2, label: "overlaps the first"},
		{from: 50, to: 60, label: "far away"},
		{from: 2, to: 3, label: "a third on top"},
	}}
	s.placeLabels(0, 100, 800)
	var rows []int
	for _, sp := range s.spans {
		rows = append(rows, sp.row)
	}
	if diff := cmp.Diff([]int{0, 1, 0, 2}, rows); diff != "" {
		t.Errorf("label rows (-want +got):\n%s", diff)
	}
	if s.rows != 3 {
		t.Errorf("rows = %d, want 3", s.rows)
	}
}

func BenchmarkWritePlots(b *testing.B) {
	tl := plotTimeline(50, 600, 50)
	dir := b.TempDir()
	for b.Loop() {
		if _, err := tl.WritePlots(dir); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPlotNiceTicks(t *testing.T) {
	tests := []struct {
		lo, hi  float64
		integer bool
		want    []string
	}{
		{0, 29.75, false, []string{"0", "5", "10", "15", "20", "25"}},
		{0, 1.5, false, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0", "1.2", "1.4"}},
		{0.5, 2.5, true, []string{"1", "2"}},
		{-0.3, 0.3, false, []string{"-0.3", "-0.2", "-0.1", "0.0", "0.1", "0.2", "0.3"}},
		{0, 600, true, []string{"0", "100", "200", "300", "400", "500", "600"}},
		{1, 1, false, nil},
	}
	for _, tt := range tests {
		var got []string
		for _, tk := range (niceTicks{integer: tt.integer}).Ticks(tt.lo, tt.hi) {
			got = append(got, tk.Label)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ticks of [%v, %v] (-want +got):\n%s", tt.lo, tt.hi, diff)
		}
	}
}

func TestWritePlotsReportsAnUnusableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := plotTimeline(2, 10, 2).WritePlots(filepath.Join(file, "plots"))
	if err == nil || got != nil {
		t.Fatalf("WritePlots into a path under a file: %v, %v; want an error and no files", got, err)
	}
	if !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("error %v does not wrap the file system's", err)
	}
}
