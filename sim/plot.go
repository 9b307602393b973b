package sim

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// ErrNoSamples is returned by WritePlots for a timeline without samples:
// there is nothing to draw, which usually means the run never started.
var ErrNoSamples = errors.New("sim: the timeline has no samples to plot")

// Figure sizes, in pixels of the PNG at plotDPI; the SVG has the same
// size (in points, 72 to the inch).
const (
	plotDPI  = 96
	entriesW = 1200
	entriesH = 600
	leaderW  = 1200
	leaderH  = 800
	linksW   = 1000
	linksH   = 800
)

// Readability limits.
const (
	// maxNamedNodes is the most nodes the entries plot draws in colour,
	// each named in the legend. Beyond it ten colours no longer tell the
	// lines apart and the legend outgrows the figure, so every node is
	// drawn as a thin translucent grey line (its gaps still show when it
	// was down, the grey mass shows the spread) and three coloured lines
	// summarise the nodes up at each sample: the minimum (the laggard,
	// what a reader looks for), the median and the maximum. The legend then
	// has four entries whatever the size of the network.
	maxNamedNodes = 10
	// maxLeaderTicks is the most nodes the leader plot lists on its axis,
	// one tick per node index. Beyond it the names would overlap, so the
	// axis lists only the nodes that led at some point (in index order).
	maxLeaderTicks = 16
	// maxLinkBars is the most bars of the links plot (the busiest links).
	maxLinkBars = 30
	// maxLabelRunes cuts long fault labels ("partition [[0 1 … 49]]") and
	// legend names so they cannot cover the figure.
	maxLabelRunes = 48
	maxNameRunes  = 24
	// maxSpanLabelRows is the most rows of fault labels above a plot; more
	// overlapping spans share the row that frees up first.
	maxSpanLabelRows = 4
)

// Lengths of the layout, in points.
const (
	figMargin    = vg.Length(8)
	legendGap    = vg.Length(12)
	panelGap     = vg.Length(10)
	spanLabelPad = vg.Length(4)
	labelInset   = vg.Length(2)
	labelGap     = vg.Length(6)
	minSpanWidth = vg.Length(1.5)
	yAxisGuess   = vg.Length(60) // room taken by a y axis, to place labels
)

// Colours. tab10 (the matplotlib default) tells ten lines apart.
var (
	nodePalette = []color.Color{
		color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255},
		color.RGBA{44, 160, 44, 255}, color.RGBA{214, 39, 40, 255},
		color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
		color.RGBA{227, 119, 194, 255}, color.RGBA{127, 127, 127, 255},
		color.RGBA{188, 189, 34, 255}, color.RGBA{23, 190, 207, 255},
	}
	faultFill  = color.NRGBA{R: 255, G: 170, B: 0, A: 56}
	faultText  = color.RGBA{R: 130, G: 70, B: 0, A: 255}
	faultEdge  = color.NRGBA{R: 200, G: 120, B: 0, A: 140}
	crowdLine  = color.NRGBA{R: 110, G: 110, B: 110, A: 90}
	maxColour  = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	medColour  = color.RGBA{A: 255}
	minColour  = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	noneColour = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	termColour = color.RGBA{R: 148, G: 103, B: 189, A: 255}
	barColour  = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	gridLine   = color.Gray{Y: 215}
)

// WritePlots draws the timeline into dir and returns the files written.
//
// It writes three figures, each as SVG and as PNG: entries.svg/.png
// (entries known per node over time), leader.svg/.png (Raft leader and
// term over time) and links.svg/.png (bytes carried per link), fault
// spans shaded on the first two. dir is created if missing; existing files
// of those names are replaced. A timeline without samples is refused with
// ErrNoSamples. On another error the files already written are returned
// with it. WritePlots only reads t: calls may run concurrently while
// nothing modifies it. The returned slice belongs to the caller.
func (t *Timeline) WritePlots(dir string) (written []string, err error) {
	if t == nil || len(t.Samples) == 0 {
		return nil, ErrNoSamples
	}
	// gonum/plot panics on some degenerate inputs; a report that cannot
	// be drawn must not take the simulation run down with it.
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("sim: drawing the plots: %w", e)
			} else {
				err = fmt.Errorf("sim: drawing the plots: %v", r)
			}
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sim: plot directory: %w", err)
	}
	d := newPlotData(t)
	figures := []struct {
		name string
		w, h int
		draw func(draw.Canvas)
	}{
		{"entries", entriesW, entriesH, d.entriesFigure()},
		{"leader", leaderW, leaderH, d.leaderFigure()},
		{"links", linksW, linksH, d.linksFigure()},
	}
	for _, f := range figures {
		for _, ext := range []string{"svg", "png"} {
			path := filepath.Join(dir, f.name+"."+ext)
			if err := renderFile(path, ext, f.w, f.h, f.draw); err != nil {
				return written, err
			}
			written = append(written, path)
		}
	}
	return written, nil
}

