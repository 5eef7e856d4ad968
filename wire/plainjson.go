package wire

import (
	"math"

	"github.com/swarmcast/swarmcast/content"
)

// plainJSON scans the plain JSON subset the hot request parsers accept
// (ParseLookupRequest, ParseHeartbeatRequest): objects whose keys are
// known and appear once, arrays, strings of printable ASCII without
// escapes, integers in plain decimal, true and false; no nulls, no
// floats. Every method reports false on anything else, and the callers
// then leave the body to encoding/json, so accepting less is always safe
// and accepting more is the only way to be wrong (the differential fuzz
// targets check each parser against encoding/json).
type plainJSON struct {
	b []byte
	i int
}

// object reads an object, handing each key to field, which reads the
// key's value and returns the key's bit (distinct per key: a repeated
// key refuses, since encoding/json's rules then decide) and whether the
// key is known and its value parsed.
func (p *plainJSON) object(field func(key []byte) (bit uint8, ok bool)) bool {
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return true
	}
	var seen uint8
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return false
		}
		bit, ok := field(key)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if p.byte('}') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// array reads an array, each element with elem.
func (p *plainJSON) array(elem func() bool) bool {
	if !p.byte('[') {
		return false
	}
	if p.byte(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if p.byte(']') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// end reports whether only whitespace is left.
func (p *plainJSON) end() bool {
	p.space()
	return p.i == len(p.b)
}

func (p *plainJSON) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *plainJSON) peek() byte {
	p.space()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// byte consumes c (after whitespace) if it is next.
func (p *plainJSON) byte(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (p *plainJSON) str() ([]byte, bool) {
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
func (p *plainJSON) int() (int, bool) {
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

// int64 reads an integer in plain decimal (see int).
func (p *plainJSON) int64() (int64, bool) {
	v, ok := p.int()
	return int64(v), ok
}

// smallInt reads an integer (see int) that fits an int on every platform
// (a rendition, segment or shard index).
func (p *plainJSON) smallInt() (int, bool) {
	v, ok := p.int()
	return v, ok && v >= math.MinInt32 && v <= math.MaxInt32
}

// bool reads true or false.
func (p *plainJSON) bool() (bool, bool) {
	p.space()
	rest := p.b[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		p.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

// videoID reads a video id (64 hex digits).
func (p *plainJSON) videoID() (content.VideoID, bool) {
	s, ok := p.str()
	if !ok || len(s) != 64 {
		return content.VideoID{}, false
	}
	id, err := content.ParseVideoID(string(s))
	return id, err == nil
}
