package content

import (
	"runtime"
	"sync"
)

// parallelFor runs fn(0..n-1) on up to GOMAXPROCS goroutines. With one
// processor (or one item) it runs inline, so single-core cost is the plain
// loop's. Items are handed out one at a time: shards are equal-sized, so
// this balances without tuning.
func parallelFor(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next sync.Mutex
	i := 0
	take := func() int {
		next.Lock()
		defer next.Unlock()
		j := i
		i++
		return j
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(func() {
			for j := take(); j < n; j = take() {
				fn(j)
			}
		})
	}
	for j := take(); j < n; j = take() {
		fn(j)
	}
	wg.Wait()
}

// scratch recycles the shard buffers of PackageSegment and checkSegment,
// which only need the shards long enough to hash them.
var scratch sync.Pool // *[]byte

func getScratch(n int) *[]byte {
	if b, ok := scratch.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

func putScratch(b *[]byte) { scratch.Put(b) }
