package wire

import (
	"context"
	"net/http"
	"slices"
	"strings"
)

// HeaderLookupPurpose says why a lookup is made. An edge looking for holders
// of shards it was assigned sends LookupPurposePrefetch: such a lookup is
// not viewer demand, and a coordinator that counted it as demand would feed
// its own placement back into itself.
const HeaderLookupPurpose = "X-Swarmcast-Lookup-Purpose"

// LookupPurposePrefetch marks an edge's prefetch lookup.
const LookupPurposePrefetch = "prefetch"

// PrefetchLookup is Lookup marked with HeaderLookupPurpose: prefetch.
func (c *CoordinatorClient) PrefetchLookup(ctx context.Context, req LookupRequest) (LookupResponse, error) {
	return c.lookup(ctx, req, http.Header{HeaderLookupPurpose: {LookupPurposePrefetch}})
}

// CoordinatorURLs is primary followed by others, trimmed, without blanks or
// duplicates: the coordinators a node registers with, primary first.
func CoordinatorURLs(primary string, others []string) []string {
	var out []string
	for _, u := range append([]string{primary}, others...) {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}
