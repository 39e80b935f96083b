// Package sweep owns the pool-sizing load test: for one service, with a
// given injected latency and optional fault, it drives a client at a grid of
// pool sizes and loads (closed-loop concurrencies or one open-loop rate),
// measures each cell (throughput, p50/p99 from an HDR histogram, error rate)
// and finds the knee: the smallest pool whose throughput reaches the plateau,
// the pool with the lowest p99, and the pool below which errors begin. It
// sets the measured answer beside the (cores*2)+spindles rule of thumb and the
// Little's-law estimate (rate x latency).
//
// Faults and latency go through the environment's FaultDriver (Toxiproxy's
// API and the fake services' admin API), never into objects, so a sweep runs
// on any harness environment. The client comes from Config.Client; by default
// it is the reference client, which package reference builds at each pool
// size. Rendering the page is package sweep/sweepreport's job; the CLI
// (poolproof sweep) only parses flags and prints.
package sweep
