package lp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Coin solves problems with the COIN-OR command-line solvers: clp for linear
// programs and cbc for mixed-integer ones (Debian packages coinor-clp and
// coinor-cbc). It writes the problem as free MPS to a temporary directory
// and runs the solver as a subprocess; this file is the only part of the plan
// tree that touches the file system or other processes.
type Coin struct {
	// CLP and CBC are the executables; empty means "clp" and "cbc" on PATH.
	CLP, CBC string
}

func (Coin) Name() string { return "coin-or" }

// CoinAvailable reports whether cbc and clp are on PATH.
func CoinAvailable() bool {
	_, e1 := exec.LookPath("cbc")
	_, e2 := exec.LookPath("clp")
	return e1 == nil && e2 == nil
}

// ErrNoCoin is returned when the COIN-OR executables are missing.
var ErrNoCoin = errors.New("lp: COIN-OR solver not found on PATH; install it with `apt-get install -y coinor-cbc coinor-clp`")

func (c Coin) Solve(p *Problem) (*Solution, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	bin := c.CLP
	if bin == "" {
		bin = "clp"
	}
	if hasInteger(p) {
		bin = c.CBC
		if bin == "" {
			bin = "cbc"
		}
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, ErrNoCoin
	}
	dir, err := os.MkdirTemp("", "swarmcast-lp-")
	if err != nil {
		return nil, fmt.Errorf("lp: %w", err)
	}
	defer os.RemoveAll(dir)
	model := filepath.Join(dir, "model.mps")
	solFile := filepath.Join(dir, "solution.txt")
	var buf bytes.Buffer
	writeMPS(&buf, p)
	if err := os.WriteFile(model, buf.Bytes(), 0o600); err != nil {
		return nil, fmt.Errorf("lp: %w", err)
	}
	cmd := exec.Command(path, model, "-solve", "-solu", solFile)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("lp: %s failed: %v\n%s", bin, err, tail(out))
	}
	if bytes.Contains(out, []byte("errors on input")) || bytes.Contains(out, []byte("model not valid")) {
		return nil, fmt.Errorf("lp: %s rejected the model:\n%s", bin, tail(out))
	}
	data, err := os.ReadFile(solFile)
	if err != nil {
		low := strings.ToLower(string(out))
		switch {
		case strings.Contains(low, "unbounded") && !strings.Contains(low, "infeasible or unbounded"):
			return &Solution{Status: Unbounded}, nil
		case strings.Contains(low, "infeasible"):
			return &Solution{Status: Infeasible}, nil
		}
		return nil, fmt.Errorf("lp: %s wrote no solution:\n%s", bin, tail(out))
	}
	return parseSolution(data, len(p.Obj), p)
}

