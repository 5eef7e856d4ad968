package reposhape

// The checks read the source with go/parser (not grep), so a comment that
// mentions time.Now or a string holding "net/http" is not a violation, and an
// import renamed to dodge a pattern still is.

import (
	"bufio"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/swarmcast/swarmcast"

type class int

const (
	unclassified class = iota
	// role: a node kind. Roles never import each other; they meet in wire.
	role
	// library: role-free code any role may use; it imports no role.
	library
	// wiring: binaries and harnesses that put several roles in one process.
	wiring
)

func (c class) String() string {
	return [...]string{"unclassified", "role", "library", "wiring"}[c]
}

// layout classifies every package of the module by its path (relative to
// the module root; an entry covers its sub-packages, so coordinator covers
// its subsystems coordinator/coordinatordb, coordinator/accounting and
// coordinator/web). Adding a role is one line here.
var layout = []struct {
	prefix  string
	class   class
	planned bool // no package yet: reserved so it is a role from its first file
}{
	{prefix: "coordinator", class: role},
	{prefix: "origin", class: role},
	{prefix: "edge", class: role},
	{prefix: "viewer", class: role},
	{prefix: "relay", class: role},

	{prefix: "content", class: library},
	{prefix: "wire", class: library},
	{prefix: "plan", class: library},
	{prefix: "internal", class: library},
	// fanout pushes live segments down a channel's overlay: the origin (the
	// trees' root) and relays both run it, so it is a library.
	{prefix: "fanout", class: library},
	// btr is bounded-time recovery for live transcoding (signed outputs,
	// proofs, accusations, the judge's agreement core, the bound R): the
	// coordinator judges and workers sign, so it is a library.
	{prefix: "btr", class: library},

	{prefix: "cmd", class: wiring},
	{prefix: "testnet", class: wiring},
	// sim drives the roles' sans-IO cores (viewer scheduler, coordinator
	// placer, demand and ranking) in one process over a simulated clock and
	// network: a harness like testnet, so it may import roles and no role
	// or library may import it.
	{prefix: "sim", class: wiring},
}

// Rules, as named in failure messages and in knownViolations.
const (
	ruleRoleImportsRole    = "a role imports another role (roles meet only in wire; cmd/ and testnet wire them together)"
	ruleLibraryImportsRole = "a library imports a role (content, wire, plan and internal/* must stay role-free)"
	ruleImportsWiring      = "a role or library imports a wiring package (cmd/, testnet)"
	ruleUnclassified       = "a package is not in the layout table (classify it as role, library or wiring)"
	ruleCoreImportsIO      = "a sans-IO core imports an I/O package (the driver does I/O and hands the core its results)"
	ruleCoreReadsClock     = "a sans-IO core reads or waits on the real clock (it is handed now as a value)"
	ruleCoreStartsGo       = "a sans-IO core starts a goroutine (it is single-threaded; its driver owns the goroutines)"
	ruleCoreGlobalRand     = "a sans-IO core draws from the global random source (it is handed a seeded *rand.Rand)"
	rulePlanDependency     = "plan imports beyond the standard library, gonum and its own sub-packages"
)

// sansIOCores are the decision logic docs/ARCHITECTURE.md calls sans-IO: fed
// events, handed a clock value and a seeded *rand.Rand, so they run the same
// in real nodes, in synctest tests and in the simulator. A directory entry
// means every non-test .go file in it.
//
// Considered and left out: edge/idle.go (the serving/prefetch gate waits on
// a real timer by design), edge/regen.go (rebuilds from shards it reads from
// the edge's disk store), viewer/orders.go and the role files holding
// handlers and Run loops (they are the drivers).
var sansIOCores = []struct {
	path string
	why  string
}{
	{"viewer/scheduler.go", "the any-k-of-n fetch scheduler: plans requests and timeouts from events and a clock value"},
	{"coordinator/placement.go", "the placer: a pure function of a placement snapshot, a time and its seeded rng"},
	{"coordinator/demand.go", "the demand tracker: decays request rates to the instant it is given"},
	{"coordinator/shardmask.go", "a bit set of shard indices"},
	{"coordinator/lookup.go", "lookup ranking over the registry snapshot"},
	{"coordinator/state.go", "registry, inventory and liveness state, advanced by heartbeats at given instants"},
	{"coordinator/index.go", "the packed holder index (node and segment slots): plain data structure operations"},
	{"coordinator/originpool.go", "the AVARDO origin pool: activates origins from measured rates with hysteresis"},
	{"coordinator/live/trees.go", "the live fan-out tree builder: a pure function of a node and chain snapshot (plan.Cocos per substream)"},
	{"coordinator/loadoverview.go", "the admin load overview: a fixed ring of egress buckets advanced to the instant it is given"},
	{"edge/inventory.go", "which shards the edge holds, LRU by tick and watch expiry at a given instant"},
	{"edge/orders.go", "the order book: keeps the largest valid order per serial and batches settlement at a given instant"},
	{"edge/queue.go", "the bounded prefetch work queue"},
	{"edge/uploadbucket.go", "the upload cap's lock-free token bucket, advanced to the instant it is given"},
	{"origin/cache.go", "the origin's byte-bounded LRU of encoded segments"},
	{"origin/live/cutter.go", "the live source segmenter: cuts at keyframes from the source's timestamps, refuses sparse keyframes"},
	{"origin/live/partcut.go", "the Low-Latency HLS part cutter: fed a rendition's MPEG-TS, cuts before the first frame past each part boundary; the assembler joins the renditions' parts"},
	{"content/livellplaylist.go", "Low-Latency HLS playlists and the blocking-reload decision (RFC 8216bis 6.2.5.2) from a window snapshot"},
	{"internal/impair/link.go", "the emulated link: when bytes handed to it at a given instant arrive, from a seeded rng"},
	{"fanout/decide.go", "the receiver's decisions: which sender may push which shards, and whether they verify against their entry"},
	{"fanout/watch.go", "a child's parent watch (relays under BTR): pushes overdue against the segment cadence, fed arrivals and instants"},
	{"btr", "BTR: statements and their checks, the judge's f+1 agreement core fed outputs and instants, the standby plans and the bound R; re-execution is behind an interface"},
	{"plan", "the planning algorithms (package doc: no goroutines, clock or network); plan/lp runs CBC and is not a core"},
}

// knownViolations are violations present today, allowed while their owner
// fixes them. Each entry must still occur (a stale entry fails), so the list
// only shrinks: fix the file, then delete its line.
var knownViolations = []allowedViolation{}

// allowedViolation is one entry of knownViolations.
type allowedViolation struct {
	file, rule, detail string
	owner              string
}

// coreForbiddenImports are the I/O packages a core must not import.
var coreForbiddenImports = map[string]string{
	"net":      "sockets",
	"net/http": "HTTP clients and servers",
	"os":       "files and the process environment",
	"os/exec":  "subprocesses",
}

// clockFuncs are the time functions that read or wait on the real clock;
// time.Since and time.Until call time.Now.
var clockFuncs = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
	"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true,
}

