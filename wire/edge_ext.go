package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	var out LookupResponse
	b, err := json.Marshal(req)
	if err != nil {
		return out, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+PathLookup, bytes.NewReader(b))
	if err != nil {
		return out, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set(HeaderLookupPurpose, LookupPurposePrefetch)
	if c.Token != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(hreq)
	if err != nil {
		return out, fmt.Errorf("coordinator %s: %w", c.Base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return out, readError(resp)
	}
	return out, json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out)
}
