package fakeservers

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// BodyDigest is the value of HeaderBodyDigest for body: "sha256=<hex>".
func BodyDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return DigestPrefix + hex.EncodeToString(sum[:])
}

// VerifyDigest reports whether body is exactly the body header describes. A
// missing or malformed header is a mismatch, so a truncated or cut response
// can never pass as whole.
func VerifyDigest(header string, body []byte) bool {
	want, ok := strings.CutPrefix(strings.TrimSpace(header), DigestPrefix)
	if !ok || len(want) != 2*sha256.Size {
		return false
	}
	got := BodyDigest(body)[len(DigestPrefix):]
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(want)), []byte(got)) == 1
}
