package hmac_test

// RFC 4231 test case 2: public test vectors, not secrets.
var rfc4231 = []struct{ key, data, want string }{
	{"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
		"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
}

// Key sizes in bytes.
const keyLen = 32
