// Package proxy owns certifying a reverse proxy's upstream pool: it starts
// nginx or HAProxy (the machine's own packages) from a user's configuration
// between the client under test and the fake services, and offers the
// whole as a harness.Environment.
//
// A configuration names poolproof's addresses with placeholders in place
// of hostnames and ports (Template, proxies/README.md): {{inventory.listen}}
// where the proxy listens for inventory, {{inventory-0}} or a directive
// with {{inventory.each}} for its replicas, {{tempdir}} for a folder of its
// own.
// Open runs every service the configuration listens for as replicas on the
// embedded environment (harness/env's WithReplicas: each replica behind its
// own Toxiproxy proxy, with its own server truth), has the proxy check the
// rendered configuration (a rejection carries the proxy's own message, on
// one line, pointing into the user's file), and runs it in the foreground
// in a process group of its own, with its pid, logs and temporary files in
// a folder it removes on Close. The proxy restarts at every Reset and
// stops, with every process of its group, on Close, whatever the verdict
// and on interrupt.
//
// The client calls each fronted service at the proxy's listener; the
// runner records each replica's truth (inventory-0, ...) in the history,
// where harness/check's proxy checks judge the upstream side. This package
// never judges.
package proxy
