package auth

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestUsers(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte("pw-a"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := "# users\n\nalice:" + string(b) + "\n  bob:" + HashArgon2id("pw-b") + "  \n"
	u, err := ParseUsers(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 2 {
		t.Fatalf("%d users", u.Len())
	}
	for _, c := range []struct {
		user, pw string
		ok       bool
	}{
		{"alice", "pw-a", true}, {"alice", "pw-b", false}, {"bob", "pw-b", true}, {"bob", "pw-a", false},
		{"carol", "pw-a", false}, {"", "", false}, {"Alice", "pw-a", false},
	} {
		if got := u.Verify(c.user, c.pw); got != c.ok {
			t.Errorf("Verify(%q, %q) = %v", c.user, c.pw, got)
		}
	}
	// The dummy an unknown user is checked against has the first
	// user's kind and cost, so that it takes as long.
	d, ok := u.dummy.(bcryptHash)
	if cost, _ := bcrypt.Cost(d); !ok || cost != bcrypt.MinCost {
		t.Errorf("dummy hash %T of cost %d", u.dummy, cost)
	}
	var nilUsers *Users
	if nilUsers.Verify("alice", "pw-a") {
		t.Error("no users file verified a password")
	}
}

func TestUsersErrors(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"alice", "line 1: want name:hash"},
		{"alice:", "line 1: want name:hash"},
		{"# x\nal ice:$2a$10$x", "line 2: the user name has a space"},
		{"alice:plain", "neither bcrypt"},
		{"alice:$2a$10$short", "bad bcrypt hash"},
		{"alice:$2a$31$" + strings.Repeat("a", 53), "more than 16"},
		{"alice:$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", ""},
		{"alice:$argon2id$v=18$m=65536,t=3,p=4$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "v=19"},
		{"alice:$argon2id$v=19$m=99999999,t=3,p=4$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "memory"},
		{"alice:$argon2id$v=19$m=65536,t=3$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "needs m, t and p"},
		{"alice:$argon2id$v=19$m=65536,t=3,p=4$!!$a2V5a2V5a2V5a2V5a2V5a2V5", "salt"},
		{"alice:$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$a2V5", "key"},
		{"a:" + HashArgon2id("x") + "\na:" + HashArgon2id("y"), "listed twice"},
	} {
		_, err := ParseUsers(strings.NewReader(c.file))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.file, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: error %v, want %q", c.file, err, c.want)
		}
	}
}

// FuzzParseUsers: any file either parses or is refused with an error
// naming the file, within the bounds of hash parameters, and never
// panics. (parseUsers: the dummy hash ParseUsers then computes would
// make the fuzzer spend its time in bcrypt and argon2.)
func FuzzParseUsers(f *testing.F) {
	f.Add("alice:$2a$04$abcdefghijklmnopqrstuuSn9ZEtOwvYjq2pnMDV.yA2HLk1gGxN6\n")
	f.Add("# c\nbob:$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5\n")
	f.Add("x:$argon2id$v=19$m=8,t=1,p=1,q=2$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("a:b:c\n\n\n:")
	f.Fuzz(func(t *testing.T, file string) {
		u, _, err := parseUsers(strings.NewReader(file))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "users file") {
				t.Fatalf("error without the file's name: %v", err)
			}
			return
		}
		for name, h := range u.hashes {
			if a, ok := h.(argonHash); ok && (a.memory > maxArgonMemory || a.time > maxArgonTime) {
				t.Fatalf("%s: unbounded argon2id parameters %+v", name, a)
			}
		}
	})
}