// renderFile draws one figure as SVG or PNG and writes it to path.
func renderFile(path, ext string, wPx, hPx int, drawFig func(draw.Canvas)) error {
	w := vg.Length(wPx) * vg.Inch / plotDPI
	h := vg.Length(hPx) * vg.Inch / plotDPI
	var buf bytes.Buffer
	switch ext {
	case "svg":
		c := vgsvg.New(w, h)
		drawFig(draw.New(c))
		if _, err := c.WriteTo(&buf); err != nil {
			return fmt.Errorf("sim: encoding %s: %w", path, err)
		}
	case "png":
		c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(plotDPI))
		drawFig(draw.New(c))
		// Half the time of WritePlots went to PNG's default compression;
		// the fastest level costs little size on flat-coloured figures.
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		if err := enc.Encode(&buf, c.Image()); err != nil {
			return fmt.Errorf("sim: encoding %s: %w", path, err)
		}
	default:
		return fmt.Errorf("sim: plot format %q unknown", ext)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("sim: writing plot: %w", err)
	}
	return nil
}

// plotData is the timeline in the units of the plots.
type plotData struct {
	t          *Timeline
	n          int       // nodes with a name or entries: indexes 0..n-1
	xs         []float64 // sample times, seconds since the start
	xMin, xMax float64
	spans      []faultSpan
}

// faultSpan is a Span in seconds, with the row of its label.
type faultSpan struct {
	from, to float64
	label    string
	row      int
}

// newPlotData converts t, which has samples.
func newPlotData(t *Timeline) *plotData {
	d := &plotData{t: t, n: len(t.Nodes)}
	d.xs = make([]float64, len(t.Samples))
	for i, s := range t.Samples {
		d.xs[i] = s.At.Seconds()
		d.n = max(d.n, len(s.Entries))
	}
	last := d.xs[len(d.xs)-1]
	d.xMin, d.xMax = min(0, slices.Min(d.xs)), slices.Max(d.xs)
	for _, f := range t.Faults {
		sp := faultSpan{from: f.From.Seconds(), to: f.To.Seconds(), label: shorten(f.Label, maxLabelRunes)}
		if f.To == 0 { // still in force: it lasts until the last sample
			sp.to = last
		}
		sp.to = max(sp.to, sp.from)
		d.xMin, d.xMax = min(d.xMin, sp.from), max(d.xMax, sp.to)
		d.spans = append(d.spans, sp)
	}
	if d.xMax <= d.xMin {
		d.xMax = d.xMin + 1
	}
	return d
}

// name is the display name of node i.
func (d *plotData) name(i int) string {
	if i >= 0 && i < len(d.t.Nodes) && d.t.Nodes[i] != "" {
		return shorten(d.t.Nodes[i], maxNameRunes)
	}
	return "#" + strconv.Itoa(i)
}

