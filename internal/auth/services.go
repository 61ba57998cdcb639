package auth

import (
	"net/url"
	"strconv"
	"strings"
)

// Context is the JSON-LD context of the Authorization Flow API 2.0; it
// comes first in the @context of a restricted image's info.json.
const Context = "http://iiif.io/api/auth/2/context.json"

// lang is a IIIF language map with one English value.
func lang(s string) map[string][]string { return map[string][]string{"en": {s}} }

// accessName is the name of the access service of a profile, the last
// segment of its URL.
func accessName(profile string) string {
	if profile == ProfileActive {
		return "login"
	}
	return profile
}

// ProbeURL returns the probe service of identifier id under base.
func ProbeURL(base, id string) string {
	return strings.TrimSuffix(base, "/") + "/auth/v2/probe/" + url.PathEscape(id)
}

// Services returns the services that the info.json of the image id
// declares (under base, the server's public URL): its probe service,
// holding the access service, which holds the token and logout services
// (§3). It is nil for an image that is not restricted.
func (a *Auth) Services(base, id string) []any {
	if a.rule(id).Policy == Public {
		return nil
	}
	base = strings.TrimSuffix(base, "/")
	access := map[string]any{
		"id":      base + "/auth/v2/access/" + accessName(a.cfg.Profile),
		"type":    "AuthAccessService2",
		"profile": a.cfg.Profile,
		"service": []any{
			map[string]any{
				"id":           base + "/auth/v2/token",
				"type":         "AuthAccessTokenService2",
				"errorHeading": lang("Access could not be given"),
				"errorNote":    lang("The image server could not give this viewer access to the image."),
			},
			map[string]any{
				"id":    base + "/auth/v2/logout",
				"type":  "AuthLogoutService2",
				"label": lang("Sign out of the image server"),
			},
		},
	}
	switch a.cfg.Profile {
	case ProfileActive:
		access["label"] = lang("Sign in to see this image")
		access["heading"] = lang("This image is restricted")
		access["note"] = lang("Sign in with your account of this image server to see it.")
		access["confirmLabel"] = lang("Sign in")
	case ProfileKiosk:
		access["label"] = lang("On-site access")
	case ProfileExternal:
		access["label"] = lang("Access through your institution's sign-in")
	}
	return []any{map[string]any{
		"id":      ProbeURL(base, id),
		"type":    "AuthProbeService2",
		"service": []any{access},
	}}
}

// probeResult is the AuthProbeResult2 (§2.2.2) for image id and what
// its requester's token got.
func (a *Auth) probeResult(base, id string, status int, why string) map[string]any {
	res := map[string]any{"@context": Context, "type": "AuthProbeResult2", "status": status}
	if status == 200 {
		return res
	}
	switch status {
	case 404:
		res["heading"] = lang("No such image")
		res["note"] = lang("There is no image " + strconv.Quote(id) + " on this server.")
		return res
	case 503:
		res["heading"] = lang("Access cannot be checked now")
		res["note"] = lang("The image server could not check your access: " + why)
		return res
	}
	r := a.rule(id)
	if r.Policy == Degraded {
		max := strconv.Itoa(r.Max)
		res["heading"] = lang("You are seeing a smaller version of this image")
		res["note"] = lang("Without signing in, this image is shown at most " + max + " pixels on its long side (" + why + ").")
		res["substitute"] = []any{map[string]any{
			"id":     strings.TrimSuffix(base, "/") + "/iiif/3/" + url.PathEscape(id) + "/full/!" + max + "," + max + "/0/default.jpg",
			"type":   "Image",
			"format": "image/jpeg",
			"service": []any{map[string]any{
				"id":      strings.TrimSuffix(base, "/") + "/iiif/3/" + url.PathEscape(id),
				"type":    "ImageService3",
				"profile": "level2",
			}},
		}}
		return res
	}
	res["heading"] = lang("This image is restricted")
	res["note"] = lang("Sign in to see it: " + why + ".")
	return res
}

// Context returns the JSON-LD context of the services (service.Gate).
func (a *Auth) Context() string { return Context }
