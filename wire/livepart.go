package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/swarmcast/swarmcast/content"
)

// Origin route for Low-Latency HLS parts (docs/LIVE.md "Low-Latency HLS"):
// GET part {part} of segment {segment} of a low-latency chain, every
// rendition, as LivePartMessage framing (ContentTypeLivePart). With
// ?wait_ms=N (≤ MaxLivePartWaitMS) the request blocks until the part is
// signed. Answers: 200 the part; 204 the segment ended before that part
// (ask for part 0 of the next); 400 bad numbers or a part too far ahead;
// 404 not a low-latency chain of this origin, or a part no longer held;
// 503 not signed within the wait.
const PathLivePart = "/v1/live/parts/{chain}/{segment}/{part}"

// ContentTypeLivePart is the body of a PathLivePart answer.
const ContentTypeLivePart = "application/x-swarmcast-live-part"

// MaxLivePartWaitMS bounds a blocking part request.
const MaxLivePartWaitMS = 3000

// maxLivePartMessage bounds a part answer: the signed part and every
// rendition's ciphertext (content's per-piece bound is 4 MiB).
const maxLivePartMessage = 16 << 20

// LivePartURL is the part request on the origin at base.
func LivePartURL(base string, chain content.VideoID, segment uint64, part int, waitMS int) string {
	u := base + expandPath(PathLivePart, chain.String(), strconv.FormatUint(segment, 10), strconv.Itoa(part))
	if waitMS > 0 {
		u += "?wait_ms=" + strconv.Itoa(waitMS)
	}
	return u
}

// LivePartMessage is a signed part (content.LivePart's encoding) and the
// ciphertext of each of its pieces, in rendition order.
type LivePartMessage struct {
	Part   []byte
	Pieces [][]byte
}

// Encode frames m: u32 length and bytes of the part, then of each piece.
func (m LivePartMessage) Encode() []byte {
	n := 4 + len(m.Part)
	for _, p := range m.Pieces {
		n += 4 + len(p)
	}
	out := make([]byte, 0, n)
	out = binary.BigEndian.AppendUint32(out, uint32(len(m.Part)))
	out = append(out, m.Part...)
	for _, p := range m.Pieces {
		out = binary.BigEndian.AppendUint32(out, uint32(len(p)))
		out = append(out, p...)
	}
	return out
}

// DecodeLivePartMessage splits untrusted bytes into the part and its
// pieces (verification is content.DecodeLivePart and LivePart.CheckPiece).
func DecodeLivePartMessage(b []byte) (LivePartMessage, error) {
	var m LivePartMessage
	if len(b) > maxLivePartMessage {
		return m, fmt.Errorf("live part message: %d bytes exceeds the %d byte limit", len(b), maxLivePartMessage)
	}
	first := true
	for len(b) > 0 {
		if len(b) < 4 {
			return LivePartMessage{}, errors.New("live part message: truncated length")
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return LivePartMessage{}, fmt.Errorf("live part message: a %d-byte field in %d remaining bytes", n, len(b))
		}
		if first {
			m.Part, first = b[:n:n], false
		} else {
			if len(m.Pieces) == 16 {
				return LivePartMessage{}, errors.New("live part message: more than 16 pieces")
			}
			m.Pieces = append(m.Pieces, b[:n:n])
		}
		b = b[n:]
	}
	if first {
		return LivePartMessage{}, errors.New("live part message: empty")
	}
	return m, nil
}
