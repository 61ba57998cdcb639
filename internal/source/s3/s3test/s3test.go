// Package s3test runs a real S3-compatible server for tests, never a mock:
// versitygw (github.com/versity/versitygw, posix backend) on a free
// loopback port over a temporary directory, stopped when the test ends and
// restartable on the same port to test outages. scripts/deps.sh installs
// it with `go install`.
package s3test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Credentials of the server's root user.
const (
	AccessKey = "iiifd-test-access"
	SecretKey = "iiifd-test-secret-0123456789"
	Region    = "us-east-1"
)

// ToolsEnv, set to 1 by scripts/test, says every external test tool is
// installed: a missing versitygw is then a failure, not a skip.
const ToolsEnv = "IIIFD_TEST_TOOLS"

// Server is a versitygw owned by one test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

// Binary finds versitygw: $IIIFD_VERSITYGW, then PATH, then Go's bin
// directory.
func Binary() (string, error) {
	if b := os.Getenv("IIIFD_VERSITYGW"); b != "" {
		return b, nil
	}
	if b, err := exec.LookPath("versitygw"); err == nil {
		return b, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	for _, d := range []string{os.Getenv("GOBIN"), filepath.Join(gopath, "bin")} {
		if d == "" {
			continue
		}
		b := filepath.Join(d, "versitygw")
		if _, err := os.Stat(b); err == nil {
			return b, nil
		}
	}
	return "", fmt.Errorf("versitygw not found (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0, or run scripts/test)")
}

// Start starts a server; the test is skipped if versitygw is missing,
// unless ToolsEnv is set, when it fails.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv(ToolsEnv) == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{t: t, bin: bin, dir: t.TempDir(), port: port}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Env points the AWS default configuration chain of the test process at
// endpoint (the server, or a proxy in front of it) with the server's
// credentials, and away from any shared config or credentials file of
// the machine, for as long as t runs.
func Env(t testing.TB, endpoint string) {
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
}

// Endpoint is the server's URL.
func (s *Server) Endpoint() string { return "http://" + s.Addr() }

// Addr is the server's HOST:PORT.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Dir is the directory the buckets are stored in.
func (s *Server) Dir() string { return s.dir }

// Restart starts the server again on its port after Stop.
func (s *Server) Restart() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--access", AccessKey, "--secret", SecretKey, "--region", Region,
		"--port", s.Addr(), "--quiet", "--keep-alive", "posix", s.dir)
	s.cmd.Env = append(os.Environ(), "VGW_QUIET=true")
	var stderr strings.Builder
	s.cmd.Stderr = &stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("versitygw did not listen on %s: %v\n%s", s.Addr(), err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (an outage); Restart brings it back.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Client returns an SDK client of the server (path-style, root user).
func (s *Server) Client() *s3.Client {
	return s.ClientAt(s.Endpoint())
}

// ClientAt returns a client of the server reached at endpoint (a proxy).
func (s *Server) ClientAt(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:                     Region,
		BaseEndpoint:               aws.String(endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// Bucket creates a bucket with a fresh name and returns the name.
func (s *Server) Bucket(name string) string {
	s.t.Helper()
	_, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name})
	if err != nil {
		s.t.Fatalf("CreateBucket %s: %v", name, err)
	}
	return name
}

// Put stores files (key → bytes) in bucket.
func (s *Server) Put(bucket string, files map[string][]byte) {
	s.t.Helper()
	for k, b := range files {
		_, err := s.Client().PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: &bucket, Key: aws.String(k), Body: strings.NewReader(string(b)), ContentLength: aws.Int64(int64(len(b))),
		})
		if err != nil {
			s.t.Fatalf("PutObject %s: %v", k, err)
		}
	}
}
