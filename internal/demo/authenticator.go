package demo

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	totpsvc "github.com/ony-ai/ony/auth/totp"
)

// authenticators are the simulated people's authenticator apps: each enrols in TOTP when the demo
// starts, and types a fresh code on the keypad when approving needs one (high and critical risks).
type authenticators struct {
	mu     sync.Mutex
	secret map[string]string // user id → TOTP secret
	last   map[string]int64  // user id → the last 30 s step it gave (Ony refuses a spent code)
}

// enrol turns TOTP on for the person, as they would on their profile page.
func (a *authenticators) enrol(ctx context.Context, svc *totpsvc.Service, orgID, userID, account string) error {
	e, err := svc.Begin(ctx, orgID, userID, account)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.secret[userID] = e.Secret
	a.mu.Unlock()
	code, ok := a.code(userID)
	if !ok {
		return fmt.Errorf("no authenticator for %s", account)
	}
	return svc.Confirm(ctx, orgID, userID, code)
}

// code is the person's next code: the current step's, or the next one's if that was given already
// (Ony accepts one step either side); "" and false when both were given.
func (a *authenticators) code(userID string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	secret, ok := a.secret[userID]
	if !ok {
		return "", false
	}
	now := time.Now().Unix() / 30
	step := max(a.last[userID]+1, now)
	if step > now+1 {
		return "", false
	}
	c, err := totp.GenerateCodeCustom(secret, time.Unix(step*30, 0), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", false
	}
	a.last[userID] = step
	return c, true
}
