package experiment

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Figure files each report's WritePNG writes into its directory.
const (
	AvardoCapacityPNG = "avardo-capacity.png"
	AvardoServersPNG  = "avardo-servers.png"
	AvardoGapPNG      = "avardo-gap.png"
	RavoCostPNG       = "ravo-cost.png"
	RavoRuntimePNG    = "ravo-runtime.png"
	CocosDelayPNG     = "cocos-delay.png"    // a sweep over delay bounds
	CocosChannelsPNG  = "cocos-channels.png" // a sweep over channel counts only
)

// WritePNG writes three figures into dir (created if missing): capacity per
// stack depth, active servers against request rate (the paper's figure), and
// the gap to the fluid bound per depth.
func (r *AvardoReport) WritePNG(dir string) error {
	if err := makePlotDir(dir); err != nil {
		return err
	}
	var lines []any
	bound := plotter.XYs{}
	for _, l := range r.Schemes[0].Levels {
		bound = append(bound, plotter.XY{X: float64(l.Servers), Y: l.UpperBound})
	}
	lines = append(lines, "fluid upper bound", bound)
	for _, s := range r.Schemes {
		xy := plotter.XYs{}
		for _, l := range s.Levels {
			xy = append(xy, plotter.XY{X: float64(l.Servers), Y: l.Capacity})
		}
		lines = append(lines, s.Scheme, xy)
	}
	capacity := figure{title: "AVARDO: user capacity per auto-scaling level", x: "active servers", y: "capacity (requests/s)", legendLeft: true}
	if err := capacity.save(dir, AvardoCapacityPNG, lines...); err != nil {
		return err
	}

	// The rate axis runs to the fluid bound at full depth in 200 steps.
	top := r.Schemes[0].Levels[len(r.Schemes[0].Levels)-1].UpperBound
	lines = lines[:0]
	opt := plotter.XYs{}
	for rate := 0.0; rate <= top; rate += top / 200 {
		opt = append(opt, plotter.XY{X: rate, Y: math.Max(float64(r.MinServers), math.Ceil(rate/r.PerServer))})
	}
	lines = append(lines, "super optimum", opt)
	for _, s := range r.Schemes {
		xy := plotter.XYs{}
		for rate := 0.0; rate <= top; rate += top / 200 {
			if n := serversNeeded(s.Levels, rate); !math.IsNaN(n) {
				xy = append(xy, plotter.XY{X: rate, Y: n})
			}
		}
		lines = append(lines, s.Scheme, xy)
	}
	servers := figure{title: "AVARDO: active servers against request rate", x: "request rate λ (requests/s)", y: "active servers", legendLeft: true, noPoints: true}
	if err := servers.save(dir, AvardoServersPNG, lines...); err != nil {
		return err
	}

	lines = lines[:0]
	for _, s := range r.Schemes {
		xy := plotter.XYs{}
		for _, l := range s.Levels {
			xy = append(xy, plotter.XY{X: float64(l.Servers), Y: 100 * l.Gap})
		}
		lines = append(lines, s.Scheme, xy)
	}
	gap := figure{title: "Optimality gap to the fluid bound", x: "active servers", y: "gap (%)"}
	return gap.save(dir, AvardoGapPNG, lines...)
}

// WritePNG writes RAVO's cost and runtime against the number of clusters
// into dir (created if missing), with the LP bound and the other schemes as
// flat lines. A report without RAVO rows has nothing to draw and writes
// nothing.
func (r *RavoReport) WritePNG(dir string) error {
	if err := makePlotDir(dir); err != nil {
		return err
	}
	cost, secs := plotter.XYs{}, plotter.XYs{}
	for _, row := range r.Schemes {
		if row.Scheme == "ravo" {
			cost = append(cost, plotter.XY{X: float64(row.Clusters), Y: row.Cost.Total})
			secs = append(secs, plotter.XY{X: float64(row.Clusters), Y: row.RuntimeSeconds})
		}
	}
	if len(cost) == 0 {
		return nil
	}
	flat := func(y float64) plotter.XYs {
		return plotter.XYs{{X: cost[0].X, Y: y}, {X: cost[len(cost)-1].X, Y: y}}
	}
	lines := []any{"RAVO", cost, "LP lower bound", flat(r.LPBound)}
	for _, row := range r.Schemes {
		if row.Scheme != "ravo" {
			lines = append(lines, row.Scheme, flat(row.Cost.Total))
		}
	}
	costFig := figure{title: "RAVO: deployment cost against number of video clusters", x: "clusters", y: "cost per period", logX: true}
	if err := costFig.save(dir, RavoCostPNG, lines...); err != nil {
		return err
	}
	runtimeFig := figure{title: "RAVO: runtime against number of video clusters", x: "clusters", y: "runtime (s)", logX: true}
	return runtimeFig.save(dir, RavoRuntimePNG, "RAVO", secs)
}

// WritePNG writes cost against the swept axis into dir (created if
// missing): against delay bound if RunCocos swept delays, else against
// channels if it swept channels. A single point has no curve and writes
// nothing.
func (r *CocosReport) WritePNG(dir string) error {
	if !r.sweptDelays && !r.sweptChannels {
		return nil
	}
	if err := makePlotDir(dir); err != nil {
		return err
	}
	series := map[string]plotter.XYs{}
	lpXY := plotter.XYs{}
	for _, row := range r.Runs {
		x := row.DelayBound
		if !r.sweptDelays {
			x = float64(row.Channels)
		}
		series[row.Scheme] = append(series[row.Scheme], plotter.XY{X: x, Y: row.Cost})
		if row.Scheme == "cocos" {
			lpXY = append(lpXY, plotter.XY{X: x, Y: row.LPBound})
		}
	}
	fig, name := figure{title: "COCOS: deployment cost", x: "delay upper bound (ms)", y: "cost per second"}, CocosDelayPNG
	if !r.sweptDelays {
		fig.x, name = "channels", CocosChannelsPNG
	}
	return fig.save(dir, name, "COCOS", series["cocos"], "Nearest Peer", series["nearest-peer"], "Prim", series["prim"], "LP (super optimum)", lpXY)
}

func makePlotDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("plan: create plot directory: %w", err)
	}
	return nil
}

// figure is one PNG chart of a planner report, in the papers' style.
type figure struct {
	title, x, y string
	logX        bool // the x axis spans decades (cluster counts)
	legendLeft  bool
	noPoints    bool // step curves read better as plain lines
}

// save draws lines — name, plotter.XYs pairs, as plotutil takes them — into
// dir/file (6×4 inches).
func (f figure) save(dir, file string, lines ...any) error {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = f.title, f.x, f.y
	if f.logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	add := plotutil.AddLinePoints
	if f.noPoints {
		add = plotutil.AddLines
	}
	if err := add(p, lines...); err != nil {
		return err
	}
	p.Legend.Top, p.Legend.Left = true, f.legendLeft
	return p.Save(6*vg.Inch, 4*vg.Inch, filepath.Join(dir, file))
}