// entriesFigure draws entries known per node over time.
func (d *plotData) entriesFigure() func(draw.Canvas) {
	p := newPlot("Entries known per node over time", "time since start (seconds)", "entries known")
	leg := newLegend()
	var lines []plot.Plotter
	top := 0
	for _, s := range d.t.Samples {
		for _, e := range s.Entries {
			top = max(top, e)
		}
	}
	if d.n <= maxNamedNodes {
		for i := range d.n {
			l := &gapLine{xs: d.xs, ys: d.nodeEntries(i), style: draw.LineStyle{
				Color: nodePalette[i%len(nodePalette)], Width: vg.Points(1.5),
			}}
			lines = append(lines, l)
			leg.Add(d.name(i), l)
		}
	} else {
		// See maxNamedNodes for why many nodes are summarised.
		p.Title.Text += fmt.Sprintf(" (%d nodes)", d.n)
		crowd := draw.LineStyle{Color: crowdLine, Width: vg.Points(0.6)}
		for i := range d.n {
			lines = append(lines, &gapLine{xs: d.xs, ys: d.nodeEntries(i), style: crowd})
		}
		lo, med, hi := d.entrySummary()
		summary := []struct {
			name string
			ys   []float64
			c    color.Color
		}{
			{"max of nodes up", hi, maxColour},
			{"median of nodes up", med, medColour},
			{"min of nodes up", lo, minColour},
		}
		leg.Add(fmt.Sprintf("each node (%d)", d.n), &lineThumb{crowd})
		for _, s := range summary {
			l := &gapLine{xs: d.xs, ys: s.ys, style: draw.LineStyle{Color: s.c, Width: vg.Points(1.6)}}
			lines = append(lines, l)
			leg.Add(s.name, l)
		}
	}
	shade := d.shading()
	if len(d.spans) > 0 {
		leg.Add("fault in force", shade)
	}
	lw := legendWidth(leg)
	shade.placeLabels(d.xMin, d.xMax, vg.Length(entriesW)*vg.Inch/plotDPI-2*figMargin-lw-legendGap-yAxisGuess)

	p.Add(shade, horizontalGrid())
	p.Add(lines...)
	p.X.Min, p.X.Max = d.xMin, d.xMax
	p.Y.Min, p.Y.Max = 0, float64(max(top, 1))
	p.Y.Tick.Marker = niceTicks{integer: true}

	return func(c draw.Canvas) {
		c = draw.Crop(c, figMargin, -figMargin, figMargin, -figMargin)
		plotC := draw.Crop(c, 0, -(lw + legendGap), 0, 0)
		p.Draw(plotC)
		drawLegend(leg, c, lw, p.DataCanvas(plotC).Max.Y+shade.band())
	}
}

// nodeEntries is node i's entries per sample, NaN while it is down (or
// missing from the sample).
func (d *plotData) nodeEntries(i int) []float64 {
	ys := make([]float64, len(d.t.Samples))
	for k, s := range d.t.Samples {
		ys[k] = math.NaN()
		if i < len(s.Entries) && s.Entries[i] >= 0 {
			ys[k] = float64(s.Entries[i])
		}
	}
	return ys
}

// entrySummary is, per sample, the minimum, median and maximum entries of
// the nodes up (NaN when none is).
func (d *plotData) entrySummary() (lo, med, hi []float64) {
	lo = make([]float64, len(d.t.Samples))
	med = make([]float64, len(d.t.Samples))
	hi = make([]float64, len(d.t.Samples))
	var up []int
	for k, s := range d.t.Samples {
		up = up[:0]
		for _, e := range s.Entries {
			if e >= 0 {
				up = append(up, e)
			}
		}
		if len(up) == 0 {
			lo[k], med[k], hi[k] = math.NaN(), math.NaN(), math.NaN()
			continue
		}
		slices.Sort(up)
		m := len(up) / 2
		med[k] = float64(up[m])
		if len(up)%2 == 0 {
			med[k] = (float64(up[m-1]) + float64(up[m])) / 2
		}
		lo[k], hi[k] = float64(up[0]), float64(up[len(up)-1])
	}
	return lo, med, hi
}

