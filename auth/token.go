package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Token prefixes name the kind of credential, so a leaked string is recognisable (secret
// scanners, support) and a token of one kind is never accepted where another is expected.
const (
	DeviceTokenPrefix = "ony_dev_"
	SessionIDPrefix   = "ony_ses_"
	// DecisionTokenPrefix marks single-use decision tokens carried by chat buttons, SMS and calls.
	DecisionTokenPrefix = "ony_dt_"
)

const (
	tokenBytes   = 32
	tokenBodyLen = 43 // base64url without padding of 32 bytes
	maxPrefixLen = 32
)

// ErrMalformedToken means the string cannot be a token of the expected kind; callers return it
// before touching the database, so garbage never costs a query.
var ErrMalformedToken = errors.New("auth: malformed token")

var tokenEncoding = base64.RawURLEncoding.Strict()

// Token is a freshly minted bearer credential: Plain goes to the holder once, Hash is what is stored.
type Token struct {
	Plain string
	Hash  []byte
}

// String, GoString and LogValue keep the plaintext out of logs and error messages when a Token
// is printed whole by mistake; read Plain explicitly to hand it out.
func (t Token) String() string       { return redactToken(t.Plain) }
func (t Token) GoString() string     { return "auth.Token{" + redactToken(t.Plain) + "}" }
func (t Token) LogValue() slog.Value { return slog.StringValue(redactToken(t.Plain)) }

func redactToken(plain string) string {
	// Only the prefix survives: it names the kind of token and is not secret.
	prefix := ""
	if n := len(plain) - tokenBodyLen; n > 0 && validPrefix(plain[:n]) {
		prefix = plain[:n]
	}
	return prefix + "[REDACTED]"
}

// NewToken returns a new token "<prefix><base64url of 32 random bytes>" and its hash. The prefix
// must be 1–32 bytes of [a-z0-9_].
func NewToken(prefix string) (Token, error) {
	if !validPrefix(prefix) {
		return Token{}, fmt.Errorf("auth: invalid token prefix %q", prefix)
	}
	raw := make([]byte, tokenBytes)
	rand.Read(raw)
	plain := prefix + tokenEncoding.EncodeToString(raw)
	return Token{Plain: plain, Hash: HashToken(plain)}, nil
}

func validPrefix(prefix string) bool {
	if prefix == "" || len(prefix) > maxPrefixLen {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// HashToken returns SHA-256 of the whole plain token, the value to store and look up. A fast
// unsalted hash is right here, unlike for passwords: the token carries 256 random bits, so there is
// nothing to brute-force or precompute, and lookup by hash needs it to be deterministic.
func HashToken(plain string) []byte {
	sum := sha256.Sum256([]byte(plain))
	return sum[:]
}

// ParseToken checks that plain is "<prefix><43 base64url characters>" encoding exactly 32 bytes.
// It returns ErrMalformedToken (never echoing plain) otherwise.
func ParseToken(plain, prefix string) error {
	if !validPrefix(prefix) {
		return fmt.Errorf("%w: invalid expected prefix", ErrMalformedToken)
	}
	body, ok := strings.CutPrefix(plain, prefix)
	if !ok {
		return fmt.Errorf("%w: wrong prefix", ErrMalformedToken)
	}
	if len(body) != tokenBodyLen {
		return fmt.Errorf("%w: wrong length", ErrMalformedToken)
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return fmt.Errorf("%w: invalid character", ErrMalformedToken)
		}
	}
	// Strict decoding rejects a non-zero final 2 bits, so each token has exactly one spelling.
	if raw, err := tokenEncoding.DecodeString(body); err != nil || len(raw) != tokenBytes {
		return fmt.Errorf("%w: not canonical", ErrMalformedToken)
	}
	return nil
}

const callbackKeyLabel = "ony callback signing v1"

// CallbackKey derives the key that signs callbacks sent to the agent holding plainToken:
// HMAC-SHA256(key = plainToken, msg = "ony callback signing v1"). The agent derives the same key
// from its own token, while the server may store it: it is one-way, so it cannot be used to call the API.
func CallbackKey(plainToken string) []byte {
	m := hmac.New(sha256.New, []byte(plainToken))
	m.Write([]byte(callbackKeyLabel))
	return m.Sum(nil)
}