// seededRandNames are the math/rand and math/rand/v2 names that build or
// name a seeded generator; every other package-level name uses the global
// source.
var seededRandNames = map[string]bool{
	"New": true, "NewSource": true, "NewPCG": true, "NewChaCha8": true, "NewZipf": true,
	"Rand": true, "Source": true, "Source64": true, "PCG": true, "ChaCha8": true, "Zipf": true,
}

// planExtraImports lets one plan sub-package import more than the standard
// library, gonum and plan/.... The core package plan never gets an entry.
var planExtraImports = map[string][]string{
	// The swarmcast plan experiments draw their figures.
	"plan/experiment": {"gonum.org/v1/plot"},
}

type violation struct {
	file   string // slash-separated, relative to the module root
	line   int
	rule   string
	detail string
}

func (v violation) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", v.file, v.line, v.detail, v.rule)
}

// classOf returns the layout class of a package path relative to the
// module root, and the prefix that classified it (its role's name).
func classOf(rel string) (class, string) {
	for _, e := range layout {
		if rel == e.prefix || strings.HasPrefix(rel, e.prefix+"/") {
			return e.class, e.prefix
		}
	}
	return unclassified, ""
}

// importViolation names the rule an import from package fromRel breaks,
// or "" if it breaks none. Imports outside the module break none here.
func importViolation(fromRel, importPath string) string {
	if importPath != module && !strings.HasPrefix(importPath, module+"/") {
		return ""
	}
	toRel := strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")
	fromClass, fromName := classOf(fromRel)
	toClass, toName := classOf(toRel)
	switch {
	case fromClass == wiring:
		return ""
	case toClass == wiring:
		return ruleImportsWiring
	case fromClass == role && toClass == role && fromName != toName:
		return ruleRoleImportsRole
	case fromClass == library && toClass == role:
		return ruleLibraryImportsRole
	}
	return ""
}