// leaderFigure draws the Raft leader (top panel) and term (bottom panel)
// over time, on the same time axis.
func (d *plotData) leaderFigure() func(draw.Canvas) {
	top := newPlot("Raft leader and term over time", "", "leader")
	bottom := newPlot("", "time since start (seconds)", "Raft term")

	// y of each leader index: the index itself, or with many nodes (or a
	// leader index past them) its rank among the nodes that led (see
	// maxLeaderTicks).
	ticks := []plot.Tick{{Value: -1, Label: "none"}}
	ypos := make(map[int]float64)
	compress := d.n > maxLeaderTicks
	for _, s := range d.t.Samples {
		compress = compress || s.Leader >= d.n
	}
	if !compress {
		for i := range d.n {
			ypos[i] = float64(i)
			ticks = append(ticks, plot.Tick{Value: float64(i), Label: d.name(i)})
		}
	} else {
		var led []int
		for _, s := range d.t.Samples {
			if s.Leader >= 0 && !slices.Contains(led, s.Leader) {
				led = append(led, s.Leader)
			}
		}
		slices.Sort(led)
		for k, i := range led {
			ypos[i] = float64(k)
			ticks = append(ticks, plot.Tick{Value: float64(k), Label: d.name(i)})
		}
		top.Y.Label.Text = fmt.Sprintf("leader (those that led, of %d nodes)", d.n)
	}
	steps := &leaderSteps{
		xs:     d.xs,
		ys:     make([]float64, len(d.t.Samples)),
		leader: draw.LineStyle{Color: maxColour, Width: vg.Points(2)},
		none:   draw.LineStyle{Color: noneColour, Width: vg.Points(2.5)},
		join:   draw.LineStyle{Color: color.Gray{Y: 160}, Width: vg.Points(0.75)},
	}
	terms := make(plotter.XYs, len(d.t.Samples))
	minTerm, maxTerm := uint64(math.MaxUint64), uint64(0)
	for k, s := range d.t.Samples {
		steps.ys[k] = -1
		if y, ok := ypos[s.Leader]; ok {
			steps.ys[k] = y
		}
		terms[k] = plotter.XY{X: d.xs[k], Y: float64(s.Term)}
		minTerm, maxTerm = min(minTerm, s.Term), max(maxTerm, s.Term)
	}
	termLine := &plotter.Line{
		XYs:       terms,
		StepStyle: plotter.PostStep,
		LineStyle: draw.LineStyle{Color: termColour, Width: vg.Points(1.5)},
	}

	leg := newLegend()
	leg.Add("leader", &lineThumb{steps.leader})
	leg.Add("no leader known", &lineThumb{steps.none})
	leg.Add("Raft term", termLine)
	shade := d.shading()
	if len(d.spans) > 0 {
		leg.Add("fault in force", shade)
	}
	lw := legendWidth(leg)
	shade.placeLabels(d.xMin, d.xMax, vg.Length(leaderW)*vg.Inch/plotDPI-2*figMargin-lw-legendGap-yAxisGuess)
	termShade := *shade
	termShade.rows = 0 // the labels are above the top panel only

	top.Add(shade, horizontalGrid(), steps)
	top.Y.Tick.Marker = plot.ConstantTicks(ticks)
	top.X.Min, top.X.Max = d.xMin, d.xMax
	top.Y.Min, top.Y.Max = -1.5, float64(len(ypos))-0.5
	if len(ypos) == 0 {
		top.Y.Max = 0.5
	}

	bottom.Add(&termShade, horizontalGrid(), termLine)
	bottom.Y.Tick.Marker = niceTicks{integer: true}
	bottom.X.Min, bottom.X.Max = d.xMin, d.xMax
	bottom.Y.Min, bottom.Y.Max = float64(minTerm)-0.5, float64(maxTerm)+0.5

	return func(c draw.Canvas) {
		c = draw.Crop(c, figMargin, -figMargin, figMargin, -figMargin)
		left := draw.Crop(c, 0, -(lw + legendGap), 0, 0)
		h := left.Max.Y - left.Min.Y
		topC := draw.Crop(left, 0, 0, h*0.4, 0)
		bottomC := draw.Crop(left, 0, 0, 0, -(h*0.6 + panelGap))
		topC, bottomC = alignX(top, bottom, topC, bottomC)
		top.Draw(topC)
		bottom.Draw(bottomC)
		drawLegend(leg, c, lw, top.DataCanvas(topC).Max.Y+shade.band())
	}
}

// alignX crops two stacked panels so that their data areas start and end
// at the same x: they share the time axis.
func alignX(a, b *plot.Plot, ca, cb draw.Canvas) (draw.Canvas, draw.Canvas) {
	da, db := a.DataCanvas(ca), b.DataCanvas(cb)
	la, lb := da.Min.X-ca.Min.X, db.Min.X-cb.Min.X
	ra, rb := ca.Max.X-da.Max.X, cb.Max.X-db.Max.X
	l, r := max(la, lb), max(ra, rb)
	return draw.Crop(ca, l-la, ra-r, 0, 0), draw.Crop(cb, l-lb, rb-r, 0, 0)
}

