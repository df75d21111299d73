package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// pbkdf2Block1 is an independent PBKDF2-HMAC-SHA256 (RFC 8018 §5.2) for a single 32-byte block,
// written from the RFC so the known-answer tests do not only compare crypto/pbkdf2 with itself.
func pbkdf2Block1(password, salt []byte, iter int) []byte {
	mac := hmac.New(sha256.New, password)
	mac.Write(salt)
	mac.Write([]byte{0, 0, 0, 1})
	u := mac.Sum(nil)
	t := append([]byte(nil), u...)
	for i := 1; i < iter; i++ {
		mac.Reset()
		mac.Write(u)
		u = mac.Sum(u[:0])
		for j := range t {
			t[j] ^= u[j]
		}
	}
	return t
}

func TestPBKDF2PublishedVectors(t *testing.T) {
	t.Parallel()
	// RFC 6070's inputs with HMAC-SHA256 (as widely republished), and RFC 7914 §11.
	tests := []struct {
		password, salt string
		iter, keyLen   int
		want           string
	}{
		{"password", "salt", 1, 32, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"},
		{"password", "salt", 2, 32, "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"},
		{"password", "salt", 4096, 32, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"},
		{"passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 40, "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9"},
		{"passwd", "salt", 1, 64, "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"},
		{"Password", "NaCl", 80000, 64, "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"},
	}
	for _, tc := range tests {
		t.Run(tc.password+"/"+tc.salt, func(t *testing.T) {
			t.Parallel()
			got, err := pbkdf2.Key(sha256.New, tc.password, []byte(tc.salt), tc.iter, tc.keyLen)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != tc.want {
				t.Errorf("crypto/pbkdf2 = %x, want %s", got, tc.want)
			}
			if tc.keyLen == 32 {
				if ind := pbkdf2Block1([]byte(tc.password), []byte(tc.salt), tc.iter); hex.EncodeToString(ind) != tc.want {
					t.Errorf("independent PBKDF2 = %x, want %s", ind, tc.want)
				}
			}
		})
	}
}

// TestVerifyPasswordKnownAnswer checks the whole encoding against a literal hash, cross-checked
// with the independent PBKDF2 above at the lowest accepted iteration count.
func TestVerifyPasswordKnownAnswer(t *testing.T) {
	t.Parallel()
	const (
		password = "correct horse battery staple"
		encoded  = "$pbkdf2-sha256$i=100000$b255LWthdC1zYWx0LTE2Yg$Ax10hqDiPM5RZn2NMl8CJb802LO793GLDIH/oDDtcmM"
	)
	salt := []byte("ony-kat-salt-16b")
	key := pbkdf2Block1([]byte(password), salt, 100000)
	if got := formatHash(100000, salt, key); got != encoded {
		t.Fatalf("formatHash(independent key) = %q, want %q", got, encoded)
	}
	ok, err := VerifyPassword(encoded, password)
	if err != nil || !ok {
		t.Fatalf("VerifyPassword(known answer) = %v, %v; want true, nil", ok, err)
	}
	ok, err = VerifyPassword(encoded, password+" ")
	if err != nil || ok {
		t.Fatalf("VerifyPassword(wrong password) = %v, %v; want false, nil", ok, err)
	}
}

func TestHashPasswordProduction(t *testing.T) {
	t.Parallel()
	const pw = "a perfectly fine passphrase"
	h, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\$pbkdf2-sha256\$i=600000\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(h) {
		t.Fatalf("HashPassword = %q, not in the documented format", h)
	}
	if ok, err := VerifyPassword(h, pw); err != nil || !ok {
		t.Fatalf("VerifyPassword(right) = %v, %v", ok, err)
	}
	if NeedsRehash(h) {
		t.Error("NeedsRehash(fresh hash) = true")
	}
}

func TestPasswordRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, pw, wrong string }{
		{"ascii", "correct horse battery staple", "correct horse battery stapl"},
		{"unicode", "пароль-пароль-пароль ✓", "пароль-пароль-пароль ✗"},
		{"empty", "", " "},
		{"case", "CaseSensitive-Password", "casesensitive-password"},
		{"nul", "a\x00b", "a\x00c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := hashPassword(tc.pw, minIterHash)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := VerifyPassword(h, tc.pw); err != nil || !ok {
				t.Errorf("VerifyPassword(right) = %v, %v; want true, nil", ok, err)
			}
			if ok, err := VerifyPassword(h, tc.wrong); err != nil || ok {
				t.Errorf("VerifyPassword(wrong) = %v, %v; want false, nil", ok, err)
			}
			h2, err := hashPassword(tc.pw, minIterHash)
			if err != nil {
				t.Fatal(err)
			}
			if h == h2 {
				t.Error("two hashes of the same password are equal: salt not random")
			}
		})
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	t.Parallel()
	const (
		salt = "b255LWthdC1zYWx0LTE2Yg"                      // 16 bytes
		key  = "Ax10hqDiPM5RZn2NMl8CJb802LO793GLDIH/oDDtcmM" // 32 bytes
		good = "$pbkdf2-sha256$i=100000$" + salt + "$" + key
	)
	if _, err := parseHash(good); err != nil {
		t.Fatalf("baseline does not parse: %v", err)
	}
	tests := []struct{ name, encoded string }{
		{"empty", ""},
		{"dollar", "$"},
		{"no leading dollar", "pbkdf2-sha256$i=100000$" + salt + "$" + key},
		{"missing hash", "$pbkdf2-sha256$i=100000$" + salt},
		{"missing hash empty", "$pbkdf2-sha256$i=100000$" + salt + "$"},
		{"extra field", good + "$"},
		{"extra field value", good + "$AAAA"},
		{"other algorithm", "$pbkdf2-sha512$i=100000$" + salt + "$" + key},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2 shape", "$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$" + key},
		{"upper id", "$PBKDF2-SHA256$i=100000$" + salt + "$" + key},
		{"no i=", "$pbkdf2-sha256$100000$" + salt + "$" + key},
		{"I=", "$pbkdf2-sha256$I=100000$" + salt + "$" + key},
		{"rounds=", "$pbkdf2-sha256$rounds=100000$" + salt + "$" + key},
		{"i empty", "$pbkdf2-sha256$i=$" + salt + "$" + key},
		{"i plus", "$pbkdf2-sha256$i=+100000$" + salt + "$" + key},
		{"i minus", "$pbkdf2-sha256$i=-100000$" + salt + "$" + key},
		{"i leading zero", "$pbkdf2-sha256$i=0100000$" + salt + "$" + key},
		{"i space", "$pbkdf2-sha256$i= 100000$" + salt + "$" + key},
		{"i hex", "$pbkdf2-sha256$i=0x186a0$" + salt + "$" + key},
		{"i underscore", "$pbkdf2-sha256$i=100_000$" + salt + "$" + key},
		{"i too low", "$pbkdf2-sha256$i=99999$" + salt + "$" + key},
		{"i zero", "$pbkdf2-sha256$i=0$" + salt + "$" + key},
		{"i too high", "$pbkdf2-sha256$i=10000001$" + salt + "$" + key},
		{"i overflow", "$pbkdf2-sha256$i=99999999999999999999999999$" + salt + "$" + key},
		{"i with extra param", "$pbkdf2-sha256$i=100000,l=32$" + salt + "$" + key},
		{"salt empty", "$pbkdf2-sha256$i=100000$$" + key},
		{"salt short", "$pbkdf2-sha256$i=100000$" + salt[:20] + "$" + key},
		{"salt long", "$pbkdf2-sha256$i=100000$" + salt + "AA$" + key},
		{"salt padded", "$pbkdf2-sha256$i=100000$" + salt + "==$" + key},
		{"salt url alphabet", "$pbkdf2-sha256$i=100000$b255LWthdC1zYWx0LTE2-_$" + key},
		{"salt non-canonical bits", "$pbkdf2-sha256$i=100000$b255LWthdC1zYWx0LTE2Yh$" + key},
		{"salt newline", "$pbkdf2-sha256$i=100000$b255LWthdC1z\nYWx0LTE2Yg$" + key},
		{"salt bad char", "$pbkdf2-sha256$i=100000$b255LWthdC1zYWx0LTE2Y!$" + key},
		{"hash short", "$pbkdf2-sha256$i=100000$" + salt + "$" + key[:42]},
		{"hash long", "$pbkdf2-sha256$i=100000$" + salt + "$" + key + "AAAA"},
		{"hash padded", "$pbkdf2-sha256$i=100000$" + salt + "$" + key + "="},
		{"hash non-canonical bits", "$pbkdf2-sha256$i=100000$" + salt + "$" + key[:42] + "N"},
		{"hash newline", "$pbkdf2-sha256$i=100000$" + salt + "$" + key[:20] + "\r\n" + key[20:]},
		{"trailing newline", good + "\n"},
		{"leading space", " " + good},
		{"trailing space", good + " "},
		{"utf8 junk", "$pbkdf2-sha256$i=100000$" + salt + "$" + key[:41] + "é"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, err := VerifyPassword(tc.encoded, "correct horse battery staple")
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("VerifyPassword(%q) = %v, %v; want false, ErrMalformedHash", tc.encoded, ok, err)
			}
			if !NeedsRehash(tc.encoded) {
				t.Errorf("NeedsRehash(%q) = false for a malformed hash", tc.encoded)
			}
		})
	}
}