// planImportAllowed reports whether a package under plan/ may import p.
func planImportAllowed(fromRel, p string) bool {
	first, _, _ := strings.Cut(p, "/")
	switch {
	case !strings.Contains(first, "."): // the standard library
		return true
	case p == "gonum.org/v1/gonum" || strings.HasPrefix(p, "gonum.org/v1/gonum/"):
		return true
	case p == module+"/plan" || strings.HasPrefix(p, module+"/plan/"):
		return true
	}
	for _, extra := range planExtraImports[fromRel] {
		if p == extra || strings.HasPrefix(p, extra+"/") {
			return true
		}
	}
	return false
}

func importPath(spec *ast.ImportSpec) string {
	p, _ := strconv.Unquote(spec.Path.Value)
	return p
}

// checkImports applies the layout rules (and, under plan/, the planner's
// dependency rule) to one non-test file of package fromRel.
func checkImports(fset *token.FileSet, file string, f *ast.File, fromRel string) []violation {
	var out []violation
	if c, _ := classOf(fromRel); c == unclassified {
		out = append(out, violation{file, 1, ruleUnclassified, fmt.Sprintf("package %s", fromRel)})
	}
	inPlan := fromRel == "plan" || strings.HasPrefix(fromRel, "plan/")
	for _, spec := range f.Imports {
		p := importPath(spec)
		line := fset.Position(spec.Pos()).Line
		if rule := importViolation(fromRel, p); rule != "" {
			out = append(out, violation{file, line, rule, fmt.Sprintf("%s imports %q", fromRel, p)})
		}
		if inPlan && !planImportAllowed(fromRel, p) {
			out = append(out, violation{file, line, rulePlanDependency, fmt.Sprintf("%s imports %q", fromRel, p)})
		}
	}
	return out
}

// checkCore applies the sans-IO rules to one parsed core file.
func checkCore(fset *token.FileSet, file string, f *ast.File) []violation {
	var out []violation
	add := func(pos token.Pos, rule, detail string) {
		out = append(out, violation{file, fset.Position(pos).Line, rule, detail})
	}
	timeName, randName := "", ""
	for _, spec := range f.Imports {
		p := importPath(spec)
		if what, bad := coreForbiddenImports[p]; bad {
			add(spec.Pos(), ruleCoreImportsIO, fmt.Sprintf("imports %q (%s)", p, what))
		}
		local := path.Base(p)
		if p == "math/rand/v2" {
			local = "rand"
		}
		if spec.Name != nil {
			local = spec.Name.Name
		}
		switch p {
		case "time":
			timeName = local
		case "math/rand", "math/rand/v2":
			randName = local
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			add(n.Pos(), ruleCoreStartsGo, "go statement")
		case *ast.SelectorExpr:
			pkg, ok := n.X.(*ast.Ident)
			if !ok || pkg.Obj != nil { // Obj is set for local names that shadow a package
				return true
			}
			switch {
			case pkg.Name == timeName && clockFuncs[n.Sel.Name]:
				add(n.Pos(), ruleCoreReadsClock, "time."+n.Sel.Name)
			case pkg.Name == randName && !seededRandNames[n.Sel.Name]:
				add(n.Pos(), ruleCoreGlobalRand, "rand."+n.Sel.Name)
			}
		}
		return true
	})
	return out
}

// moduleRoot walks up from the test's directory to the go.mod of module.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			sc.Scan()
			f.Close()
			if strings.TrimSpace(strings.TrimPrefix(sc.Text(), "module")) == module {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of module " + module + " above the working directory")
		}
		dir = parent
	}
}

type goPackage struct {
	rel       string   // import path relative to the module root ("" is the root)
	files     []string // non-test .go files, slash-separated, relative to the root
	testFiles []string
}

// modulePackages lists every directory of the module holding .go files,
// skipping testdata, hidden and underscore directories and nested modules.
func modulePackages(root string) ([]goPackage, error) {
	byDir := map[string]*goPackage{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		name := d.Name()
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		dir := path.Dir(rel)
		if dir == "." {
			dir = ""
		}
		pkg := byDir[dir]
		if pkg == nil {
			pkg = &goPackage{rel: dir}
			byDir[dir] = pkg
		}
		if strings.HasSuffix(name, "_test.go") {
			pkg.testFiles = append(pkg.testFiles, rel)
		} else {
			pkg.files = append(pkg.files, rel)
		}
		return nil
	})
	var out []goPackage
	for _, p := range byDir {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b goPackage) int { return strings.Compare(a.rel, b.rel) })
	return out, err
}