// linksFigure draws bytes per link, the busiest first.
func (d *plotData) linksFigure() func(draw.Canvas) {
	links := slices.Clone(d.t.Links)
	slices.SortStableFunc(links, func(x, y LinkUse) int {
		return cmp.Or(cmp.Compare(y.Bytes, x.Bytes), cmp.Compare(x.A, y.A), cmp.Compare(x.B, y.B))
	})
	total := len(links)
	title := "Bytes carried per link"
	if total == 0 {
		p := newPlot(title, "", "")
		p.HideAxes()
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
		msg := textStyle(14)
		msg.XAlign, msg.YAlign = draw.XCenter, draw.YCenter
		p.Add(&plotter.Labels{
			XYs:       plotter.XYs{{X: 0.5, Y: 0.5}},
			Labels:    []string{"No link traffic was recorded."},
			TextStyle: []text.Style{msg},
		})
		return marginDraw(p)
	}
	switch {
	case total > maxLinkBars:
		links = links[:maxLinkBars]
		title += fmt.Sprintf(" (top %d of %d links)", maxLinkBars, total)
	case total == 1:
		title += " (1 link)"
	default:
		title += fmt.Sprintf(" (%d links)", total)
	}
	var most uint64
	for _, l := range links {
		most = max(most, l.Bytes)
	}
	scale, unit := byteUnit(most)
	p := newPlot(title, "bytes carried, both directions ("+unit+")", "")

	// The busiest link gets the highest category: it is drawn on top.
	values := make(plotter.Values, len(links))
	names := make([]string, len(links))
	valueLabels := &plotter.Labels{
		XYs:       make(plotter.XYs, len(links)),
		Labels:    make([]string, len(links)),
		TextStyle: make([]text.Style, len(links)),
		Offset:    vg.Point{X: 4},
	}
	for i, l := range links {
		k := len(links) - 1 - i
		values[k] = float64(l.Bytes) / scale
		names[k] = d.name(l.A) + "–" + d.name(l.B)
		valueLabels.XYs[k] = plotter.XY{X: values[k], Y: float64(k)}
		valueLabels.Labels[k] = humanBytes(l.Bytes)
		valueLabels.TextStyle[k] = textStyle(9)
		valueLabels.TextStyle[k].YAlign = draw.YCenter
	}
	barWidth := min(vg.Points(20), vg.Length(linksH)*vg.Inch/plotDPI*0.6/vg.Length(len(links)))
	bars := &plotter.BarChart{
		Values:     values,
		Width:      barWidth,
		Color:      barColour,
		Horizontal: true,
	}
	p.Add(verticalGrid(), bars, valueLabels)
	p.NominalY(names...)
	p.X.Min = 0
	p.X.Max = max(p.X.Max, 1/scale) // zero bytes everywhere: still an axis
	return marginDraw(p)
}

// byteUnit is the unit that keeps most in three or four digits.
func byteUnit(most uint64) (scale float64, unit string) {
	switch {
	case most >= 1<<30:
		return 1 << 30, "GiB"
	case most >= 1<<20:
		return 1 << 20, "MiB"
	case most >= 1<<10:
		return 1 << 10, "KiB"
	}
	return 1, "bytes"
}

// humanBytes writes b with a binary unit ("1.5 MiB").
func humanBytes(b uint64) string {
	scale, unit := byteUnit(b)
	if scale == 1 {
		return strconv.FormatUint(b, 10) + " B"
	}
	return strconv.FormatFloat(float64(b)/scale, 'f', 1, 64) + " " + unit
}

// marginDraw draws p with the figure margin.
func marginDraw(p *plot.Plot) func(draw.Canvas) {
	return func(c draw.Canvas) {
		p.Draw(draw.Crop(c, figMargin, -figMargin, figMargin, -figMargin))
	}
}

// shading is the fault spans of d, to be placed under a plot's lines.
func (d *plotData) shading() *faultShade {
	sty := textStyle(9)
	sty.Color = faultText
	sty.YAlign = draw.YTop
	return &faultShade{
		spans: slices.Clone(d.spans),
		fill:  faultFill,
		edge:  draw.LineStyle{Color: faultEdge, Width: vg.Points(0.6)},
		label: sty,
	}
}

// faultShade shades each fault span across the full height of the data
// area and writes its label in a band above it, so labels never cover the
// data. It implements plot.Plotter, plot.GlyphBoxer (to reserve the band)
// and plot.Thumbnailer.
type faultShade struct {
	spans []faultSpan
	rows  int // rows of labels in the band; 0: no labels
	fill  color.Color
	edge  draw.LineStyle // the start of each span
	label text.Style
}

// lineHeight is the height of a row of labels.
func (s *faultShade) lineHeight() vg.Length {
	return s.label.FontExtents().Height * 1.1
}

// band is the height reserved above the data area for the labels.
func (s *faultShade) band() vg.Length {
	if s.rows == 0 {
		return 0
	}
	return vg.Length(s.rows)*s.lineHeight() + spanLabelPad
}

