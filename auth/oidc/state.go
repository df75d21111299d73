package oidc

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// flowState is what the browser carries between Begin and Finish. It is sealed (AES-256-GCM with the
// caller's key), not only signed, because it holds the PKCE verifier: someone who reads the code from
// a log or a Referer must not read the verifier from the same place.
type flowState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
	Expires  int64  `json:"e"` // unix seconds
}

// stateAAD binds a sealed value to this use; a blob sealed for something else under the same key
// does not open here.
const stateAAD = "ony/oidc-state/v1"

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("oidc: state key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func sealState(aead cipher.AEAD, rand io.Reader, st flowState) (string, error) {
	plain, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(stateAAD))), nil
}

var errBadState = errors.New("oidc: state cookie invalid")

func openState(aead cipher.AEAD, v string, now time.Time) (flowState, error) {
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) < aead.NonceSize() {
		return flowState{}, errBadState
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(stateAAD))
	if err != nil {
		return flowState{}, errBadState
	}
	var st flowState
	if err := json.Unmarshal(plain, &st); err != nil || st.State == "" || st.Nonce == "" || st.Verifier == "" {
		return flowState{}, errBadState
	}
	if now.Unix() >= st.Expires {
		return flowState{}, fmt.Errorf("oidc: state cookie expired")
	}
	return st, nil
}
