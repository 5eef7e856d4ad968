package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// MaxJSONBody bounds every JSON request body (a full inventory heartbeat of
// a 1.5 GB edge is well under this).
const MaxJSONBody = 8 << 20

// ErrorBody is the JSON body of every non-2xx response.
type ErrorBody struct {
	Error string `json:"error"`
}

// WriteError sends status with a JSON {"error": message}.
func WriteError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: fmt.Sprintf(format, args...)})
}

// WriteJSON sends v as a 200 JSON response.
func WriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Per-route body limits: each state-changing route decodes with the
// smallest that fits what a legitimate client sends, so a client cannot
// make the server buffer more than its route needs.
const (
	// MaxSmallJSONBody fits credentials (a 1 KiB password at most), a
	// binding, a price or a grant: a few short fields.
	MaxSmallJSONBody = 16 << 10
	// MaxLookupBody fits a lookup with the longest Exclude list the
	// coordinator takes (1024 node ids of 66 bytes each) and its window.
	MaxLookupBody = 128 << 10
	// MaxSettlementPairJSON bounds one encoded SettlementPair (about 600
	// bytes with the largest numbers); a settle route takes its batch
	// limit times this.
	MaxSettlementPairJSON = 1 << 10
)

// CheckJSONContentType refuses a request body that is not declared as
// application/json (parameters such as charset are allowed) with 415.
// HTML forms cannot send that type cross-site without a CORS preflight,
// which this server never grants, so a strict type on state-changing
// routes closes form-based CSRF (a login or sign-up from another site)
// even where no cookie or CSRF header is involved. On refusal it has
// already written the answer and returns false.
func CheckJSONContentType(w http.ResponseWriter, r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		WriteError(w, http.StatusUnsupportedMediaType, "Content-Type %q: this route takes a JSON body; send Content-Type: application/json", ct)
		return false
	}
	return true
}

// DecodeJSON reads a request body of at most MaxJSONBody bytes into v,
// rejecting a Content-Type other than application/json (415), unknown
// fields and trailing data. On failure it has already written a 4xx and
// returns false.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	return DecodeJSONLimit(w, r, v, MaxJSONBody)
}

// DecodeJSONLimit is DecodeJSON with a body limit of limit bytes: smaller
// for routes with small bodies, larger for the few that outgrow
// MaxJSONBody (publishing a catalogue, a full settlement batch).
func DecodeJSONLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	if !CheckJSONContentType(w, r) {
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, http.StatusRequestEntityTooLarge, "request body over %d bytes", limit)
		} else {
			WriteError(w, http.StatusBadRequest, "malformed JSON body: %v", err)
		}
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		WriteError(w, http.StatusBadRequest, "malformed JSON body: trailing data after the object")
		return false
	}
	return true
}

// APIError is a non-2xx answer from another role.
type APIError struct {
	Status  int
	Message string
	URL     string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.URL, e.Status, http.StatusText(e.Status), e.Message)
}

// IsNotFound reports whether err is a 404 from another role.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// readError turns a non-2xx response into an *APIError.
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var body ErrorBody
	msg := string(b)
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		msg = body.Error
	}
	return &APIError{Status: resp.StatusCode, Message: msg, URL: resp.Request.URL.String()}
}
