package wire

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// StatusError is an error a server answers with its own HTTP status: the
// message says what was wrong with the request and what to send instead.
// Any other error a handler meets is the server's fault (500).
type StatusError struct {
	Status int
	Msg    string
}

func (e *StatusError) Error() string { return e.Msg }

// Errorf returns a *StatusError with status and a formatted message.
func Errorf(status int, format string, args ...any) error {
	return &StatusError{status, fmt.Sprintf(format, args...)}
}

// BadRequest is Errorf(400, ...).
func BadRequest(format string, args ...any) error {
	return Errorf(http.StatusBadRequest, format, args...)
}

// NotFound is Errorf(404, ...).
func NotFound(format string, args ...any) error {
	return Errorf(http.StatusNotFound, format, args...)
}

// StatusOf maps err to its HTTP status and message: a *StatusError's own,
// else 500 with the error text.
func StatusOf(err error) (int, string) {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status, se.Msg
	}
	return http.StatusInternalServerError, err.Error()
}

// WriteErr answers err with StatusOf's status and message.
func WriteErr(w http.ResponseWriter, err error) {
	status, msg := StatusOf(err)
	WriteError(w, status, "%s", msg)
}

// WriteEmpty answers 200 with an empty JSON object (a state change done).
func WriteEmpty(w http.ResponseWriter) { WriteJSON(w, struct{}{}) }

// CheckNodeID validates a node id: an ed25519 public key as 64 lowercase
// hex characters (edge, origin and viewer ids are all such keys).
func CheckNodeID(id NodeID) error {
	if len(id) != 64 || strings.Trim(string(id), "0123456789abcdef") != "" {
		return fmt.Errorf("node id %q: want 64 lowercase hex characters (an ed25519 public key)", id)
	}
	return nil
}
