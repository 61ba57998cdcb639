package plan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/iiifd/iiifd/internal/iiif"
)

// ParseFormatLimits parses FMT=WxH[xAREA] entries separated by commas,
// for example "gif=2000x2000,png=0x0x50000000". A zero is no limit. It
// lives here, in a pure package, because the native server's
// --format-limits and the edge worker's FORMAT_LIMITS setting share its
// syntax. Format names are lower-cased but not checked: callers decide
// which formats they know.
func ParseFormatLimits(s string) (map[iiif.Format]FormatLimits, error) {
	out := map[iiif.Format]FormatLimits{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, spec, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want FMT=WxH[xAREA]", part)
		}
		nums := strings.Split(spec, "x")
		if len(nums) < 2 || len(nums) > 3 {
			return nil, fmt.Errorf("%q: want FMT=WxH[xAREA]", part)
		}
		var v [3]int64
		for i, n := range nums {
			x, err := strconv.ParseInt(n, 10, 64)
			if err != nil || x < 0 || (i < 2 && x > 1<<31-1) {
				return nil, fmt.Errorf("%q: %q is not a pixel count", part, n)
			}
			v[i] = x
		}
		out[iiif.Format(strings.ToLower(name))] = FormatLimits{MaxWidth: int(v[0]), MaxHeight: int(v[1]), MaxArea: v[2]}
	}
	return out, nil
}