// labelX is where a label of width w for a span starting at x goes:
// just inside the span, kept within [lo, hi].
func labelX(x, w, lo, hi vg.Length) vg.Length {
	return max(lo, min(x+labelInset, hi-w))
}

// placeLabels gives each span's label a row so that labels in a row do
// not overlap, for a data area about width wide spanning [xMin, xMax].
func (s *faultShade) placeLabels(xMin, xMax float64, width vg.Length) {
	order := make([]int, len(s.spans))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(s.spans[a].from, s.spans[b].from) })
	var ends []vg.Length // per row, where its last label ends
	for _, i := range order {
		sp := &s.spans[i]
		w := s.label.Width(sp.label)
		x := labelX(vg.Length((sp.from-xMin)/(xMax-xMin))*width, w, 0, width)
		sp.row = -1
		for r, e := range ends {
			if e+labelGap <= x {
				sp.row = r
				break
			}
		}
		if sp.row < 0 {
			if len(ends) < maxSpanLabelRows {
				ends = append(ends, 0)
				sp.row = len(ends) - 1
			} else {
				sp.row = slices.Index(ends, slices.Min(ends))
			}
		}
		ends[sp.row] = x + w
	}
	s.rows = len(ends)
}

// Plot implements plot.Plotter.
func (s *faultShade) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	top := c.Max.Y + s.band()
	for _, sp := range s.spans {
		x0 := min(max(trX(sp.from), c.Min.X), c.Max.X)
		x1 := min(max(trX(sp.to), c.Min.X), c.Max.X)
		if x1-x0 < minSpanWidth { // an instant still shows
			x1 = min(x0+minSpanWidth, c.Max.X)
			x0 = x1 - minSpanWidth
		}
		c.FillPolygon(s.fill, []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: top}, {X: x0, Y: top}})
		// Where overlapping spans merge into one shade, the edge still
		// shows when each began.
		c.StrokeLine2(s.edge, x0, c.Min.Y, x0, top)
	}
	if s.rows == 0 {
		return
	}
	lh := s.lineHeight()
	for _, sp := range s.spans {
		x := labelX(trX(sp.from), s.label.Width(sp.label), c.Min.X, c.Max.X)
		y := top - spanLabelPad/2 - vg.Length(sp.row)*lh
		c.FillText(s.label, vg.Point{X: x, Y: y}, sp.label)
	}
}

// GlyphBoxes implements plot.GlyphBoxer: a box at the top of the data
// area as tall as the label band makes the plot leave room for it.
func (s *faultShade) GlyphBoxes(*plot.Plot) []plot.GlyphBox {
	if s.rows == 0 {
		return nil
	}
	return []plot.GlyphBox{{X: 0, Y: 1, Rectangle: vg.Rectangle{Max: vg.Point{Y: s.band()}}}}
}

// Thumbnail implements plot.Thumbnailer.
func (s *faultShade) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(s.fill, []vg.Point{c.Min, {X: c.Max.X, Y: c.Min.Y}, c.Max, {X: c.Min.X, Y: c.Max.Y}})
}

// gapLine draws ys over xs as a line broken where y is NaN: a node that
// is down has nothing to report, which a drop to zero would misstate.
type gapLine struct {
	xs, ys []float64
	style  draw.LineStyle
}

// Plot implements plot.Plotter.
func (l *gapLine) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	run := make([]vg.Point, 0, len(l.xs))
	flush := func() {
		switch len(run) {
		case 0:
		case 1: // a lone sample between gaps: a dot, or it would not show
			c.DrawGlyph(draw.GlyphStyle{
				Color: l.style.Color, Radius: max(l.style.Width, vg.Points(1.2)), Shape: draw.CircleGlyph{},
			}, run[0])
		default:
			c.StrokeLines(l.style, c.ClipLinesXY(run)...)
		}
		run = run[:0]
	}
	for i, y := range l.ys {
		if math.IsNaN(y) {
			flush()
			continue
		}
		run = append(run, vg.Point{X: trX(l.xs[i]), Y: trY(y)})
	}
	flush()
}

// Thumbnail implements plot.Thumbnailer.
func (l *gapLine) Thumbnail(c *draw.Canvas) {
	(&lineThumb{l.style}).Thumbnail(c)
}

// lineThumb is a legend entry for a line style.
type lineThumb struct{ style draw.LineStyle }

// Thumbnail implements plot.Thumbnailer.
func (t *lineThumb) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(t.style, c.Min.X, y, c.Max.X, y)
}

