// Package metrictest lists the metric families a role declares, so tests can pin the names, help and labels dashboards depend on.
package metrictest

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Describe calls register with a Registerer that forwards to a fresh
// registry (so a duplicate name fails as it would in a node) and returns
// one line per metric family registered, sorted:
//
//	swarmcast_edge_requests_total{code} Shard requests by HTTP status.
//
// that is the name, the variable labels in braces, const labels (if any)
// as k="v" pairs, and the help. A scrape shows a labelled family only once
// one of its children exists, so describing the collectors is the only way
// to see every family a role declares.
func Describe(register func(prometheus.Registerer)) []string {
	rec := &recorder{reg: prometheus.NewRegistry()}
	register(rec)
	slices.Sort(rec.families)
	return rec.families
}

type recorder struct {
	reg      *prometheus.Registry
	families []string
}

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		return err
	}
	ch := make(chan *prometheus.Desc)
	// Describe blocks on the unbuffered channel; this goroutine ends before
	// Register returns because the loop below drains ch until it closes.
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		r.families = append(r.families, family(d))
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recorder) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

// descString matches prometheus.Desc's String(), the only view of a Desc's
// fields the client library offers.
var descString = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*"), .*constLabels: \{(.*)\}, variableLabels: \{(.*)\}\}$`)

func family(d *prometheus.Desc) string {
	m := descString.FindStringSubmatch(d.String())
	if m == nil {
		panic(fmt.Sprintf("metrictest: cannot read %s (has the client library changed Desc.String?)", d))
	}
	name, err1 := strconv.Unquote(m[1])
	help, err2 := strconv.Unquote(m[2])
	if err1 != nil || err2 != nil {
		panic(fmt.Sprintf("metrictest: cannot read %s", d))
	}
	line := name + "{" + m[4] + "}"
	if m[3] != "" {
		line += " " + m[3]
	}
	return line + " " + help
}
