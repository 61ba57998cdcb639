// Package replicas tests iiifd scaled out without containers: several
// iiifd processes (the real binary) sharing a real S3-compatible store
// (versitygw) and a real Redis, behind a real HAProxy (health checks on
// /readyz, retries of idempotent GETs) or a real Varnish with xkey (purge
// by tag). It holds no code besides its tests and their harness: what it
// checks is how the pieces behave together, which no package's own tests
// can show.
//
// The tests need haproxy, varnishd (with varnish-modules), redis-server
// and versitygw; scripts/test installs them, and with IIIFD_TEST_TOOLS=1
// a missing one fails the test instead of skipping it. scripts/bench-cdn
// runs the long CDN replay (TestCDNReplay) with IIIFD_BENCH_CDN=1.
package replicas
