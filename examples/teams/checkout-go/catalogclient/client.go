// Package catalogclient is the checkout team's HTTP client for the catalog
// (inventory) service: an *http.Client with the team's pool, timeouts and
// nothing else, built once per service and shared by every request.
package catalogclient

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"time"
)

// Config is what the team tunes per service.
type Config struct {
	MaxConns       int           // connections to the service at most
	RequestTimeout time.Duration // a whole call, body included
	IdleTimeout    time.Duration // an idle pooled connection is closed after this
	RootCAs        *x509.CertPool
}

// Defaults are the team's settings.
func Defaults() Config {
	return Config{MaxConns: 16, RequestTimeout: 2 * time.Second, IdleTimeout: 30 * time.Second}
}

// New builds the client: a bounded pool that keeps as many idle
// connections as it may open (so a burst does not churn), dial and TLS
// handshake bounded, and one timeout over the whole call.
func New(cfg Config) *http.Client {
	t := &http.Transport{
		Proxy:                 nil, // the service is called directly
		DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   time.Second,
		MaxConnsPerHost:       cfg.MaxConns,
		MaxIdleConns:          cfg.MaxConns,
		MaxIdleConnsPerHost:   cfg.MaxConns,
		IdleConnTimeout:       cfg.IdleTimeout,
		ResponseHeaderTimeout: cfg.RequestTimeout,
	}
	if cfg.RootCAs != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: t, Timeout: cfg.RequestTimeout}
}
