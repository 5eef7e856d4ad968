package edge

import (
	"slices"
	"sync"
	"testing"
	"time"
)

func TestUploadBucketPacesAtItsRateAfterTheBurst(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)
	b := newUploadBucket(1000, 100, t0) // 1000 B/s, 100 B deep
	if d := b.take(t0, 100); d > 0 {
		t.Fatalf("a full bucket made the first 100 bytes wait %v", d)
	}
	if d := b.take(t0, 50); d != 50*time.Millisecond {
		t.Fatalf("50 bytes past an empty bucket wait %v, want 50ms", d)
	}
	b.giveBack(50) // the client left: the next taker does not pay for it
	if d := b.take(t0, 50); d != 50*time.Millisecond {
		t.Fatalf("after a give-back, 50 bytes wait %v, want 50ms (not 100ms)", d)
	}
	// Long idle refills the bucket to its depth, never beyond.
	later := t0.Add(time.Hour)
	if d := b.take(later, 100); d > 0 {
		t.Fatalf("a refilled bucket made 100 bytes wait %v", d)
	}
	if d := b.take(later, 100); d != 100*time.Millisecond {
		t.Fatalf("the bucket held more than its depth after an hour: the next 100 bytes wait %v, want 100ms", d)
	}
	// A give-back after the tokens refilled anyway adds nothing.
	b.giveBack(1000)
	if d := b.take(later.Add(time.Second), 101); d != time.Millisecond {
		t.Fatalf("101 bytes from a full bucket wait %v, want 1ms", d)
	}
}

// Concurrent takers (the server's goroutines on every core) never get more
// than burst + rate·w bytes due within w of a full bucket, and the bucket
// loses no tokens to races: the last byte is due when the total says.
func TestUploadBucketConcurrentTakersStayWithinTheCap(t *testing.T) {
	const rate, burst = 1 << 20, 128 << 10 // 1 MiB/s
	t0 := time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)
	b := newUploadBucket(rate, burst, t0)
	type due struct {
		at time.Duration
		n  int
	}
	var mu sync.Mutex
	var all []due
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			var mine []due
			for i := range 500 {
				n := 1000 + (w*7919+i*104729)%12000
				mine = append(mine, due{max(b.take(t0, n), 0), n})
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(all, func(x, y due) int { return int(x.at - y.at) })
	total := 0
	for _, d := range all {
		total += d.n
		allowed := burst + int(float64(rate)*d.at.Seconds()) + 1
		if total > allowed {
			t.Fatalf("%d bytes due within %v of a full bucket, cap allows %d", total, d.at, allowed)
		}
	}
	want := time.Duration(float64(total-burst) / rate * float64(time.Second))
	if got := all[len(all)-1].at; got < want-time.Microsecond || got > want+time.Duration(len(all))*time.Nanosecond {
		t.Fatalf("last of %d bytes due after %v, want %v (tokens lost or doubled under concurrency)", total, got, want)
	}
}
