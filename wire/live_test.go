package wire

import (
	"bytes"
	"testing"
)

func TestLiveEntriesFramingRoundTrip(t *testing.T) {
	in := [][]byte{[]byte("one"), bytes.Repeat([]byte{2}, 300)}
	out, err := DecodeLiveEntries(EncodeLiveEntries(in))
	if err != nil || len(out) != 2 || !bytes.Equal(out[1], in[1]) {
		t.Fatalf("round trip: %v %d", err, len(out))
	}
	for _, bad := range [][]byte{{0}, {0, 0}, {0, 5, 1}} {
		if _, err := DecodeLiveEntries(bad); err == nil {
			t.Fatalf("%x accepted", bad)
		}
	}
}

func FuzzDecodeLiveEntries(f *testing.F) {
	f.Add(EncodeLiveEntries([][]byte{[]byte("a"), []byte("bc")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := DecodeLiveEntries(b)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodeLiveEntries(es), b) {
			t.Fatal("accepted framing does not re-encode to its bytes")
		}
	})
}