// tree is the module as the repository tests see it.
type tree struct {
	root     string
	packages []goPackage
	fset     *token.FileSet
}

func loadTree(t *testing.T) *tree {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := modulePackages(root)
	if err != nil {
		t.Fatal(err)
	}
	return &tree{root: root, packages: pkgs, fset: token.NewFileSet()}
}

func (tr *tree) parse(t *testing.T, rel string, mode parser.Mode) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(tr.fset, rel, mustRead(t, filepath.Join(tr.root, filepath.FromSlash(rel))), mode)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// coreFiles expands sansIOCores to files, with each file's reason.
func (tr *tree) coreFiles(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range sansIOCores {
		st, err := os.Stat(filepath.Join(tr.root, filepath.FromSlash(c.path)))
		if err != nil {
			t.Errorf("sansIOCores names %s, which is not in the tree (moved or renamed? update the table): %v", c.path, err)
			continue
		}
		if !st.IsDir() {
			out[c.path] = c.why
			continue
		}
		n := 0
		for _, p := range tr.packages {
			if p.rel == c.path {
				for _, f := range p.files {
					out[f] = c.why
					n++
				}
			}
		}
		if n == 0 {
			t.Errorf("sansIOCores names directory %s, which has no non-test .go files", c.path)
		}
	}
	return out
}

// report fails t for each violation not in knownViolations, and for each
// known violation (of the rules checked here) that no longer occurs.
// reporter is the part of *testing.T that report uses.
type reporter interface {
	Helper()
	Error(args ...any)
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

func report(t reporter, allowed []allowedViolation, found []violation, checked func(rule string) bool, why func(file string) string) {
	t.Helper()
	seen := make([]bool, len(allowed))
	for _, v := range found {
		known := false
		for i, k := range allowed {
			if k.file == v.file && k.rule == v.rule && strings.HasPrefix(v.detail, k.detail) {
				seen[i], known = true, true
			}
		}
		if known {
			t.Logf("known violation (allowed until fixed): %s", v)
			continue
		}
		msg := v.String()
		if w := why(v.file); w != "" {
			msg += "\n\t" + v.file + " is a sans-IO core: " + w
		}
		t.Error(msg)
	}
	for i, k := range allowed {
		if checked(k.rule) && !seen[i] {
			t.Errorf("knownViolations lists %s (%s: %s), which no longer occurs: delete the entry", k.file, k.detail, k.rule)
		}
	}
}

func isCoreRule(rule string) bool {
	return rule == ruleCoreImportsIO || rule == ruleCoreReadsClock || rule == ruleCoreStartsGo || rule == ruleCoreGlobalRand
}

// TestRolesMeetOnlyInWire: no role imports another role, no library imports
// a role, nothing but wiring imports cmd/ or testnet, plan's dependencies
// stay small, and every package is classified. Test files are exempt: a
// test may wire roles together.
func TestRolesMeetOnlyInWire(t *testing.T) {
	tr := loadTree(t)
	var found []violation
	for _, p := range tr.packages {
		for _, file := range p.files {
			found = append(found, checkImports(tr.fset, file, tr.parse(t, file, parser.ImportsOnly), p.rel)...)
		}
	}
	report(t, knownViolations, found, func(rule string) bool { return !isCoreRule(rule) }, func(string) string { return "" })
}

// TestSansIOCores: the files in sansIOCores import no I/O package, read no
// clock, start no goroutine and use no global random source.
func TestSansIOCores(t *testing.T) {
	tr := loadTree(t)
	cores := tr.coreFiles(t)
	var found []violation
	for _, file := range slices.Sorted(maps.Keys(cores)) {
		found = append(found, checkCore(tr.fset, file, tr.parse(t, file, 0))...)
	}
	report(t, knownViolations, found, isCoreRule, func(file string) string { return cores[file] })
}

// TestTablesMatchTree keeps the tables honest, so the checks above cannot
// pass by looking at nothing: each layout entry finds its packages (a
// planned one none yet), there are roles to check, and the core table's
// entries exist.
func TestTablesMatchTree(t *testing.T) {
	tr := loadTree(t)
	byPrefix := map[string]int{}
	roles := 0
	for _, p := range tr.packages {
		c, prefix := classOf(p.rel)
		byPrefix[prefix]++
		if c == role {
			roles++
		}
	}
	for _, e := range layout {
		switch n := byPrefix[e.prefix]; {
		case e.planned && n > 0:
			t.Errorf("layout: %s is marked planned but has %d packages now: drop planned", e.prefix, n)
		case !e.planned && n == 0:
			t.Errorf("layout: %s finds no package (moved or renamed? update the table)", e.prefix)
		}
	}
	if roles < 4 {
		t.Errorf("found %d role packages, want at least coordinator, origin, edge and viewer", roles)
	}
	if len(tr.packages) < 10 {
		t.Errorf("found %d packages under %s: the walk is not seeing the module", len(tr.packages), tr.root)
	}
	if cores := tr.coreFiles(t); len(cores) < len(sansIOCores) {
		t.Errorf("core table expands to %d files, fewer than its %d entries", len(cores), len(sansIOCores))
	}
	for _, k := range knownViolations {
		if _, err := os.Stat(filepath.Join(tr.root, filepath.FromSlash(k.file))); err != nil {
			t.Errorf("knownViolations names %s, which is not in the tree: delete the entry", k.file)
		}
	}
}

// The checkers themselves, on small in-memory sources.

func parseSource(t *testing.T, src string) (*token.FileSet, *ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "core.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fset, f
}

func rulesOf(vs []violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.rule)
	}
	return out
}

