package config

import "testing"

// Test vectors published by AWS and jwt.io; they are not secrets.
const (
	exampleKeyID  = "AKIAIOSFODNN7EXAMPLE"
	exampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	exampleJWT    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

type Settings struct {
	Password string `json:"password"`
	APIKey   string `json:"api_key"`
	Token    string
}

func TestLoad(t *testing.T) {
	s := Settings{Password: "", APIKey: "test", Token: ""}
	if s.Password != "" {
		t.Fatal("password should be empty")
	}
	id := "561f5da9-76df-41a1-9b9f-129e1c63173f"
	sum := "7f9c8491f0c377897e904494fa1466c72e2e42c923043f1ba7847ff09d438c4a"
	_ = id + sum
}
