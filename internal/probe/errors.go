package probe

import (
	"errors"
	"fmt"
)

// Sentinel errors returned (wrapped) by Read. Test for them with errors.Is.
var (
	// ErrUnknownFormat means the data starts with no signature Read knows.
	ErrUnknownFormat = errors.New("probe: unknown image format")
	// ErrMalformed means the format was recognised but its header is
	// truncated, inconsistent or beyond the sanity bounds of this package.
	ErrMalformed = errors.New("probe: malformed image header")
	// ErrSizeUnknown means the format was recognised and looks sound, but
	// its size is not where this package looks for it (for example a HEIF
	// file whose primary item has no ispe property, or a JPEG whose height
	// is defined by a DNL marker). Callers should fall back to libvips.
	ErrSizeUnknown = errors.New("probe: image size not found in header")
)

// FormatError describes why a header could not be used. It wraps one of
// ErrMalformed or ErrSizeUnknown. Errors of the ReaderAt are not turned into
// FormatErrors: they are returned wrapped as they are, so that callers can
// tell a broken file from a broken connection.
type FormatError struct {
	Format Format
	Offset int64 // byte offset where the problem was found, -1 if none
	Reason string
	Err    error // ErrMalformed or ErrSizeUnknown
}

// Error returns a message naming the format, the problem and its offset.
func (e *FormatError) Error() string {
	what := "malformed header"
	if e.Err == ErrSizeUnknown {
		what = "size unknown"
	}
	if e.Offset < 0 {
		return fmt.Sprintf("probe: %s: %s: %s", e.Format, what, e.Reason)
	}
	return fmt.Sprintf("probe: %s: %s: %s (at byte %d)", e.Format, what, e.Reason, e.Offset)
}

// Unwrap returns the sentinel the error belongs to.
func (e *FormatError) Unwrap() error { return e.Err }

// malformed returns a FormatError wrapping ErrMalformed. The format is
// filled in by Read, which knows it, so that the parsers need not repeat it.
func malformed(off int64, format string, args ...any) error {
	return &FormatError{Offset: off, Reason: fmt.Sprintf(format, args...), Err: ErrMalformed}
}

// sizeUnknown returns a FormatError wrapping ErrSizeUnknown.
func sizeUnknown(off int64, format string, args ...any) error {
	return &FormatError{Offset: off, Reason: fmt.Sprintf(format, args...), Err: ErrSizeUnknown}
}