func TestCheckCoreCatchesEachRule(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string // rules, in source order
	}{
		{"clean core", `package p
import ("math/rand"; "time")
// time.Now() in a comment is not a call.
func f(now time.Time, rng *rand.Rand) time.Duration { _ = "time.Now()"; _ = rand.New(rand.NewSource(1)); return time.Duration(rng.Intn(3)) + now.Sub(now) }`, nil},
		{"net/http import", `package p
import "net/http"
var _ = http.StatusOK`, []string{ruleCoreImportsIO}},
		{"os import", `package p
import "os"
var _ = os.Args`, []string{ruleCoreImportsIO}},
		{"time.Now", `package p
import "time"
func f() time.Time { return time.Now() }`, []string{ruleCoreReadsClock}},
		{"time.Since and time.Until call Now", `package p
import "time"
func f(t time.Time) time.Duration { return time.Since(t) + time.Until(t) }`, []string{ruleCoreReadsClock, ruleCoreReadsClock}},
		{"time.Now as a value", `package p
import "time"
var clock = time.Now`, []string{ruleCoreReadsClock}},
		{"renamed time import", `package p
import clk "time"
func f() clk.Time { return clk.Now() }`, []string{ruleCoreReadsClock}},
		{"sleep", `package p
import "time"
func f() { time.Sleep(time.Second) }`, []string{ruleCoreReadsClock}},
		{"go statement", `package p
func f() { go func() {}() }`, []string{ruleCoreStartsGo}},
		{"global rand", `package p
import "math/rand"
func f() int { return rand.Intn(3) }`, []string{ruleCoreGlobalRand}},
		{"global rand v2", `package p
import "math/rand/v2"
func f() int { return rand.IntN(3) }`, []string{ruleCoreGlobalRand}},
		{"local variable named like the package", `package p
import "time"
type c struct{}
func (c) Now() time.Time { return time.Time{} }
func f() time.Time { time := c{}; return time.Now() }`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fset, f := parseSource(t, c.src)
			got := checkCore(fset, "core.go", f)
			if !slices.Equal(rulesOf(got), c.want) {
				t.Errorf("violations %v, want rules %q", got, c.want)
			}
		})
	}
}

func TestImportViolation(t *testing.T) {
	cases := []struct {
		from, imp string
		want      string
	}{
		{"viewer", module + "/edge", ruleRoleImportsRole},
		{"edge", module + "/coordinator", ruleRoleImportsRole},
		{"coordinator", module + "/origin", ruleRoleImportsRole},
		{"relay", module + "/viewer", ruleRoleImportsRole},
		{"coordinator", module + "/coordinator/coordinatordb", ""},
		{"coordinator/coordinatordb", module + "/coordinator", ""},
		// The web app is a coordinator subsystem: part of that role.
		{"coordinator", module + "/coordinator/web", ""},
		{"coordinator/web", module + "/coordinator/accounting", ""},
		{"coordinator/web", module + "/viewer", ruleRoleImportsRole},
		{"internal/browsertest", module + "/coordinator/web", ruleLibraryImportsRole},
		{"viewer", module + "/wire", ""},
		{"viewer", module + "/content", ""},
		{"edge", module + "/internal/httpserve", ""},
		{"content", module + "/viewer", ruleLibraryImportsRole},
		{"wire", module + "/coordinator/coordinatordb", ruleLibraryImportsRole},
		{"internal/loadbench", module + "/edge", ruleLibraryImportsRole},
		{"plan", module + "/coordinator", ruleLibraryImportsRole},
		{"edge", module + "/testnet", ruleImportsWiring},
		{"internal/sample", module + "/cmd/swarmcast", ruleImportsWiring},
		{"testnet", module + "/edge", ""},
		{"testnet", module + "/viewer", ""},
		{"cmd/swarmcast", module + "/coordinator", ""},
		{"cmd/swarmcast", module + "/testnet", ""},
		{"viewer", "github.com/prometheus/client_golang/prometheus", ""},
		{"viewer", "net/http", ""},
	}
	for _, c := range cases {
		if got := importViolation(c.from, c.imp); got != c.want {
			t.Errorf("%s importing %s: %q, want %q", c.from, c.imp, got, c.want)
		}
	}
}

