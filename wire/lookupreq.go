package wire

import (
	"bytes"
	"io"
	"net/http"
	"sync"
)

// DecodeLookupRequest is DecodeJSONLimit(w, r, req, MaxLookupBody) for the
// hottest route: a body of the usual shape (the keys of LookupRequest
// spelled as it spells them, each once; strings of printable ASCII without
// escapes; integers in plain decimal) is parsed without reflection, and
// anything else goes to DecodeJSONLimit over the same bytes, so every
// answer, refusal and error message is the one DecodeJSONLimit gives.
func DecodeLookupRequest(w http.ResponseWriter, r *http.Request, req *LookupRequest) bool {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && !CheckJSONContentType(w, r) {
		return false
	}
	bp := lookupBodyPool.Get().(*[]byte)
	defer lookupBodyPool.Put(bp)
	buf := (*bp)[:cap(*bp)]
	n, err := io.ReadFull(r.Body, buf)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		// The whole body is in buf.
		if parseLookupRequest(buf[:n], req) {
			return true
		}
		*req = LookupRequest{}
		r.Body = io.NopCloser(bytes.NewReader(buf[:n]))
		return DecodeJSONLimit(w, r, req, MaxLookupBody)
	}
	// A long body (a long Exclude list), or a read error: the general
	// decoder reads what was read and the rest.
	*req = LookupRequest{}
	r.Body = readCloser{io.MultiReader(bytes.NewReader(buf[:n]), r.Body), r.Body}
	return DecodeJSONLimit(w, r, req, MaxLookupBody)
}

// lookupBodyPool holds buffers for lookup bodies; a body that does not fit
// one takes the general decoder.
var lookupBodyPool = sync.Pool{New: func() any { b := make([]byte, 0, LookupFastPathMaxBody); return &b }}

type readCloser struct {
	io.Reader
	io.Closer
}

// parseLookupRequest parses b into req if b is a JSON object of the plain
// shape DecodeLookupRequest describes, and reports whether it was. It
// accepts only what encoding/json (with DisallowUnknownFields) decodes to
// the same LookupRequest (FuzzDecodeLookupRequest checks this); refusing
// is always safe, since the caller then asks encoding/json.
func parseLookupRequest(b []byte, req *LookupRequest) bool {
	p := plainJSON{b: b}
	*req = LookupRequest{}
	return p.object(func(key []byte) (uint8, bool) {
		var ok bool
		switch string(key) {
		case "video":
			req.Video, ok = p.videoID()
			return 1, ok
		case "rendition":
			req.Rendition, ok = p.int()
			return 2, ok
		case "from":
			req.From, ok = p.int()
			return 4, ok
		case "count":
			req.Count, ok = p.int()
			return 8, ok
		case "viewer_id":
			var s []byte
			s, ok = p.str()
			req.ViewerID = NodeID(s)
			return 16, ok
		case "region":
			var s []byte
			s, ok = p.str()
			req.Region = string(s)
			return 32, ok
		case "exclude":
			req.Exclude = []NodeID{}
			return 64, p.array(func() bool {
				s, ok := p.str()
				req.Exclude = append(req.Exclude, NodeID(s))
				return ok
			})
		}
		return 0, false
	}) && p.end()
}

// ParseLookupRequest is DecodeLookupRequest's fast path on a whole body
// already read (a server that is not net/http): it parses b into req and
// reports true only for a body of the plain shape, for which
// DecodeLookupRequest would decode the same request; on false the caller
// leaves the request to DecodeLookupRequest, which answers every other
// body (and every refusal) as always.
func ParseLookupRequest(b []byte, req *LookupRequest) bool {
	if len(b) >= LookupFastPathMaxBody {
		return false
	}
	if !parseLookupRequest(b, req) {
		*req = LookupRequest{}
		return false
	}
	return true
}

// LookupFastPathMaxBody bounds the bodies DecodeLookupRequest and
// ParseLookupRequest parse without reflection: a body this long or longer
// (a long Exclude list) takes the general decoder.
const LookupFastPathMaxBody = 4096
