// Package fakeservers owns the three fake services poolproof certifies
// clients against (payment, inventory, notification), all built on one
// instrumented server core. The core records the server-side truth the checks
// trust most (connections accepted and closed, requests per connection,
// attempts per X-Request-ID, charges per order), applies HTTP-level faults and
// keep-alive limits set at run time, and serves TLS with a CA it generates.
//
// It must not import the harness or the reference client.
package fakeservers
