package pooledclient

import "errors"

// Sentinel errors callers branch on with errors.Is. The errors the client
// returns wrap them with the service name and what to do.
var (
	// ErrPoolExhausted: no connection slot freed up within Config.PoolWait.
	ErrPoolExhausted = errors.New("connection pool exhausted")
	// ErrCircuitOpen: the service's breaker is open (or half-open with all
	// probe slots taken); the call never touched the network.
	ErrCircuitOpen = errors.New("circuit breaker open")
	// ErrClosed: the client or pool was closed.
	ErrClosed = errors.New("client closed")
	// ErrUnknownService: Pool.Client was asked for a service it was not built with.
	ErrUnknownService = errors.New("unknown service")
	// ErrInvalidConfig: a Config was refused at construction.
	ErrInvalidConfig = errors.New("invalid configuration")
)
