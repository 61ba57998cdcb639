package slidecheck

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
)

// limitsEnv passes the child's address-space limit in bytes; the child
// sets it on itself before OpenSlide runs.
const limitsEnv = "IIIFD_SLIDECHECK_AS"

// ErrNotSlide is what a check function returns for a file OpenSlide does
// not read (not a slide): a verdict, not a failure.
var ErrNotSlide = errors.New("slidecheck: not a slide OpenSlide reads")

// Serve is the child side of Checker: it checks the slide named by args
// (one path) with check (pixels.CheckSlide in iiifd, which opens it with
// OpenSlide; given by the caller so that this package links no cgo) and
// writes its answer on stdout. It returns the exit code. A crash of
// OpenSlide ends the process, which the parent reports.
func Serve(args []string, stdout io.Writer, check func(path string) error) int {
	signal.Ignore(os.Interrupt)
	if len(args) != 1 {
		fmt.Fprintf(stdout, "%sslide check: want one path, got %d arguments\n", lineError, len(args))
		return 1
	}
	if v := os.Getenv(limitsEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil && n > 0 {
			err = limitAddressSpace(n)
		}
		if err != nil {
			fmt.Fprintf(stdout, "%sslide check: address-space limit %q: %v\n", lineError, v, err)
			return 1
		}
	}
	err := check(args[0])
	switch {
	case err == nil:
		fmt.Fprintln(stdout, lineOK)
	case errors.Is(err, ErrNotSlide):
		fmt.Fprintln(stdout, lineNotSlide)
	default:
		fmt.Fprintf(stdout, "%s%s\n", lineError, firstLine(err.Error()))
		return 1
	}
	return 0
}
