// Package lp states linear and mixed-integer programs once and solves them
// with a pure-Go dense simplex (small problems and tests) or with COIN-OR
// CLP/CBC run as a subprocess (paper-scale problems and exact MIP optima).
package lp

import (
	"errors"
	"fmt"
	"math"
)

// Problem is min Obj·x subject to Lo ≤ A x ≤ Hi row by row and
// Lower ≤ x ≤ Upper column by column. Infinite bounds are ±math.Inf.
type Problem struct {
	Obj          []float64 // cost per column
	Lower, Upper []float64 // column bounds; nil means [0, +Inf)
	Integer      []bool    // nil or per column; honoured by MIP-capable solvers
	Rows         []Row
}

// Row is one sparse constraint Lo ≤ Σ Val[k]·x[Idx[k]] ≤ Hi.
type Row struct {
	Idx    []int
	Val    []float64
	Lo, Hi float64
}

// NewProblem returns a problem with n columns, all costs 0 and bounds [0, ∞).
func NewProblem(n int) *Problem {
	p := &Problem{Obj: make([]float64, n), Lower: make([]float64, n), Upper: make([]float64, n)}
	for i := range p.Upper {
		p.Upper[i] = math.Inf(1)
	}
	return p
}

// AddColumn appends a column with cost c and bounds [lo, hi] and returns its
// index.
func (p *Problem) AddColumn(c, lo, hi float64) int {
	p.Obj = append(p.Obj, c)
	p.Lower = append(p.Lower, lo)
	p.Upper = append(p.Upper, hi)
	if p.Integer != nil {
		p.Integer = append(p.Integer, false)
	}
	return len(p.Obj) - 1
}

// AddRow appends the constraint lo ≤ Σ val[k]·x[idx[k]] ≤ hi.
func (p *Problem) AddRow(idx []int, val []float64, lo, hi float64) {
	p.Rows = append(p.Rows, Row{Idx: idx, Val: val, Lo: lo, Hi: hi})
}

// SetInteger marks column j as integer.
func (p *Problem) SetInteger(j int) {
	if p.Integer == nil {
		p.Integer = make([]bool, len(p.Obj))
	}
	p.Integer[j] = true
}

func (p *Problem) bounds(j int) (float64, float64) {
	lo, hi := 0.0, math.Inf(1)
	if p.Lower != nil {
		lo = p.Lower[j]
	}
	if p.Upper != nil {
		hi = p.Upper[j]
	}
	return lo, hi
}

// Check reports the first malformed part of the problem.
func (p *Problem) Check() error {
	n := len(p.Obj)
	if (p.Lower != nil && len(p.Lower) != n) || (p.Upper != nil && len(p.Upper) != n) || (p.Integer != nil && len(p.Integer) != n) {
		return fmt.Errorf("lp: %d columns but %d lower, %d upper, %d integer flags", n, len(p.Lower), len(p.Upper), len(p.Integer))
	}
	for j := range n {
		lo, hi := p.bounds(j)
		if math.IsNaN(lo) || math.IsNaN(hi) || lo > hi || math.IsNaN(p.Obj[j]) || math.IsInf(p.Obj[j], 0) {
			return fmt.Errorf("lp: column %d has cost %v and bounds [%v, %v]", j, p.Obj[j], lo, hi)
		}
	}
	for i, r := range p.Rows {
		if len(r.Idx) != len(r.Val) || math.IsNaN(r.Lo) || math.IsNaN(r.Hi) || r.Lo > r.Hi {
			return fmt.Errorf("lp: row %d malformed (%d indices, %d values, bounds [%v, %v])", i, len(r.Idx), len(r.Val), r.Lo, r.Hi)
		}
		for k, j := range r.Idx {
			if j < 0 || j >= n || math.IsNaN(r.Val[k]) || math.IsInf(r.Val[k], 0) {
				return fmt.Errorf("lp: row %d entry %d: column %d value %v", i, k, j, r.Val[k])
			}
		}
	}
	return nil
}

// Status is the outcome of a solve.
type Status int

const (
	Optimal Status = iota
	Infeasible
	Unbounded
)

func (s Status) String() string {
	return [...]string{"optimal", "infeasible", "unbounded"}[s]
}

// Solution is an optimal point, or the reason there is none.
type Solution struct {
	Status    Status
	X         []float64 // column values; nil unless Optimal
	Objective float64
}

// Solver solves problems. Solve returns an error only when the solver itself
// failed; infeasible and unbounded problems are reported in Status.
type Solver interface {
	Name() string
	Solve(p *Problem) (*Solution, error)
}

// ErrIntegerUnsupported is returned by solvers that cannot honour Integer.
var ErrIntegerUnsupported = errors.New("lp: this solver ignores integrality; use the CBC solver for mixed-integer problems")

func hasInteger(p *Problem) bool {
	for _, b := range p.Integer {
		if b {
			return true
		}
	}
	return false
}

// Auto solves small problems with Simplex and large ones with Coin, and
// mixed-integer ones always with Coin.
type Auto struct {
	// MaxDense is the largest rows×columns product Simplex takes; 0 means
	// 20 000 (a few milliseconds).
	MaxDense int
}

func (Auto) Name() string { return "auto" }

func (a Auto) Solve(p *Problem) (*Solution, error) {
	limit := a.MaxDense
	if limit == 0 {
		limit = 20000
	}
	if !hasInteger(p) && len(p.Rows)*len(p.Obj) <= limit {
		return Simplex{}.Solve(p)
	}
	if !CoinAvailable() {
		return nil, fmt.Errorf("lp: problem with %d rows and %d columns is too large for the in-process simplex: %w", len(p.Rows), len(p.Obj), ErrNoCoin)
	}
	return Coin{}.Solve(p)
}
