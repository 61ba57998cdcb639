package plugin

import (
	"testing"
	"time"
)

func TestDecisionCache(t *testing.T) {
	req := func(auth, region string) Fields {
		return Fields{{"id", "x"}, {"region", region}, {"header:authorization", auth}}
	}
	allow := Fields{{"action", "allow"}, {"ttl", "60"}, {"vary", "header:authorization"}}
	var c decisionCache
	if _, ok := c.get(req("a", "full")); ok {
		t.Fatal("hit in an empty cache")
	}
	c.put(req("a", "full"), allow)
	tests := []struct {
		req Fields
		hit bool
	}{
		{req("a", "full"), true},
		{req("a", "0,0,10,10"), true}, // region is not in vary
		{req("b", "full"), false},
		{Fields{{"id", "x"}}, false}, // no header at all
	}
	for i, tt := range tests {
		if _, ok := c.get(tt.req); ok != tt.hit {
			t.Errorf("%d: hit %v, want %v", i, ok, tt.hit)
		}
	}
	// Replies without ttl are not kept; expired ones are not served.
	c.put(req("c", "full"), Fields{{"action", "allow"}})
	if _, ok := c.get(req("c", "full")); ok {
		t.Error("a reply without ttl was reused")
	}
	c.put(req("d", "full"), Fields{{"action", "allow"}, {"ttl", "0.001"}, {"vary", "header:authorization"}})
	time.Sleep(5 * time.Millisecond)
	if _, ok := c.get(req("d", "full")); ok {
		t.Error("an expired reply was reused")
	}
}