func TestIterationBounds(t *testing.T) {
	t.Parallel()
	const tail = "$b255LWthdC1zYWx0LTE2Yg$Ax10hqDiPM5RZn2NMl8CJb802LO793GLDIH/oDDtcmM"
	tests := []struct {
		iter string
		ok   bool
	}{
		{"99999", false},
		{"100000", true},
		{"600000", true},
		{"10000000", true},
		{"10000001", false},
		{"4294967296", false},
		{"9223372036854775807", false},
		{"9223372036854775808", false},
	}
	for _, tc := range tests {
		t.Run(tc.iter, func(t *testing.T) {
			t.Parallel()
			// parseHash, not VerifyPassword: deriving at 10M iterations would cost seconds.
			_, err := parseHash("$pbkdf2-sha256$i=" + tc.iter + tail)
			if (err == nil) != tc.ok {
				t.Errorf("parseHash(i=%s) error = %v, want ok=%v", tc.iter, err, tc.ok)
			}
		})
	}
}

func TestNeedsRehash(t *testing.T) {
	t.Parallel()
	const tail = "$b255LWthdC1zYWx0LTE2Yg$Ax10hqDiPM5RZn2NMl8CJb802LO793GLDIH/oDDtcmM"
	tests := []struct {
		encoded string
		want    bool
	}{
		{"$pbkdf2-sha256$i=100000" + tail, true},
		{"$pbkdf2-sha256$i=599999" + tail, true},
		{"$pbkdf2-sha256$i=600000" + tail, false},
		{"$pbkdf2-sha256$i=1000000" + tail, false},
		{"$pbkdf2-sha512$i=600000" + tail, true},
		{"", true},
	}
	for _, tc := range tests {
		t.Run(tc.encoded, func(t *testing.T) {
			t.Parallel()
			if got := NeedsRehash(tc.encoded); got != tc.want {
				t.Errorf("NeedsRehash(%q) = %v, want %v", tc.encoded, got, tc.want)
			}
		})
	}
}

func TestCheckPasswordPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, pw string
		ok       bool
		msg      string // substring of the user-facing message when !ok
	}{
		{"empty", "", false, "at least 12"},
		{"11 chars", "abcdefghijk", false, "at least 12"},
		{"12 chars", "abcdefghijkl", true, ""},
		{"11 runes, 22 bytes", "ééééééééééb", false, "at least 12"},
		{"12 runes multibyte", "日本語のパスワードです。", true, ""},
		{"256 bytes", strings.Repeat("ab", 128), true, ""},
		{"257 bytes", strings.Repeat("ab", 128) + "c", false, "at most 256"},
		{"86 runes, 258 bytes", strings.Repeat("日本", 43), false, "at most 256"},
		{"one char repeated", "aaaaaaaaaaaaaaaa", false, "repeated"},
		{"one multibyte char repeated", strings.Repeat("é", 20), false, "repeated"},
		{"spaces only", strings.Repeat(" ", 12), false, "repeated"},
		{"almost repeated", "aaaaaaaaaaab", true, ""},
		{"invalid utf8", "abcdefghijkl\xff", false, "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckPasswordPolicy(tc.pw)
			if tc.ok {
				if err != nil {
					t.Errorf("CheckPasswordPolicy = %v, want nil", err)
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || !errors.Is(err, ErrPasswordPolicy) {
				t.Fatalf("CheckPasswordPolicy = %#v, want *PolicyError matching ErrPasswordPolicy", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not mention %q", err.Error(), tc.msg)
			}
		})
	}
}

func TestGeneratePassword(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{5}(-[0-9a-hjkmnp-tv-z]{5}){3}$`)
	seen := map[string]bool{}
	for range 100 {
		pw, err := GeneratePassword()
		if err != nil {
			t.Fatal(err)
		}
		if !shape.MatchString(pw) {
			t.Fatalf("GeneratePassword = %q, wrong shape", pw)
		}
		if err := CheckPasswordPolicy(pw); err != nil {
			t.Fatalf("GeneratePassword = %q fails policy: %v", pw, err)
		}
		if seen[pw] {
			t.Fatalf("GeneratePassword repeated %q", pw)
		}
		seen[pw] = true
	}
	if len(passwordAlphabet) != 32 {
		t.Fatalf("alphabet has %d symbols; the unbiased byte%%32 mapping needs 32", len(passwordAlphabet))
	}
}

// FuzzVerifyPassword checks that no encoded string panics, that every failure is ErrMalformedHash,
// and that the parser accepts only what formatHash produces.
func FuzzVerifyPassword(f *testing.F) {
	low, err := hashPassword("correct horse battery staple", minIterHash)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(low, "correct horse battery staple")
	f.Add("$pbkdf2-sha256$i=600000$b255LWthdC1zYWx0LTE2Yg$Ax10hqDiPM5RZn2NMl8CJb802LO793GLDIH/oDDtcmM", "x")
	f.Add("$pbkdf2-sha256$i=10000000$$", "")
	f.Add("$pbkdf2-sha256$i=99999999999999999999$AAAA$AAAA", "")
	f.Add("$$$$", "")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, encoded, password string) {
		p, perr := parseHash(encoded)
		if perr == nil {
			if got := formatHash(p.iter, p.salt, p.key); got != encoded {
				t.Fatalf("parser accepted non-canonical %q (canonical %q)", encoded, got)
			}
			// Parsing is what can panic; past this bound each call would only burn CPU in crypto/pbkdf2.
			if p.iter > 2*minIterHash {
				return
			}
		} else if !errors.Is(perr, ErrMalformedHash) {
			t.Fatalf("parseHash error %v is not ErrMalformedHash", perr)
		}
		ok, err := VerifyPassword(encoded, password)
		if (err == nil) != (perr == nil) {
			t.Fatalf("VerifyPassword err = %v, parseHash err = %v", err, perr)
		}
		if ok && err != nil {
			t.Fatalf("VerifyPassword = true with error %v", err)
		}
	})
}

func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/op")
}

func BenchmarkVerifyPassword(b *testing.B) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := VerifyPassword(h, "correct horse battery staple"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/op")
}

// A lowered work factor in a real server would weaken every password it hashes: UseTestWorkFactor may
// only be called from test files and from internal/testserver, which only tests import.
func TestWorkFactorOnlyInTests(t *testing.T) {
	t.Parallel()
	var callers []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "UseTestWorkFactor()") {
			callers = append(callers, filepath.ToSlash(path))
		}
		if strings.Contains(string(b), `"github.com/ony-ai/ony/internal/testserver"`) {
			t.Errorf("%s imports internal/testserver, which lowers the work factor, outside a test file", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"../auth/password.go", "../internal/testserver/testserver.go"}
	if !slices.Equal(callers, want) {
		t.Fatalf("UseTestWorkFactor() appears in %v; only %v may name it outside test files", callers, want)
	}
}
