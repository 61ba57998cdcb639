package plugin

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// decisionCache keeps authorize replies that declare, like an HTTP
// response with Cache-Control and Vary, how long they hold ("ttl",
// seconds, at most maxTTL) and which request fields they depend on
// ("vary", comma-separated keys such as "header:authorization"). A
// request whose fields of those names equal a remembered one's gets the
// remembered reply without calling the guest. A reply without ttl is
// never reused. The cache belongs to one module: a reloaded module starts
// empty.
type decisionCache struct {
	mu      sync.Mutex
	vary    []string // of the last cacheable reply
	entries map[string]decision
}

type decision struct {
	reply   Fields
	expires time.Time
}

const (
	maxTTL       = time.Hour
	maxDecisions = 10000
)

// parseVary splits a comma-separated list of request field names (an
// authorize reply's "vary", an overlay plugin's "overlay-vary").
func parseVary(s string) []string {
	var vary []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			vary = append(vary, k)
		}
	}
	return vary
}

// varyKey returns the key of a request's fields named in vary: requests
// with equal keys have equal values of those fields.
func varyKey(payload Fields, vary []string) string {
	var b strings.Builder
	for _, k := range vary {
		b.WriteString(k)
		for _, f := range payload {
			if f.Key == k {
				b.WriteByte(0)
				b.WriteString(f.Value)
			}
		}
		b.WriteByte(1)
	}
	return b.String()
}

func (c *decisionCache) get(payload Fields) (Fields, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		return nil, false
	}
	d, ok := c.entries[varyKey(payload, c.vary)]
	if !ok || time.Now().After(d.expires) {
		return nil, false
	}
	return d.reply, true
}

func (c *decisionCache) put(payload, reply Fields) {
	secs, err := strconv.ParseFloat(reply.Get("ttl"), 64)
	if err != nil || secs <= 0 {
		return
	}
	ttl := min(time.Duration(secs*float64(time.Second)), maxTTL)
	vary := parseVary(reply.Get("vary"))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxDecisions || !equal(vary, c.vary) {
		// Bounded, and one vary list at a time: start over.
		c.entries = map[string]decision{}
		c.vary = vary
	}
	c.entries[varyKey(payload, vary)] = decision{reply: reply, expires: time.Now().Add(ttl)}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
