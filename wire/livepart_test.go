package wire

import (
	"bytes"
	"testing"
)

func TestLivePartMessageRoundTrip(t *testing.T) {
	m := LivePartMessage{Part: []byte("part"), Pieces: [][]byte{[]byte("r0 bytes"), {}, []byte("r2")}}
	got, err := DecodeLivePartMessage(m.Encode())
	if err != nil || !bytes.Equal(got.Part, m.Part) || len(got.Pieces) != 3 || !bytes.Equal(got.Pieces[2], m.Pieces[2]) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	b := m.Encode()
	for _, bad := range [][]byte{nil, b[:3], b[:len(b)-1], append(bytes.Clone(b), 0, 0, 0, 9)} {
		if _, err := DecodeLivePartMessage(bad); err == nil {
			t.Fatalf("%x decoded", bad)
		}
	}
}

func FuzzDecodeLivePartMessage(f *testing.F) {
	f.Add(LivePartMessage{Part: []byte("part"), Pieces: [][]byte{[]byte("piece")}}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeLivePartMessage(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatal("a decoded message does not re-encode to its bytes")
		}
	})
}
