// Package auth holds Ony's credential primitives: password hashing, opaque bearer tokens and
// sessions' secrets, so that no plaintext credential is ever stored.
package auth

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// PasswordIterations is the PBKDF2-HMAC-SHA256 work factor for new hashes (OWASP 2023 guidance).
const PasswordIterations = 600000

const (
	hashID      = "pbkdf2-sha256"
	saltLen     = 16
	keyLen      = 32
	minIterHash = 100000
	// An attacker who can write a hash row must not be able to make one login cost minutes of CPU.
	maxIterHash = 10000000

	minPasswordRunes = 12
	// Bounded in bytes, not runes, because the cost we protect against (request size, hashing) is in bytes.
	maxPasswordBytes = 256
)

// ErrMalformedHash means a stored password hash could not be parsed or uses parameters this
// package does not accept; it says nothing about whether the password was right.
var ErrMalformedHash = errors.New("auth: malformed password hash")

// ErrPasswordPolicy is matched (errors.Is) by every error CheckPasswordPolicy returns.
var ErrPasswordPolicy = errors.New("auth: password does not meet policy")

// PolicyError carries a message that is safe and meant to be shown to the user as is.
type PolicyError struct{ Msg string }

func (e *PolicyError) Error() string { return e.Msg }
func (e *PolicyError) Unwrap() error { return ErrPasswordPolicy }

// b64 is strict so that one hash has exactly one encoding: the parser then accepts only what
// the formatter produces, which keeps "malformed" a crisp, testable notion.
var b64 = base64.RawStdEncoding.Strict()

// HashPassword hashes password with PBKDF2-HMAC-SHA256 (600,000 iterations, 16-byte random salt,
// 32-byte key) into "$pbkdf2-sha256$i=600000$<salt>$<hash>" (raw standard base64).
func HashPassword(password string) (string, error) {
	if testFactor.Load() {
		return hashPassword(password, minIterHash)
	}
	return hashPassword(password, PasswordIterations)
}

var testFactor atomic.Bool

// UseTestWorkFactor makes every later HashPassword in this process hash at the lowest work factor a
// stored hash may have (100,000 iterations, a sixth of the cost). It is for test binaries, whose
// fixtures hash passwords by the dozen under the race detector (a quarter of org's test CPU); a hash
// records its own factor, so either kind verifies. Only tests may call it (TestWorkFactorOnlyInTests).
func UseTestWorkFactor() { testFactor.Store(true) }

// hashPassword exists so tests can use the cheapest accepted work factor; production code
// must go through HashPassword.
func hashPassword(password string, iter int) (string, error) {
	salt := make([]byte, saltLen)
	rand.Read(salt) // never fails; crashes the program instead (Go ≥ 1.24)
	key, err := pbkdf2.Key(sha256.New, password, salt, iter, keyLen)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return formatHash(iter, salt, key), nil
}

func formatHash(iter int, salt, key []byte) string {
	return "$" + hashID + "$i=" + strconv.Itoa(iter) + "$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(key)
}

type parsedHash struct {
	iter      int
	salt, key []byte
}

func parseHash(encoded string) (parsedHash, error) {
	var p parsedHash
	parts := strings.Split(encoded, "$")
	if len(parts) != 5 || parts[0] != "" || parts[1] != hashID {
		return p, ErrMalformedHash
	}
	iterStr, ok := strings.CutPrefix(parts[2], "i=")
	if !ok {
		return p, ErrMalformedHash
	}
	iter, ok := parseDecimal(iterStr, maxIterHash)
	if !ok || iter < minIterHash {
		return p, ErrMalformedHash
	}
	salt, err := decodeExact(parts[3], saltLen)
	if err != nil {
		return p, err
	}
	key, err := decodeExact(parts[4], keyLen)
	if err != nil {
		return p, err
	}
	return parsedHash{iter: iter, salt: salt, key: key}, nil
}

// parseDecimal accepts only canonical decimal (no sign, no leading zero, no spaces) up to limit,
// unlike strconv.Atoi, so that "i=+600000" or "i=0600000" are not silently equal to "i=600000".
func parseDecimal(s string, limit int) (int, bool) {
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		d := int(s[i]) - '0'
		if d < 0 || d > 9 || n > (limit-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func decodeExact(s string, n int) ([]byte, error) {
	// The decoder skips '\r' and '\n' even in strict mode; the length check rules them out.
	if len(s) != b64.EncodedLen(n) {
		return nil, ErrMalformedHash
	}
	b, err := b64.DecodeString(s)
	if err != nil || len(b) != n {
		return nil, ErrMalformedHash
	}
	return b, nil
}

// VerifyPassword reports whether password matches encoded. A malformed or unsupported encoding,
// including an iteration count outside [100000, 10000000], yields ErrMalformedHash.
func VerifyPassword(encoded, password string) (bool, error) {
	p, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	key, err := pbkdf2.Key(sha256.New, password, p.salt, p.iter, keyLen)
	if err != nil {
		return false, fmt.Errorf("auth: verify password: %w", err)
	}
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

// NeedsRehash reports whether encoded was made with weaker parameters than HashPassword uses now,
// so callers can upgrade it right after a successful login. An unreadable hash needs a rehash too.
func NeedsRehash(encoded string) bool {
	p, err := parseHash(encoded)
	return err != nil || p.iter < PasswordIterations
}

// CheckPasswordPolicy returns a *PolicyError whose message can be shown to the user when pw is
// too short (under 12 characters), too long (over 256 bytes), not UTF-8, or one repeated character.
func CheckPasswordPolicy(pw string) error {
	if !utf8.ValidString(pw) {
		return &PolicyError{Msg: "Password contains invalid characters."}
	}
	if utf8.RuneCountInString(pw) < minPasswordRunes {
		return &PolicyError{Msg: fmt.Sprintf("Password must be at least %d characters long.", minPasswordRunes)}
	}
	if len(pw) > maxPasswordBytes {
		return &PolicyError{Msg: fmt.Sprintf("Password must be at most %d bytes long.", maxPasswordBytes)}
	}
	first, _ := utf8.DecodeRuneInString(pw)
	if strings.Trim(pw, string(first)) == "" {
		return &PolicyError{Msg: "Password must not be a single repeated character."}
	}
	return nil
}

// passwordAlphabet is Crockford's base32 in lower case: 32 symbols without i, l, o or u, so a
// password read aloud or off a screen is not mistyped, and 32 divides 256 so byte%32 is unbiased.
const passwordAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// GeneratePassword returns a random one-time password such as "7kq2m-x0h9d-rw4tz-c8nbe":
// 4 groups of 5 symbols from a 32-symbol alphabet, i.e. 100 bits.
func GeneratePassword() (string, error) {
	const groups, groupLen = 4, 5
	raw := make([]byte, groups*groupLen)
	rand.Read(raw)
	var b strings.Builder
	b.Grow(groups*groupLen + groups - 1)
	for i, c := range raw {
		if i > 0 && i%groupLen == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(passwordAlphabet[c%32])
	}
	return b.String(), nil
}
