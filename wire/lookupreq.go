package wire

import (
	"bytes"
	"io"
	"net/http"
	"sync"

	"github.com/swarmcast/swarmcast/content"
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
	p := lookupParser{b: b}
	*req = LookupRequest{}
	if !p.byte('{') {
		return false
	}
	var seen uint8
	if p.peek() == '}' {
		p.i++
	} else {
		for {
			key, ok := p.str()
			if !ok || !p.byte(':') {
				return false
			}
			var bit uint8
			switch string(key) {
			case "video":
				bit = 1
				s, ok := p.str()
				if !ok || len(s) != 64 {
					return false
				}
				id, err := content.ParseVideoID(string(s))
				if err != nil {
					return false
				}
				req.Video = id
			case "rendition":
				bit = 2
				if req.Rendition, ok = p.int(); !ok {
					return false
				}
			case "from":
				bit = 4
				if req.From, ok = p.int(); !ok {
					return false
				}
			case "count":
				bit = 8
				if req.Count, ok = p.int(); !ok {
					return false
				}
			case "viewer_id":
				bit = 16
				s, ok := p.str()
				if !ok {
					return false
				}
				req.ViewerID = NodeID(s)
			case "region":
				bit = 32
				s, ok := p.str()
				if !ok {
					return false
				}
				req.Region = string(s)
			case "exclude":
				bit = 64
				if !p.byte('[') {
					return false
				}
				req.Exclude = []NodeID{}
				if p.peek() == ']' {
					p.i++
					break
				}
				for {
					s, ok := p.str()
					if !ok {
						return false
					}
					req.Exclude = append(req.Exclude, NodeID(s))
					if p.byte(']') {
						break
					}
					if !p.byte(',') {
						return false
					}
				}
			default:
				return false
			}
			if seen&bit != 0 {
				return false // a repeated key: encoding/json's rules decide
			}
			seen |= bit
			if p.byte('}') {
				break
			}
			if !p.byte(',') {
				return false
			}
		}
	}
	p.space()
	return p.i == len(p.b)
}

// lookupParser scans the plain JSON subset parseLookupRequest accepts.
type lookupParser struct {
	b []byte
	i int
}

func (p *lookupParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *lookupParser) peek() byte {
	p.space()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// byte consumes c (after whitespace) if it is next.
func (p *lookupParser) byte(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (p *lookupParser) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// int reads an integer in plain decimal (no leading zeros, fraction or
// exponent) of at most 18 digits, so it cannot overflow.
func (p *lookupParser) int() (int, bool) {
	p.space()
	neg := p.i < len(p.b) && p.b[p.i] == '-'
	if neg {
		p.i++
	}
	start := p.i
	v := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		v = v*10 + int(p.b[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	if digits == 0 || digits > 18 || (digits > 1 && p.b[start] == '0') {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		v = -v
	}
	return v, true
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
