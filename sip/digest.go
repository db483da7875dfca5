package sip

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/icholy/digest"
)

var (
	errBadNonce       = errors.New("bad nonce")
	errBadCredentials = errors.New("bad credentials")
)

// nonces issues and checks stateless digest nonces, so any node holding the key can
// verify them and nothing is stored per client. Format:
//
//	hex(uint64 unix seconds) "." hex(8 random bytes) "." hex(first 16 bytes of HMAC-SHA256(key, ts|salt|realm))
//
// The random salt makes every challenge's nonce unique, so the replay guard can tell a
// resent request from a second phone challenged in the same second.
type nonces struct {
	key   []byte
	realm string
	ttl   time.Duration
	now   func() time.Time
}

func (n *nonces) mac(ts uint64, salt []byte) []byte {
	m := hmac.New(sha256.New, n.key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], ts)
	m.Write(b[:])
	m.Write([]byte("|"))
	m.Write(salt)
	m.Write([]byte("|"))
	m.Write([]byte(n.realm))
	return m.Sum(nil)[:16]
}

func (n *nonces) issue() string {
	ts := uint64(n.now().Unix())
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	return fmt.Sprintf("%016x.%s.%s", ts, hex.EncodeToString(salt), hex.EncodeToString(n.mac(ts, salt)))
}

// check tells whether the nonce is ours (valid) and, if so, whether it is past its TTL.
func (n *nonces) check(nonce string) (stale bool, err error) {
	parts := strings.Split(nonce, ".")
	if len(parts) != 3 || len(parts[0]) != 16 || len(parts[1]) != 16 || len(parts[2]) != 32 {
		return false, errBadNonce
	}
	tsb, err1 := hex.DecodeString(parts[0])
	salt, err2 := hex.DecodeString(parts[1])
	got, err3 := hex.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return false, errBadNonce
	}
	ts := binary.BigEndian.Uint64(tsb)
	if !hmac.Equal(got, n.mac(ts, salt)) {
		return false, errBadNonce
	}
	issued := time.Unix(int64(ts), 0)
	now := n.now()
	if issued.After(now.Add(time.Minute)) || now.Sub(issued) > n.ttl {
		return true, nil
	}
	return false, nil
}

func (n *nonces) challenge(stale bool) string {
	c := digest.Challenge{
		Realm:     n.realm,
		Nonce:     n.issue(),
		Algorithm: "MD5",
		QOP:       []string{"auth"},
		Stale:     stale,
	}
	return c.String()
}

func md5hex(parts ...string) string {
	h := md5.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte(":"))
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// HA1 returns hex MD5(user:realm:password), what Handler.DigestHA1 must return.
func HA1(user, realm, password string) string { return md5hex(user, realm, password) }

// verifyDigest recomputes the response from ha1 and compares it in constant time.
// qop=auth and the RFC 2069 form (no qop) are accepted; auth-int is not offered.
func verifyDigest(cred *digest.Credentials, ha1, method string) error {
	if cred.Algorithm != "" && !strings.EqualFold(cred.Algorithm, "MD5") {
		return fmt.Errorf("%w: algorithm %q", errBadCredentials, cred.Algorithm)
	}
	ha2 := md5hex(method, cred.URI)
	var want string
	switch cred.QOP {
	case "auth":
		want = md5hex(ha1, cred.Nonce, fmt.Sprintf("%08x", cred.Nc), cred.Cnonce, cred.QOP, ha2)
	case "":
		want = md5hex(ha1, cred.Nonce, ha2)
	default:
		return fmt.Errorf("%w: qop %q", errBadCredentials, cred.QOP)
	}
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(cred.Response)), []byte(want)) != 1 {
		return errBadCredentials
	}
	return nil
}
