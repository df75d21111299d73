package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestNewToken(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{DeviceTokenPrefix, SessionIDPrefix, "x", "a_b_9_"} {
		t.Run(prefix, func(t *testing.T) {
			t.Parallel()
			a, err := NewToken(prefix)
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewToken(prefix)
			if err != nil {
				t.Fatal(err)
			}
			if a.Plain == b.Plain || bytes.Equal(a.Hash, b.Hash) {
				t.Fatal("two new tokens are equal")
			}
			if !strings.HasPrefix(a.Plain, prefix) || len(a.Plain) != len(prefix)+43 {
				t.Errorf("Plain = %q, want %q + 43 characters", a.Plain, prefix)
			}
			if err := ParseToken(a.Plain, prefix); err != nil {
				t.Errorf("ParseToken(NewToken) = %v", err)
			}
			if !bytes.Equal(a.Hash, HashToken(a.Plain)) || len(a.Hash) != sha256.Size {
				t.Errorf("Hash = %x, want HashToken(Plain)", a.Hash)
			}
		})
	}
}

func TestNewTokenBadPrefix(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"", "ONY_", "ony-dev-", "ony dev", "ony_dév_", strings.Repeat("a", 33)} {
		t.Run(prefix, func(t *testing.T) {
			t.Parallel()
			if _, err := NewToken(prefix); err == nil {
				t.Errorf("NewToken(%q) succeeded", prefix)
			}
		})
	}
}

func TestParseToken(t *testing.T) {
	t.Parallel()
	const body = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" // bytes 0..31
	tests := []struct {
		name, plain, prefix string
		ok                  bool
	}{
		{"valid device", "ony_dev_" + body, DeviceTokenPrefix, true},
		{"valid session", "ony_ses_" + body, SessionIDPrefix, true},
		{"url alphabet", "ony_dev_" + strings.Repeat("-_", 21) + "w", DeviceTokenPrefix, true},
		{"session as device", "ony_ses_" + body, DeviceTokenPrefix, false},
		{"no prefix", body, DeviceTokenPrefix, false},
		{"prefix case", "ONY_DEV_" + body, DeviceTokenPrefix, false},
		{"prefix only", "ony_dev_", DeviceTokenPrefix, false},
		{"empty", "", DeviceTokenPrefix, false},
		{"short", "ony_dev_" + body[:42], DeviceTokenPrefix, false},
		{"long", "ony_dev_" + body + "A", DeviceTokenPrefix, false},
		{"padded", "ony_dev_" + body + "=", DeviceTokenPrefix, false},
		{"std alphabet plus", "ony_dev_+" + body[1:], DeviceTokenPrefix, false},
		{"std alphabet slash", "ony_dev_/" + body[1:], DeviceTokenPrefix, false},
		{"space", "ony_dev_ " + body[1:], DeviceTokenPrefix, false},
		{"newline", "ony_dev_\n" + body[1:], DeviceTokenPrefix, false},
		{"trailing newline", "ony_dev_" + body + "\n", DeviceTokenPrefix, false},
		{"non-canonical last char", "ony_dev_" + body[:42] + "h", DeviceTokenPrefix, false},
		{"non-ascii", "ony_dev_é" + body[2:], DeviceTokenPrefix, false},
		{"double prefix", "ony_dev_ony_dev_" + body[8:], DeviceTokenPrefix, true}, // the body may itself look like a prefix
		{"bad expected prefix", "ony_dev_" + body, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ParseToken(tc.plain, tc.prefix)
			if tc.ok && err != nil {
				t.Errorf("ParseToken(%q) = %v, want nil", tc.plain, err)
			}
			if !tc.ok {
				if !errors.Is(err, ErrMalformedToken) {
					t.Errorf("ParseToken(%q) = %v, want ErrMalformedToken", tc.plain, err)
				} else if len(tc.plain) > len(tc.prefix) && strings.Contains(err.Error(), tc.plain[len(tc.prefix):]) {
					t.Errorf("error %q echoes the token", err)
				}
			}
		})
	}
}

func TestHashToken(t *testing.T) {
	t.Parallel()
	// FIPS 180-2 appendix B.1: SHA-256("abc").
	if got := hex.EncodeToString(HashToken("abc")); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashToken(abc) = %s", got)
	}
	tok, err := NewToken(DeviceTokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(HashToken(tok.Plain), HashToken(tok.Plain)) {
		t.Error("HashToken is not stable")
	}
	// The prefix is part of what is hashed: a session id's hash never matches a device token's.
	body := tok.Plain[len(DeviceTokenPrefix):]
	if bytes.Equal(HashToken(DeviceTokenPrefix+body), HashToken(SessionIDPrefix+body)) {
		t.Error("HashToken ignores the prefix")
	}
}

func TestCallbackKey(t *testing.T) {
	t.Parallel()
	a, err := NewToken(DeviceTokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewToken(DeviceTokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	ka := CallbackKey(a.Plain)
	if len(ka) != 32 {
		t.Fatalf("len(CallbackKey) = %d, want 32", len(ka))
	}
	if !bytes.Equal(ka, CallbackKey(a.Plain)) {
		t.Error("CallbackKey is not deterministic")
	}
	if bytes.Equal(ka, CallbackKey(b.Plain)) {
		t.Error("CallbackKey is the same for two tokens")
	}
	if bytes.Equal(ka, a.Hash) {
		t.Error("CallbackKey equals the stored token hash")
	}
	m := hmac.New(sha256.New, []byte(a.Plain))
	m.Write([]byte("ony callback signing v1"))
	if want := m.Sum(nil); !bytes.Equal(ka, want) {
		t.Errorf("CallbackKey = %x, want %x", ka, want)
	}
}

func TestTokenRedacted(t *testing.T) {
	t.Parallel()
	tok, err := NewToken(DeviceTokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	secret := tok.Plain[len(DeviceTokenPrefix):]
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("minted", "token", tok)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("minted", "token", tok)
	for _, s := range []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok),
		fmt.Sprintf("%v", &tok), fmt.Sprintf("%v", []Token{tok}), logged.String(),
	} {
		if strings.Contains(s, secret) {
			t.Errorf("formatted token leaks its secret: %s", s)
		}
		if !strings.Contains(s, DeviceTokenPrefix) {
			t.Errorf("formatted token lost its prefix: %s", s)
		}
	}
}
