package desk

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: OWASP's minimum (19 MiB, 2 passes, 1 lane). A login costs
// about 30 ms and 19 MiB, so a 2-core node survives a burst of logins at the start of
// a shift; RFC 9106's 64 MiB x 3 took half a second each. The parameters travel in
// each hash, so raising them later needs no migration.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// HashPassword hashes pw with argon2id and a random salt, in the PHC string format
// ($argon2id$v=19$m=65536,t=3,p=2$salt$hash) so the parameters travel with the hash
// and can be raised later without breaking stored passwords.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether pw matches hash, comparing in constant time. A
// malformed hash never matches.
func CheckPassword(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	var mem, iter uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iter, &threads); err != nil {
		return false
	}
	// Refuse absurd parameters so a tampered hash cannot make us allocate gigabytes.
	if mem == 0 || mem > 1<<20 || iter == 0 || iter > 64 || threads == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) == 0 {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, iter, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// SIPHA1 is the digest HA1 a registrar needs: hex MD5 of "login:realm:password"
// (RFC 2617). MD5 is what SIP digest mandates; we store it instead of the password.
func SIPHA1(login, realm, password string) string {
	sum := md5.Sum([]byte(login + ":" + realm + ":" + password))
	return hex.EncodeToString(sum[:])
}
