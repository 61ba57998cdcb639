package auth

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Users are the built-in login's users, read from a file of name:hash
// lines, where hash is a bcrypt hash ($2a$, $2b$, $2y$) or an argon2id
// hash in the PHC string form ($argon2id$v=19$m=...,t=...,p=...$salt$key).
type Users struct {
	hashes map[string]hash
	// dummy is checked when the user is unknown, so that an unknown name
	// takes as long as a wrong password (it has the first user's kind and
	// cost).
	dummy hash
}

// hash is one parsed password hash.
type hash interface {
	verify(password string) bool
}

type bcryptHash []byte

func (h bcryptHash) verify(pw string) bool {
	return bcrypt.CompareHashAndPassword(h, []byte(pw)) == nil
}

type argonHash struct {
	time, memory uint32
	threads      uint8
	salt, key    []byte
}

func (h argonHash) verify(pw string) bool {
	k := argon2.IDKey([]byte(pw), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(k, h.key) == 1
}

// Bounds of argon2id parameters read from a file: enough for any sane
// setting, and no way for a bad line to make a login take minutes or
// gigabytes.
const (
	maxArgonMemory = 1 << 20 // KiB: 1 GiB
	maxArgonTime   = 64
	maxArgonKey    = 1024
	maxLineBytes   = 4096
	maxUsers       = 100000
)

// ParseUsers reads a users file: one name:hash a line; blank lines and
// lines starting with # are skipped. Errors name the line.
func ParseUsers(r io.Reader) (*Users, error) {
	u, first, err := parseUsers(r)
	if err != nil || first == nil {
		return u, err
	}
	if u.dummy, err = dummyLike(first); err != nil {
		return nil, err
	}
	return u, nil
}

// parseUsers parses a users file and returns the first user's hash too,
// which the dummy is made like; it computes no hash.
func parseUsers(r io.Reader) (*Users, hash, error) {
	u := &Users{hashes: map[string]hash{}}
	var first hash
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLineBytes)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, h, ok := strings.Cut(line, ":")
		if !ok || name == "" || h == "" {
			return nil, nil, fmt.Errorf("users file line %d: want name:hash", n)
		}
		if strings.ContainsAny(name, " \t") {
			return nil, nil, fmt.Errorf("users file line %d: the user name has a space", n)
		}
		if _, dup := u.hashes[name]; dup {
			return nil, nil, fmt.Errorf("users file line %d: user %q is listed twice", n, name)
		}
		ph, err := parseHash(h)
		if err != nil {
			return nil, nil, fmt.Errorf("users file line %d (user %q): %v", n, name, err)
		}
		if first == nil {
			first = ph
		}
		u.hashes[name] = ph
		if len(u.hashes) > maxUsers {
			return nil, nil, fmt.Errorf("users file: more than %d users", maxUsers)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("users file line %d: %v", n+1, err)
	}
	return u, first, nil
}

// parseHash parses one bcrypt or argon2id hash.
func parseHash(s string) (hash, error) {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		cost, err := bcrypt.Cost([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("bad bcrypt hash: %v", err)
		}
		if cost > 16 {
			return nil, fmt.Errorf("bcrypt cost %d is more than 16: each login would take seconds", cost)
		}
		return bcryptHash(s), nil
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	}
	return nil, errors.New("the hash is neither bcrypt ($2a$, $2b$, $2y$) nor argon2id ($argon2id$)")
}

// parseArgon2id parses $argon2id$v=19$m=M,t=T,p=P$SALT$KEY (base64
// without padding).
func parseArgon2id(s string) (hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[2] != "v=19" {
		return nil, errors.New("want $argon2id$v=19$m=M,t=T,p=P$SALT$KEY")
	}
	var h argonHash
	seen := 0
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("argon2id parameter %q is not a positive number", kv)
		}
		switch k {
		case "m":
			if n > maxArgonMemory {
				return nil, fmt.Errorf("argon2id memory %d KiB is more than %d", n, maxArgonMemory)
			}
			h.memory, seen = uint32(n), seen|1
		case "t":
			if n > maxArgonTime {
				return nil, fmt.Errorf("argon2id time %d is more than %d", n, maxArgonTime)
			}
			h.time, seen = uint32(n), seen|2
		case "p":
			if n > 255 {
				return nil, fmt.Errorf("argon2id parallelism %d is more than 255", n)
			}
			h.threads, seen = uint8(n), seen|4
		default:
			return nil, fmt.Errorf("unknown argon2id parameter %q", k)
		}
	}
	if seen != 7 {
		return nil, errors.New("argon2id needs m, t and p")
	}
	if h.memory < 8*uint32(h.threads) {
		return nil, errors.New("argon2id memory must be at least 8 KiB per thread")
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return nil, errors.New("argon2id salt must be base64 (no padding) of at least 8 bytes")
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > maxArgonKey {
		return nil, errors.New("argon2id key must be base64 (no padding) of 16 to 1024 bytes")
	}
	return h, nil
}

// dummyLike returns a hash of a random password with the kind and cost
// of h.
func dummyLike(h hash) (hash, error) {
	pw := rand.Text()
	switch h := h.(type) {
	case bcryptHash:
		cost, _ := bcrypt.Cost(h)
		b, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
		return bcryptHash(b), err
	case argonHash:
		d := h
		d.salt = []byte(rand.Text())
		d.key = argon2.IDKey([]byte(pw), d.salt, d.time, d.memory, d.threads, uint32(len(h.key)))
		return d, nil
	}
	return nil, errors.New("unknown hash kind")
}

// Verify reports whether password is name's. It takes as long for an
// unknown name as for a known one with a wrong password: a dummy hash of
// the same kind is checked.
func (u *Users) Verify(name, password string) bool {
	if u == nil || u.dummy == nil {
		return false
	}
	h, ok := u.hashes[name]
	if !ok {
		u.dummy.verify(password)
		return false
	}
	return h.verify(password)
}

// Len is the number of users.
func (u *Users) Len() int {
	if u == nil {
		return 0
	}
	return len(u.hashes)
}

// HashArgon2id returns an argon2id hash of password in the form the users
// file takes, with the parameters RFC 9106 recommends for memory-bound
// settings (64 MiB, 3 passes).
func HashArgon2id(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, 3, 64<<10, 4, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=3,p=4$%s$%s", 64<<10,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}
