# Varnish in front of iiifd replicas, with purge by tag (the xkey module
# of varnish-modules). iiifd tags every image and info.json response with
# its identifier's tag in Surrogate-Key; this VCL files the object under
# that tag, and a request
#
#     PURGE / HTTP/1.1
#     xkey-purge: iiifd-<tag>
#
# from an address in the acl "purgers" removes every object of the image
# (iiifd sends it itself with --purge-url after DELETE /admin/cache/{id}).
#
# backends.vcl, next to this file (varnishd -p vcl_path=DIR), declares the
# replicas, the director "iiifd" over them in vcl_init, and the acl
# "purgers"; deploy/varnish/backends.vcl is the one of deploy/compose.yaml.
vcl 4.1;

import std;
import xkey;
import directors;

include "backends.vcl";

sub vcl_recv {
	if (req.method == "PURGE") {
		if (client.ip !~ purgers) {
			return (synth(403, "Forbidden"));
		}
		if (!req.http.xkey-purge) {
			return (synth(400, "PURGE needs an xkey-purge header"));
		}
		set req.http.n-gone = xkey.purge(req.http.xkey-purge);
		return (synth(200, "Purged " + req.http.n-gone + " objects"));
	}
	set req.backend_hint = iiifd.backend();
	# Admin routes, uploads and metrics are never cached.
	if (req.url ~ "^/(admin|upload|metrics|healthz|readyz)" || (req.method != "GET" && req.method != "HEAD")) {
		return (pass);
	}
	# Responses do not depend on cookies or credentials without plugins;
	# with authorizing plugins iiifd marks them private and they pass.
	unset req.http.Cookie;
	return (hash);
}

sub vcl_backend_response {
	# xkey reads its keys from the xkey header.
	if (beresp.http.Surrogate-Key) {
		set beresp.http.xkey = beresp.http.Surrogate-Key;
	}
	# Errors are kept briefly, so that a burst for a missing image does
	# not reach the replicas, nor a fixed one stay missing.
	if (beresp.status >= 400) {
		set beresp.ttl = 5s;
	}
}

sub vcl_deliver {
	# Where the answer came from, for clients and the tests.
	if (obj.hits > 0) {
		set resp.http.X-Varnish-Cache = "HIT";
	} else {
		set resp.http.X-Varnish-Cache = "MISS";
	}
	unset resp.http.xkey;
}
