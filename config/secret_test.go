package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// canary is planted in every secret; no error or printed output may contain it.
const canary = "CANARY7f3a"

func assertNoCanary(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, canary) {
		t.Errorf("%s leaks the secret:\n%s", what, s)
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		env  map[string]string
	}{
		{"bad database scheme", "database: {url: 'mysql://u:" + canary + "@h/d'}\n", nil},
		{"bad redis scheme", "redis: {url: 'memcache://" + canary + "'}\n", nil},
		{"bad keyring keys", "keyring:\n  keys: ['v1:" + canary + "', '" + canary + "', 'v1:" + canary + "==']\n", nil},
		{"secret of wrong type", "database:\n  url: ['" + canary + "']\nredis:\n  url: {x: " + canary + "}\n", nil},
		{"secret as section", "database: 'postgres://u:" + canary + "@h/d'\n", nil},
		{"env bad scheme", "", map[string]string{"ONY_DATABASE_URL": "mysql://" + canary}},
		{"env bad keys", "", map[string]string{"ONY_KEYRING_KEYS": canary + ",v2:" + canary}},
		{"env both set", "", map[string]string{"ONY_REDIS_URL": canary, "ONY_REDIS_URL_FILE": "/nonexistent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, list := loadErrors(t, tt.yaml, tt.env)
			assertNoCanary(t, "Error()", (&Errors{List: list}).Error())
		})
	}

	t.Run("from _FILE", func(t *testing.T) {
		t.Parallel()
		secret := writeTemp(t, "db", "mysql://u:"+canary+"@h/d\n")
		keys := writeTemp(t, "keys", "v1:"+canary+"\n")
		_, list := loadErrors(t, "", map[string]string{"ONY_DATABASE_URL_FILE": secret, "ONY_KEYRING_KEYS_FILE": keys})
		assertNoCanary(t, "Error()", (&Errors{List: list}).Error())
		if fe := findError(t, list, "database.url"); fe.Pos() != "ONY_DATABASE_URL_FILE" {
			t.Errorf("Pos = %q, want ONY_DATABASE_URL_FILE", fe.Pos())
		}
	})
}

func TestSecretsNotPrinted(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "", map[string]string{
		"ONY_DATABASE_URL": "postgres://u:" + canary + "@h/d",
		"ONY_REDIS_URL":    "redis://:" + canary + "@h",
	})
	// Keyring keys are validated, so plant the canary after loading.
	c.Keyring.Keys = []Secret{Secret(canary)}

	red, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	assertNoCanary(t, "Redacted()", string(red))
	if n := strings.Count(string(red), mask); n != 3 {
		t.Errorf("Redacted() masks %d values, want 3:\n%s", n, red)
	}

	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	assertNoCanary(t, "json.Marshal", string(js))

	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s"} {
		assertNoCanary(t, verb+" of *Config", fmt.Sprintf(verb, c))
		assertNoCanary(t, verb+" of Config", fmt.Sprintf(verb, *c))
		assertNoCanary(t, verb+" of Secret", fmt.Sprintf(verb, c.Database.URL))
	}

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(h).Info("cfg", "url", c.Database.URL, "cfg", c)
	}
	assertNoCanary(t, "slog", buf.String())

	if c.Database.URL.Value() != "postgres://u:"+canary+"@h/d" {
		t.Error("Value() does not return the secret")
	}
}

func TestSecretString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    Secret
		want string
	}{
		{"", ""},
		{"x", "******"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		if got := fmt.Sprintf("%q", tt.s); got != fmt.Sprintf("%q", tt.want) {
			t.Errorf("%%q = %s", got)
		}
		js, _ := json.Marshal(tt.s)
		if string(js) != fmt.Sprintf("%q", tt.want) {
			t.Errorf("MarshalJSON = %s", js)
		}
		y, _ := tt.s.MarshalYAML()
		if y != tt.want {
			t.Errorf("MarshalYAML = %v", y)
		}
	}
}
