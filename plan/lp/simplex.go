package lp

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
	golp "gonum.org/v1/gonum/optimize/convex/lp"
)

// Simplex is gonum's dense simplex, in process. It suits problems up to a few
// hundred rows; its time grows with rows² × columns per iteration.
type Simplex struct{}

func (Simplex) Name() string { return "gonum-simplex" }

// Solve converts p to standard form (min c·y, A y = b, y ≥ 0) with one shifted
// column per bounded column, one slack per inequality side, and two columns
// for each free column, then runs gonum's simplex.
func (Simplex) Solve(p *Problem) (*Solution, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if hasInteger(p) {
		return nil, ErrIntegerUnsupported
	}
	n := len(p.Obj)
	// x_j = off_j + sign_j·y_a (− y_b when free).
	type colMap struct {
		a, b int // standard-form columns; b = -1 unless free
		off  float64
		sign float64
	}
	cols := make([]colMap, n)
	var c []float64
	type entry struct {
		col int
		val float64
	}
	var rows [][]entry
	var rhs []float64
	var isEq []bool
	addRow := func(es []entry, b float64, eq bool) {
		rows = append(rows, es)
		rhs = append(rhs, b)
		isEq = append(isEq, eq)
	}
	fixedObj := 0.0
	for j := range n {
		lo, hi := p.bounds(j)
		switch {
		case !math.IsInf(lo, -1):
			cols[j] = colMap{a: len(c), b: -1, off: lo, sign: 1}
			c = append(c, p.Obj[j])
			if !math.IsInf(hi, 1) {
				addRow([]entry{{cols[j].a, 1}}, hi-lo, false)
			}
		case !math.IsInf(hi, 1):
			cols[j] = colMap{a: len(c), b: -1, off: hi, sign: -1}
			c = append(c, -p.Obj[j])
		default:
			cols[j] = colMap{a: len(c), b: len(c) + 1, sign: 1}
			c = append(c, p.Obj[j], -p.Obj[j])
		}
		fixedObj += p.Obj[j] * cols[j].off
	}
	for _, r := range p.Rows {
		var es []entry
		shift := 0.0
		for k, j := range r.Idx {
			m := cols[j]
			shift += r.Val[k] * m.off
			es = append(es, entry{m.a, r.Val[k] * m.sign})
			if m.b >= 0 {
				es = append(es, entry{m.b, -r.Val[k]})
			}
		}
		lo, hi := r.Lo-shift, r.Hi-shift
		// An equality becomes two inequalities, each with its own slack, so
		// the standard-form matrix always has full row rank.
		if !math.IsInf(hi, 1) {
			addRow(es, hi, false)
		}
		if !math.IsInf(lo, -1) {
			neg := make([]entry, len(es))
			for k, e := range es {
				neg[k] = entry{e.col, -e.val}
			}
			addRow(neg, -lo, false)
		}
	}
	// Every inequality row gets its own slack column.
	width := len(c)
	slack := make([]int, len(rows))
	for i := range rows {
		slack[i] = -1
		if !isEq[i] {
			slack[i] = width
			width++
		}
	}
	// Drop structural columns that appear in no row: they sit at 0 if their
	// cost is ≥ 0, otherwise the problem is unbounded.
	used := make([]bool, len(c))
	for _, es := range rows {
		for _, e := range es {
			if e.val != 0 {
				used[e.col] = true
			}
		}
	}
	for k, u := range used {
		if !u && c[k] < 0 {
			return &Solution{Status: Unbounded}, nil
		}
	}
	keep := make([]int, width) // standard column -> dense column, -1 if dropped
	dense := 0
	for k := range width {
		if k < len(c) && !used[k] {
			keep[k] = -1
			continue
		}
		keep[k] = dense
		dense++
	}
	// Empty rows are either trivially true or infeasible.
	var A []float64
	var b []float64
	var cost = make([]float64, dense)
	for k := range c {
		if keep[k] >= 0 {
			cost[keep[k]] = c[k]
		}
	}
	nrow := 0
	for i, es := range rows {
		row := make([]float64, dense)
		nz := false
		for _, e := range es {
			if e.val != 0 {
				row[keep[e.col]] += e.val
				nz = true
			}
		}
		if slack[i] >= 0 {
			row[keep[slack[i]]] = 1
			nz = true
		}
		if !nz {
			if math.Abs(rhs[i]) > 1e-9 {
				return &Solution{Status: Infeasible}, nil
			}
			continue
		}
		A = append(A, row...)
		b = append(b, rhs[i])
		nrow++
	}
	y := make([]float64, len(c))
	obj := fixedObj
	if nrow > 0 {
		// gonum wants b ≥ 0 for its phase one; flip rows as needed.
		for i := range nrow {
			if b[i] < 0 {
				b[i] = -b[i]
				for k := range dense {
					A[i*dense+k] = -A[i*dense+k]
				}
			}
		}
		f, x, err := runSimplex(cost, mat.NewDense(nrow, dense, A), b)
		switch {
		case errors.Is(err, golp.ErrInfeasible):
			return &Solution{Status: Infeasible}, nil
		case errors.Is(err, golp.ErrUnbounded):
			return &Solution{Status: Unbounded}, nil
		case errors.Is(err, golp.ErrSingular) || errors.Is(err, golp.ErrLinSolve):
			return nil, errors.New("lp: gonum simplex hit a singular basis (linearly dependent rows); use the CLP solver")
		case err != nil:
			return nil, err
		}
		obj += f
		for k := range c {
			if keep[k] >= 0 {
				y[k] = x[keep[k]]
			}
		}
	}
	x := make([]float64, n)
	for j, m := range cols {
		x[j] = m.off + m.sign*y[m.a]
		if m.b >= 0 {
			x[j] -= y[m.b]
		}
	}
	return &Solution{Status: Optimal, X: x, Objective: obj}, nil
}

// runSimplex calls gonum's simplex and turns its panics on malformed input
// into errors.
func runSimplex(c []float64, A *mat.Dense, b []float64) (f float64, x []float64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("lp: gonum simplex: %v", r)
		}
	}()
	return golp.Simplex(c, A, b, 1e-10, nil)
}
