package wire

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// stdDecodeLookup is what DecodeJSONLimit does with a lookup body.
func stdDecodeLookup(b []byte) (LookupRequest, bool) {
	var req LookupRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if dec.Decode(&req) != nil {
		return req, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, false
	}
	return req, true
}

var lookupBodies = []string{
	`{"video":"` + compatVideoHex + `","rendition":1,"from":3,"count":8}`,
	` { "video" : "` + compatVideoHex + `" , "rendition" : 0 , "from" : 0 , "count" : 1 , "viewer_id" : "` + strings.Repeat("ab", 32) + `" , "region" : "eu" , "exclude" : [ "x" , "y" ] } ` + "\n",
	`{"video":"` + compatVideoHex + `","count":2,"exclude":[]}`,
	`{}`,
	`{"video":"` + strings.ToUpper(compatVideoHex) + `","from":-0,"count":-12}`,
}

// The fast path accepts the usual bodies and decodes them exactly as
// encoding/json does; unusual ones it leaves to encoding/json.
func TestParseLookupRequestMatchesEncodingJSON(t *testing.T) {
	for _, body := range lookupBodies {
		var got LookupRequest
		if !parseLookupRequest([]byte(body), &got) {
			t.Errorf("%s: not taken by the fast path", body)
			continue
		}
		if want, ok := stdDecodeLookup([]byte(body)); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fast path %+v, encoding/json %+v (ok %v)", body, got, want, ok)
		}
	}
	for _, body := range []string{
		`{"Video":"` + compatVideoHex + `"}`, // encoding/json matches keys case-insensitively
		`{"count":1,"count":2}`,              // repeated key
		`{"region":"caf\u00e9"}`,             // an escape
		`{"count":1.0}`, `{"count":01}`, `{"count":1e3}`, `{"count":1234567890123456789}`,
		`{"viewer_id":null}`, `{"exclude":null}`, `{"count":1}x`, `{"count":1,}`, `{"count":1`,
		"{\"region\":\"\xff\"}", `{"video":"abc"}`, ``,
	} {
		var got LookupRequest
		if parseLookupRequest([]byte(body), &got) {
			t.Errorf("%s: taken by the fast path as %+v", body, got)
		}
	}
}

// Over HTTP, bodies the fast path leaves alone get DecodeJSONLimit's own
// answers: its error messages, and 413 past MaxLookupBody.
func TestDecodeLookupRequestFallsBackWithTheSameAnswers(t *testing.T) {
	for body, want := range map[string]int{
		`{"video":"abc","count":1}`: 400,
		`{"video":"` + compatVideoHex + `","count":1,"exclude":["` + strings.Repeat("a", MaxLookupBody) + `"]}`: 413,
		`{"video":"` + compatVideoHex + `","count":1,"exclude":["` + strings.Repeat("a", 5000) + `"]}`:          200,
		lookupBodies[0]: 200,
	} {
		for _, fast := range []bool{true, false} {
			rec := httptest.NewRecorder()
			hreq := httptest.NewRequest("POST", PathLookup, strings.NewReader(body))
			hreq.Header.Set("Content-Type", "application/json")
			var req LookupRequest
			var ok bool
			if fast {
				ok = DecodeLookupRequest(rec, hreq, &req)
			} else {
				ok = DecodeJSONLimit(rec, hreq, &req, MaxLookupBody)
			}
			if ok != (want == 200) || (!ok && rec.Code != want) {
				t.Errorf("%.60s… fast %v: ok %v, status %d; want %d", body, fast, ok, rec.Code, want)
			}
		}
	}
	// The same refusal text.
	for _, body := range []string{`{"video":"abc","count":1}`, `{"count":1}}`, `{"colour":1}`} {
		var texts []string
		for _, fast := range []bool{true, false} {
			rec := httptest.NewRecorder()
			hreq := httptest.NewRequest("POST", PathLookup, strings.NewReader(body))
			hreq.Header.Set("Content-Type", "application/json")
			var req LookupRequest
			if fast {
				DecodeLookupRequest(rec, hreq, &req)
			} else {
				DecodeJSONLimit(rec, hreq, &req, MaxLookupBody)
			}
			texts = append(texts, rec.Body.String())
		}
		if texts[0] != texts[1] || texts[0] == "" {
			t.Errorf("%s: fast path answered %q, DecodeJSONLimit %q", body, texts[0], texts[1])
		}
	}
}

// FuzzDecodeLookupRequest: whatever the fast path accepts, encoding/json
// decodes to the same request.
func FuzzDecodeLookupRequest(f *testing.F) {
	for _, b := range lookupBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got LookupRequest
		if !parseLookupRequest(b, &got) {
			return
		}
		want, ok := stdDecodeLookup(b)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast path %+v, encoding/json %+v (ok %v)", b, got, want, ok)
		}
	})
}