func TestCheckImportsPlanAndLayout(t *testing.T) {
	cases := []struct {
		from string
		src  string
		want []string
	}{
		{"plan", `package plan
import ("math"; "gonum.org/v1/gonum/mat"; "github.com/swarmcast/swarmcast/plan/lp")`, nil},
		{"plan/lp", `package lp
import ("os/exec"; "gonum.org/v1/gonum/optimize/convex/lp")`, nil},
		{"plan", `package plan
import "gonum.org/v1/plot"`, []string{rulePlanDependency}},
		{"plan", `package plan
import "github.com/swarmcast/swarmcast/wire"`, []string{rulePlanDependency}},
		{"plan/lp", `package lp
import "github.com/prometheus/client_golang/prometheus"`, []string{rulePlanDependency}},
		{"plan", `package plan
import "github.com/swarmcast/swarmcast/edge"`, []string{ruleLibraryImportsRole, rulePlanDependency}},
		{"viewer", `package viewer
import _ "github.com/swarmcast/swarmcast/edge"`, []string{ruleRoleImportsRole}},
		{"simnet", `package simnet
import "math"`, []string{ruleUnclassified}},
		{"edge", `package edge
import "github.com/swarmcast/swarmcast/sim"`, []string{ruleImportsWiring}},
		{"sim", `package sim
import "github.com/swarmcast/swarmcast/viewer"`, nil},
	}
	for _, c := range cases {
		fset, f := parseSource(t, c.src)
		if got := checkImports(fset, "x.go", f, c.from); !slices.Equal(rulesOf(got), c.want) {
			t.Errorf("%s: violations %v, want rules %q", c.from, got, c.want)
		}
	}
}

// recorder collects what report says, so report itself can be tested.
type recorder struct{ errors, logs []string }

func (r *recorder) Helper()           {}
func (r *recorder) Error(args ...any) { r.errors = append(r.errors, fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, a...))
}
func (r *recorder) Logf(format string, a ...any) { r.logs = append(r.logs, fmt.Sprintf(format, a...)) }

func TestReportAllowsKnownAndFailsOnStale(t *testing.T) {
	// An allowlist of its own, so the mechanism is tested whether or not
	// the tree has known violations today.
	k := allowedViolation{file: "coordinator/lookup.go", rule: ruleCoreImportsIO, detail: `imports "net/http"`, owner: "test"}
	allow := []allowedViolation{k}
	only := func(rule string) bool { return rule == k.rule }

	var stale recorder
	report(&stale, allow, nil, only, func(string) string { return "" })
	if len(stale.errors) == 0 || !strings.Contains(stale.errors[0], "no longer occurs") {
		t.Errorf("a known violation that no longer occurs: errors %q, want one saying so", stale.errors)
	}

	var allowed recorder
	report(&allowed, allow, []violation{{k.file, 3, k.rule, k.detail}}, only, func(string) string { return "" })
	if len(allowed.errors) != 0 || len(allowed.logs) != 1 {
		t.Errorf("a known violation that occurs: errors %q, logs %q; want it logged, not failed", allowed.errors, allowed.logs)
	}

	var unknown recorder
	report(&unknown, allow, []violation{{"viewer/scheduler.go", 7, ruleCoreReadsClock, "time.Now"}}, isCoreRule,
		func(string) string { return "the scheduler" })
	if len(unknown.errors) == 0 || !strings.Contains(unknown.errors[0], "viewer/scheduler.go:7: time.Now") ||
		!strings.Contains(unknown.errors[0], "the scheduler") {
		t.Errorf("a new violation: errors %q, want it named by file, line, rule and why", unknown.errors)
	}
}