// leaderSteps draws the leader as a step line: a horizontal segment at
// each leader's y while it leads, thin joins between leaders, and the
// spells without a leader (y = -1) in their own colour.
type leaderSteps struct {
	xs, ys             []float64 // ys: -1 for no leader
	leader, none, join draw.LineStyle
}

// Plot implements plot.Plotter.
func (s *leaderSteps) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	n := len(s.xs)
	for start := 0; start < n; {
		end := start + 1 // the run of samples with the same leader
		for end < n && s.ys[end] == s.ys[start] {
			end++
		}
		sty := s.leader
		if s.ys[start] < 0 {
			sty = s.none
		}
		x0, y := trX(s.xs[start]), trY(s.ys[start])
		x1 := trX(s.xs[min(end, n-1)])
		if x1 > x0 {
			c.StrokeLines(sty, c.ClipLinesXY([]vg.Point{{X: x0, Y: y}, {X: x1, Y: y}})...)
		} else { // the last sample alone: a dot
			c.DrawGlyph(draw.GlyphStyle{Color: sty.Color, Radius: sty.Width, Shape: draw.CircleGlyph{}}, vg.Point{X: x0, Y: y})
		}
		if end < n {
			c.StrokeLines(s.join, c.ClipLinesXY([]vg.Point{{X: x1, Y: y}, {X: x1, Y: trY(s.ys[end])}})...)
		}
		start = end
	}
}

// niceTicks marks about eight round values (1, 2 or 5 times a power of
// ten apart) labelled without useless decimals; gonum's default gives as
// few as two labels ("0.00", "25.00") on a short run. integer keeps the
// step whole: there is no term 2.5, no half entry.
type niceTicks struct{ integer bool }

// Ticks implements plot.Ticker.
func (n niceTicks) Ticks(lo, hi float64) []plot.Tick {
	const want = 8
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return nil
	}
	raw := (hi - lo) / want
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	if n.integer {
		step = max(step, 1)
	}
	decimals := max(0, -int(math.Floor(math.Log10(step))))
	const slack = 1e-9 // 0.3/0.1 is 2.9999999999999996
	var ts []plot.Tick
	for i := math.Ceil(lo/step - slack); i*step <= hi+step*slack; i++ {
		v := i * step
		if v == 0 {
			v = 0 // not -0
		}
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
	}
	return ts
}

// sans is the font of every text of the figures.
func sans(size vg.Length) font.Font {
	return font.Font{Typeface: plot.DefaultFont.Typeface, Variant: "Sans", Size: size}
}

// textStyle is plain left-aligned text in sans at size points.
func textStyle(size vg.Length) text.Style {
	return text.Style{Color: color.Black, Font: sans(size), Handler: plot.DefaultTextHandler}
}

// newPlot is a plot in the house look: sans text, titled and labelled.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = sans(14)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(11)
		a.Tick.Label.Font = sans(9)
		a.Tick.Marker = niceTicks{}
	}
	return p
}

// newLegend is a legend in the house look, to be drawn beside its plot.
func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = sans(10)
	l.Top, l.Left = true, true
	l.Padding = vg.Points(3)
	return l
}

// legendWidth is the width the legend takes once drawn.
func legendWidth(l plot.Legend) vg.Length {
	// Rectangle needs a canvas only for its position.
	r := l.Rectangle(draw.Canvas{})
	return r.Max.X - r.Min.X
}

// drawLegend draws l in a column of width w at the right of c, its top
// at y.
func drawLegend(l plot.Legend, c draw.Canvas, w, y vg.Length) {
	col := draw.Crop(c, c.Max.X-c.Min.X-w, 0, 0, 0)
	col.Max.Y = min(y, col.Max.Y)
	l.Draw(col)
}

// horizontalGrid is light grid lines at the y ticks.
func horizontalGrid() *plotter.Grid {
	g := plotter.NewGrid()
	g.Vertical.Color = nil
	g.Horizontal = draw.LineStyle{Color: gridLine, Width: vg.Points(0.5)}
	return g
}

// verticalGrid is light grid lines at the x ticks.
func verticalGrid() *plotter.Grid {
	g := plotter.NewGrid()
	g.Horizontal.Color = nil
	g.Vertical = draw.LineStyle{Color: gridLine, Width: vg.Points(0.5)}
	return g
}

// shorten cuts s to at most n runes, marking the cut with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
