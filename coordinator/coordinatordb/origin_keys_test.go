package coordinatordb

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/swarmcast/swarmcast/wire"
)

// An allowed origin key survives a reopen; allowing twice is a no-op; a
// malformed key is refused and stores nothing.
func TestOriginKeys(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db, err := OpenConfig(ctx, be.dsn, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		key := wire.NodeID(strings.Repeat("ab", 32))
		if ok, err := db.OriginKeyAllowed(ctx, key); ok || err != nil {
			t.Fatalf("before: allowed=%v err=%v", ok, err)
		}
		for range 2 {
			if err := db.AllowOriginKey(ctx, key, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.AllowOriginKey(ctx, "'; DROP TABLE origin_keys;--", time.Now()); err == nil {
			t.Fatal("malformed key allowed")
		}
		db.Close()
		db, err = OpenConfig(ctx, be.dsn, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if ok, err := db.OriginKeyAllowed(ctx, key); !ok || err != nil {
			t.Fatalf("after reopen: allowed=%v err=%v", ok, err)
		}
		if n := count(t, db, "origin_keys"); n != 1 {
			t.Fatalf("%d origin keys, want 1", n)
		}
	})
}
