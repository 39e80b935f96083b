// Package brokenclients owns poolproof's gallery of deliberately broken HTTP
// clients: the reference client (pooledclient) with exactly one classic bug
// each, so that every check is proven able to fail and a failed check points
// at one bug. The CLI lets a user pick any of them to watch poolproof catch
// it; the project's own certification tests run all of them.
//
// Every gallery client starts from ReferenceConfig, the reference client
// shaped to Contract, and changes only what its bug needs: a
// configuration knob, a wrapper around a pooledclient.Client (whose own
// retries or breaker are turned off where the wrapper supplies the buggy
// version), or, for the one client that builds transports itself, a fresh
// pooledclient per call. None of them skips TLS verification: they all trust
// Service.CAs and nothing else.
package brokenclients
