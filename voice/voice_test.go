package voice_test

import (
	"strings"
	"testing"

	"github.com/ony-ai/ony/voice"
)

func TestMaskPhone(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"+15550100001":           "+1••••••0001",
		"+351912345678":          "+3•••••••5678",
		"+1234567":               "+1••4567",
		"+1 555 0100":            "+********00",
		"+12":                    "+12",
		"12":                     "12",
		"":                       "",
		"+":                      "+",
		"555-0100":               "******00",
		"15550100199":            "*********99",
		strings.Repeat("1", 100): "(100 characters)",
	} {
		if got := voice.MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

// A number an operator types is cleaned and checked; a bad one is refused without being shown.
func TestPhoneNormalize(t *testing.T) {
	t.Parallel()
	if got, err := voice.Phone.Normalize(" +15550100001 "); err != nil || got != "+15550100001" {
		t.Errorf("Normalize = %q, %v", got, err)
	}
	for _, bad := range []string{"15550100001", "+1 555 0100 01", "+0155501001", "+123456", "+1234567890123456"} {
		_, err := voice.Phone.Normalize(bad)
		if err == nil || strings.Contains(err.Error(), bad[:len(bad)-2]) {
			t.Errorf("Normalize(%q) = %v; want an error that masks the number", bad, err)
		}
	}
}
