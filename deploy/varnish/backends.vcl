# The replicas of deploy/compose.yaml, health-checked on /readyz so that a
# replica draining on shutdown stops getting requests.
probe ready {
	.url = "/readyz";
	.interval = 1s;
	.timeout = 1s;
	.window = 3;
	.threshold = 2;
}

backend iiifd1 { .host = "iiifd1"; .port = "8080"; .probe = ready; }
backend iiifd2 { .host = "iiifd2"; .port = "8080"; .probe = ready; }

sub vcl_init {
	new iiifd = directors.round_robin();
	iiifd.add_backend(iiifd1);
	iiifd.add_backend(iiifd2);
}

# Purges come from the replicas, on the compose network.
acl purgers {
	"localhost";
	"10.0.0.0"/8;
	"172.16.0.0"/12;
	"192.168.0.0"/16;
}
