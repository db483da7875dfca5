package desk

import (
	"strings"
	"testing"
)

func TestHashPassword(t *testing.T) {
	h1, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string", h1)
	}
	if h1 == h2 {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
	tests := []struct {
		name, hash, pw string
		want           bool
	}{
		{"right password", h1, "s3cret", true},
		{"second salt", h2, "s3cret", true},
		{"wrong password", h1, "s3cret!", false},
		{"empty password", h1, "", false},
		{"empty hash", "", "s3cret", false},
		{"garbage", "not-a-hash", "s3cret", false},
		{"wrong algorithm", strings.Replace(h1, "argon2id", "argon2i", 1), "s3cret", false},
		{"huge memory", strings.Replace(h1, "m=19456", "m=99999999", 1), "s3cret", false},
		{"truncated", h1[:len(h1)-10], "s3cret", false},
		{"bad base64", h1[:strings.LastIndex(h1, "$")+1] + "!!!", "s3cret", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckPassword(tt.hash, tt.pw); got != tt.want {
				t.Fatalf("CheckPassword = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestSIPHA1(t *testing.T) {
	tests := []struct{ login, realm, pw, want string }{
		// md5("alice:desk.local:secret")
		{"alice", "desk.local", "secret", "dd405cc463c5b1a0e31ed9541da61af9"},
		// RFC 2617 example: md5("Mufasa:testrealm@host.com:Circle Of Life")
		{"Mufasa", "testrealm@host.com", "Circle Of Life", "939e7578ed9e3c518a452acee763bce9"},
	}
	for _, tt := range tests {
		if got := SIPHA1(tt.login, tt.realm, tt.pw); got != tt.want {
			t.Errorf("SIPHA1(%q,%q,%q) = %s; want %s", tt.login, tt.realm, tt.pw, got, tt.want)
		}
	}
}
