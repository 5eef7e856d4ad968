package coordinatordb

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"
)

//go:embed common-passwords.txt
var commonPasswordList string

// commonPasswords is commonPasswordList as a set (built on first use).
var commonPasswords = sync.OnceValue(func() map[string]bool {
	set := make(map[string]bool)
	for line := range strings.Lines(commonPasswordList) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			set[line] = true
		}
	}
	return set
})

// ValidatePassword is the policy a new password must pass (sign-up and
// the bootstrap admin), after NIST SP 800-63B: length is what makes a
// password strong, so there are no composition rules, but a password
// attackers try first is refused:
//   - 10 to 1024 bytes;
//   - not on the bundled list of common passwords, compared in lower case
//     and also with trailing digits and symbols removed ("Dragon2024!" is
//     "dragon");
//   - not the username, and not containing it (case-insensitive): the
//     username is public, so it is the first guess.
func ValidatePassword(username, password string) error {
	if len(password) < minPasswordLen || len(password) > maxPasswordLen {
		return &PasswordError{fmt.Sprintf("want %d to %d bytes, got %d; a few unrelated words make a good one", minPasswordLen, maxPasswordLen, len(password))}
	}
	lower := strings.ToLower(password)
	if common := commonPasswords(); common[lower] || common[strings.TrimRight(lower, "0123456789!@#$%^&*()-_=+.?,;: ")] {
		return &PasswordError{"it is one of the most common passwords, which are guessed first; choose another"}
	}
	if u := strings.ToLower(username); u != "" && strings.Contains(lower, u) {
		return &PasswordError{"it contains the username, which is public; choose one without it"}
	}
	return nil
}
