package slidecheck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/fault"
)

// script is a check command: sh running body with the slide's path as $1.
func script(body string) []string { return []string{"sh", "-c", body, "check"} }

func files(t *testing.T, n int) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("s%d.bif", i))
		if err := os.WriteFile(p, []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// TestShared checks that concurrent first checks of one file share one
// child, and that its verdict is kept for later ones.
func TestShared(t *testing.T) {
	c, err := New(Config{Command: script(`sleep 0.3; echo ok`)})
	if err != nil {
		t.Fatal(err)
	}
	f := files(t, 2)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Check(context.Background(), f[0])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("check %d: %v", i, err)
		}
	}
	c.Check(context.Background(), f[0])
	if n := c.Children(); n != 1 {
		t.Errorf("%d children for one file checked 9 times, want 1", n)
	}
	if err := c.Check(context.Background(), f[1]); err != nil || c.Children() != 2 {
		t.Errorf("another file: %v, %d children, want nil and 2", err, c.Children())
	}
}

// TestVerdicts checks the verdicts from the child's answers and its
// death, their status, and the bound on those kept.
func TestVerdicts(t *testing.T) {
	for _, tc := range []struct {
		body, want string
		children   int // after checking files 0, 1, 2, 0, 0
	}{
		{`echo not-slide`, "", 4},
		{`echo "error Expected one WSI image, found 0"; exit 1`, msgDamaged, 4},
		{`kill -ABRT $$`, fmt.Sprintf(msgCrashed, "aborted"), 4},
		{`echo ok; exit 3`, fmt.Sprintf(msgCrashed, "exit status 3"), 4},
		// No answer from the child: no verdict, tried every time.
		{`echo maybe`, msgFailed, 5},
	} {
		c, err := New(Config{Command: script(tc.body), Verdicts: 2})
		if err != nil {
			t.Fatal(err)
		}
		f := files(t, 3)
		err = c.Check(context.Background(), f[0])
		var fe *fault.Error
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want nil", tc.body, err)
		case tc.want != "" && (!errors.As(err, &fe) || fe.Public != tc.want || fe.HTTPStatus() != 500):
			t.Errorf("%s: %v, want a 500 saying %q", tc.body, err, tc.want)
		}
		// Two more files push the first one's verdict out; then it is
		// kept again.
		c.Check(context.Background(), f[1])
		c.Check(context.Background(), f[2])
		c.Check(context.Background(), f[0])
		c.Check(context.Background(), f[0])
		if n := c.Children(); n != tc.children {
			t.Errorf("%s: %d children, want %d", tc.body, n, tc.children)
		}
	}
}

// TestCanceled checks that a check its caller gave up on is no verdict:
// the next caller starts a child of its own.
func TestCanceled(t *testing.T) {
	c, err := New(Config{Command: script(`sleep 5; echo ok`), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f := files(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	if err := c.Check(ctx, f[0]); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled check: %v, want context.Canceled", err)
	}
	c.cfg.Command = script(`echo ok`)
	if err := c.Check(context.Background(), f[0]); err != nil || c.Children() != 2 {
		t.Errorf("after the canceled check: %v, %d children, want nil and 2", err, c.Children())
	}
}

// TestDescriptor checks a file known only by a descriptor whose name was
// removed (a source cache's copy): the child gets the descriptor.
func TestDescriptor(t *testing.T) {
	c, err := New(Config{Command: script(`test "$(head -c 5 "$1")" = slide && echo ok || echo "error cannot read $1"`)})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "copy.bif")
	if err := os.WriteFile(p, []byte("slide"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	os.Remove(p)
	if err := c.Check(context.Background(), fmt.Sprintf("/proc/self/fd/%d", f.Fd())); err != nil {
		t.Errorf("descriptor of a removed file: %v (%v)", err, errors.Unwrap(err))
	}
}
