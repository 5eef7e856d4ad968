package sim

import (
	"fmt"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// WritePNG draws the report into dir: origin load over time (with the
// no-edge baseline), offload over time, and the startup and per-play
// rebuffer distributions (empirical CDFs).
func (r *Report) WritePNG(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sim: create plot directory: %w", err)
	}
	var origin, toViewers, toEdges, baseline, offload plotter.XYs
	for _, p := range r.Curve {
		origin = append(origin, plotter.XY{X: p.Minute, Y: p.OriginMbps})
		toViewers = append(toViewers, plotter.XY{X: p.Minute, Y: p.OriginToViewers})
		toEdges = append(toEdges, plotter.XY{X: p.Minute, Y: p.OriginToEdges})
		baseline = append(baseline, plotter.XY{X: p.Minute, Y: p.BaselineMbps})
		offload = append(offload, plotter.XY{X: p.Minute, Y: 100 * p.ViewerOffload})
	}
	name := r.Scenario
	lines := []any{"origin (total)", origin, "origin → viewers", toViewers, "origin → edges", toEdges, "without edges", baseline}
	if r.Scenario == "seed-capstone" {
		// The source experiment's average at 40 min: 112 Mbit/s (16 to
		// users + 96 to caches) against 192 without caches.
		var src plotter.XYs
		for _, p := range r.Curve {
			src = append(src, plotter.XY{X: p.Minute, Y: 112})
		}
		lines = append(lines, "source: 112 Mbit/s avg", src)
	}
	if err := save(dir, name+"-origin.png", name+": origin load", "minute", "Mbit/s", lines...); err != nil {
		return err
	}
	if err := save(dir, name+"-offload.png", name+": share of viewer bytes from edges", "minute", "%", "offload", offload); err != nil {
		return err
	}
	if err := save(dir, name+"-startup.png", name+": startup time", "ms", "fraction of plays ≤ x", "startup CDF", cdf(r.startups)); err != nil {
		return err
	}
	return save(dir, name+"-rebuffer.png", name+": rebuffering per play", "stalled share of play time", "fraction of plays ≤ x", "rebuffer CDF", cdf(r.rebuffers))
}

func cdf(sorted []float64) plotter.XYs {
	out := make(plotter.XYs, 0, len(sorted)+1)
	for i, x := range sorted {
		out = append(out, plotter.XY{X: x, Y: float64(i+1) / float64(len(sorted))})
	}
	if len(out) == 0 {
		out = append(out, plotter.XY{})
	}
	return out
}

func save(dir, file, title, x, y string, lines ...any) error {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
	if err := plotutil.AddLines(p, lines...); err != nil {
		return err
	}
	p.Legend.Top = true
	if err := p.Save(6*vg.Inch, 4*vg.Inch, filepath.Join(dir, file)); err != nil {
		return fmt.Errorf("sim: %s: %w", file, err)
	}
	return nil
}
