//go:build wasip1

// Command auth-token is an iiifd plugin that allows requests carrying
// "Authorization: Bearer TOKEN" and answers 401 to the others. The token
// comes from the plugin configuration (auth-token.token), "letmein" by
// default. With auth-token.degraded=N, requests without the token are
// not refused but served at most N pixels wide and high.
package main

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"

	"github.com/iiifd/iiifd/sdk/go/iiifdplugin"
)

var (
	token    = "letmein"
	degraded = 0
)

func init() {
	iiifdplugin.Configure(func(cfg iiifdplugin.Fields) error {
		if t := cfg.Get("token"); t != "" {
			token = t
		}
		if token == "" {
			return errors.New("token must not be empty")
		}
		if d := cfg.Get("degraded"); d != "" {
			n, err := strconv.Atoi(d)
			if err != nil || n < 1 {
				return fmt.Errorf("degraded %q is not a pixel count", d)
			}
			degraded = n
		}
		return nil
	})
}

//go:wasmexport authorize
func authorize(ptr, size uint32) uint64 { return iiifdplugin.Authorize(ptr, size, check) }

// check decides on the Authorization header alone, so the host may reuse
// its decision for a minute for requests with the same header.
func check(req iiifdplugin.Fields) iiifdplugin.Decision {
	return decide(req).Cache(60, "header:authorization")
}

func decide(req iiifdplugin.Fields) iiifdplugin.Decision {
	const prefix = "Bearer "
	h := req.Header("authorization")
	if len(h) > len(prefix) && h[:len(prefix)] == prefix &&
		subtle.ConstantTimeCompare([]byte(h[len(prefix):]), []byte(token)) == 1 {
		return iiifdplugin.Allow()
	}
	if degraded > 0 {
		return iiifdplugin.AllowMax(degraded, degraded)
	}
	return iiifdplugin.Deny(401, "a valid bearer token is required", `Bearer realm="iiifd"`)
}

func main() {}
