package browsertest

import (
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Authenticator is a person's authenticator app for a TOTP secret read off a page: it never gives a
// step it gave already (Ony refuses a spent code).
type Authenticator struct {
	Secret string
	last   int64
}

// Code is the next code to type. Ony accepts the step before and after the current one (clock skew)
// and each step once: the first code is the current step's, the second the next step's, so only a
// third within the same half-minute waits. A code of now or now+1 stays valid if a step boundary
// passes before Ony reads it.
func (a *Authenticator) Code(t testing.TB) string {
	t.Helper()
	for {
		now := time.Now().Unix() / 30
		step := max(a.last+1, now)
		if step <= now+1 {
			a.last = step
			c, err := totp.GenerateCodeCustom(a.Secret, time.Unix(step*30, 0), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		time.Sleep(time.Until(time.Unix((step-1)*30, 0)) + 50*time.Millisecond)
	}
}
