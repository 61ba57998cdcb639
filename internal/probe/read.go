package probe

import (
	"errors"
	"io"
)

// Read probes the image in r, which holds size bytes. It reads the headers
// only, from as few bytes and ReadAt calls as it can: one chunk of a few KiB
// at the start, then one chunk for each structure elsewhere (for a
// pyramidal TIFF, one per IFD). It never reads pixel data, tile offset
// arrays or the whole file.
//
// Unknown data gives an error wrapping ErrUnknownFormat; a recognised but
// unusable header gives a *FormatError wrapping ErrMalformed or
// ErrSizeUnknown, with Info.Format set; errors of r are returned wrapped.
func Read(r io.ReaderAt, size int64) (Info, error) {
	info, _, err := read(r, size)
	return info, err
}

// read is Read, also returning the source for its read accounting.
func read(r io.ReaderAt, size int64) (Info, *source, error) {
	src := newSource(r, size)
	if size < 0 {
		return Info{}, src, malformed(-1, "negative size %d", size)
	}
	head, err := src.at(0, int(min(size, 16)))
	if err != nil {
		return Info{}, src, err
	}
	f, parse := sniff(head)
	if parse == nil {
		return Info{}, src, ErrUnknownFormat
	}
	info, err := parse(src)
	if errors.Is(err, ErrUnknownFormat) {
		return Info{}, src, err
	}
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) && fe.Format == "" {
			fe.Format = f
		}
		return Info{Format: f}, src, err
	}
	return info, src, nil
}

// sniff names the format whose signature starts head, and its parser.
func sniff(head []byte) (Format, func(*source) (Info, error)) {
	has := func(off int, sig string) bool {
		return len(head) >= off+len(sig) && string(head[off:off+len(sig)]) == sig
	}
	switch {
	case has(0, "\xff\xd8\xff"):
		return JPEG, readJPEG
	case has(0, "\x89PNG\r\n\x1a\n"):
		return PNG, readPNG
	case has(0, "GIF87a"), has(0, "GIF89a"):
		return GIF, readGIF
	case has(0, "RIFF") && has(8, "WEBP"):
		return WebP, readWebP
	case has(0, "II*\x00"), has(0, "MM\x00*"), has(0, "II+\x00"), has(0, "MM\x00+"):
		return TIFF, readTIFF
	case has(0, "\x00\x00\x00\x0cjP  \r\n\x87\n"):
		return JP2, readJP2
	case has(0, "\xff\x4f\xff\x51"):
		return JP2, readJ2K
	case has(4, "ftyp"):
		// ISO base media files share this start; readHEIF looks at the
		// brands and answers ErrUnknownFormat for video and the like.
		return HEIF, readHEIF
	}
	return "", nil
}

// isFormatError reports whether err is about the data rather than about
// reading it. Parsers of optional metadata drop such errors, but must pass
// on errors of the ReaderAt.
func isFormatError(err error) bool {
	var fe *FormatError
	return errors.As(err, &fe)
}