func tail(b []byte) string {
	s := string(b)
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// num formats a float so COIN's MPS reader never mistakes a line for fixed
// format: always with a decimal point or exponent.
func num(v float64) string {
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

func colName(j int) string { return fmt.Sprintf("column_%09d", j) }
func rowName(i int) string { return fmt.Sprintf("row_%09d", i) }

// writeMPS writes p in free MPS. Names are longer than fixed MPS allows so
// COIN reads the file as free format.
func writeMPS(w *bytes.Buffer, p *Problem) {
	w.WriteString("NAME swarmcast_plan\nROWS\n N objective_row\n")
	type rowInfo struct {
		name string
		rhs  float64
		rng  float64 // > 0 for a ranged row
	}
	infos := make([]rowInfo, len(p.Rows))
	colRows := make([][]struct {
		row int
		val float64
	}, len(p.Obj))
	for i, r := range p.Rows {
		name := rowName(i)
		kind := "N"
		switch {
		case r.Lo == r.Hi:
			kind, infos[i] = "E", rowInfo{name, r.Lo, 0}
		case math.IsInf(r.Lo, -1) && math.IsInf(r.Hi, 1):
			kind = "N"
		case math.IsInf(r.Lo, -1):
			kind, infos[i] = "L", rowInfo{name, r.Hi, 0}
		case math.IsInf(r.Hi, 1):
			kind, infos[i] = "G", rowInfo{name, r.Lo, 0}
		default:
			kind, infos[i] = "G", rowInfo{name, r.Lo, r.Hi - r.Lo}
		}
		infos[i].name = name
		fmt.Fprintf(w, " %s %s\n", kind, name)
		for k, j := range r.Idx {
			colRows[j] = append(colRows[j], struct {
				row int
				val float64
			}{i, r.Val[k]})
		}
	}
	w.WriteString("COLUMNS\n")
	inInt := false
	for j := range p.Obj {
		isInt := p.Integer != nil && p.Integer[j]
		if isInt != inInt {
			if isInt {
				w.WriteString(" marker_int 'MARKER' 'INTORG'\n")
			} else {
				w.WriteString(" marker_end 'MARKER' 'INTEND'\n")
			}
			inInt = isInt
		}
		name := colName(j)
		fmt.Fprintf(w, " %s objective_row %s\n", name, num(p.Obj[j]))
		for _, e := range colRows[j] {
			if e.val != 0 {
				fmt.Fprintf(w, " %s %s %s\n", name, rowName(e.row), num(e.val))
			}
		}
	}
	if inInt {
		w.WriteString(" marker_end 'MARKER' 'INTEND'\n")
	}
	w.WriteString("RHS\n")
	for i, in := range infos {
		if in.rhs != 0 && !math.IsInf(in.rhs, 0) && !(math.IsInf(p.Rows[i].Lo, -1) && math.IsInf(p.Rows[i].Hi, 1)) {
			fmt.Fprintf(w, " rhs_vector %s %s\n", in.name, num(in.rhs))
		}
	}
	w.WriteString("RANGES\n")
	for _, in := range infos {
		if in.rng > 0 {
			fmt.Fprintf(w, " range_vector %s %s\n", in.name, num(in.rng))
		}
	}
	w.WriteString("BOUNDS\n")
	for j := range p.Obj {
		lo, hi := p.bounds(j)
		name := colName(j)
		switch {
		case lo == hi:
			fmt.Fprintf(w, " FX bound_vector %s %s\n", name, num(lo))
			continue
		case math.IsInf(lo, -1) && math.IsInf(hi, 1):
			fmt.Fprintf(w, " FR bound_vector %s\n", name)
			continue
		case math.IsInf(lo, -1):
			fmt.Fprintf(w, " MI bound_vector %s\n", name)
		case lo != 0 || (p.Integer != nil && p.Integer[j]):
			fmt.Fprintf(w, " LO bound_vector %s %s\n", name, num(lo))
		}
		if !math.IsInf(hi, 1) {
			fmt.Fprintf(w, " UP bound_vector %s %s\n", name, num(hi))
		} else if p.Integer != nil && p.Integer[j] {
			fmt.Fprintf(w, " PL bound_vector %s\n", name)
		}
	}
	w.WriteString("ENDATA\n")
}

// parseSolution reads a COIN solution file: a status line, then
// "index name value reduced-cost" per printed column.
func parseSolution(data []byte, n int, p *Problem) (*Solution, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	if !sc.Scan() {
		return nil, errors.New("lp: empty COIN solution file")
	}
	status := strings.ToLower(sc.Text())
	switch {
	case strings.HasPrefix(status, "optimal"):
	case strings.Contains(status, "infeasible"):
		return &Solution{Status: Infeasible}, nil
	case strings.Contains(status, "unbounded"):
		return &Solution{Status: Unbounded}, nil
	default:
		return nil, fmt.Errorf("lp: COIN stopped without an optimum: %q", sc.Text())
	}
	x := make([]float64, n)
	for sc.Scan() {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "**"))
		if len(f) < 3 || !strings.HasPrefix(f[1], "column_") {
			continue
		}
		j, err := strconv.Atoi(strings.TrimPrefix(f[1], "column_"))
		if err != nil || j < 0 || j >= n {
			return nil, fmt.Errorf("lp: bad column in COIN solution: %q", sc.Text())
		}
		v, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			return nil, fmt.Errorf("lp: bad value in COIN solution: %q", sc.Text())
		}
		x[j] = v
	}
	obj := 0.0
	for j, c := range p.Obj {
		obj += c * x[j]
	}
	return &Solution{Status: Optimal, X: x, Objective: obj}, nil
}
