package env

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// MaxReplicas bounds WithReplicas: enough to balance across, few enough
// that every replica's truth is read after every run.
const MaxReplicas = 16

const optReplicas = "WithReplicas"

// WithReplicas runs service as n replicas instead of one (embedded only):
// n fake services named harness.ReplicaName(service, i), "inventory-0",
// "inventory-1", ..., each behind its own Toxiproxy proxy of that name and
// with its own admin API, so each is observed by its name and faulted
// alone (an Action whose Service is "inventory-1"). An action naming the
// service itself applies to every replica. Services no longer lists the
// service: something in front of the replicas (a reverse proxy, see
// package proxy) is where a client calls it; Replicas lists them.
func WithReplicas(service string, n int) Option {
	return option(optReplicas, func(c *config) {
		if c.replicas == nil {
			c.replicas = map[string]int{}
		}
		c.replicas[service] = n
	})
}

func (c *config) validateReplicas(envName string) error {
	for svc, n := range c.replicas {
		if !slices.Contains(fakeservers.Services, svc) {
			return fmt.Errorf("%s environment: WithReplicas(%q, %d): %w: want one of %v", envName, svc, n, harness.ErrUnknownService, fakeservers.Services)
		}
		if n < 1 || n > MaxReplicas {
			return fmt.Errorf("%s environment: WithReplicas(%q, %d): want 1 to %d replicas", envName, svc, n, MaxReplicas)
		}
	}
	return nil
}

// instance is one fake service the embedded environment runs: a service
// run as one, or one replica of a service.
type instance struct {
	name    string // its Toxiproxy proxy's and admin API's name: "inventory" or "inventory-1"
	service string // the service it serves
	replica bool
	seed    int64 // added to the environment's seed for its draws
}

// instances lists what the embedded environment runs, in
// fakeservers.Services order, replicas in replica order. A service run as
// one draws from seed+i (its index), as Reset reseeds it; replicas draw
// after them, each from its own.
func (c *config) instances() []instance {
	var out []instance
	next := int64(len(fakeservers.Services))
	for i, svc := range fakeservers.Services {
		n := c.replicas[svc]
		if n == 0 {
			out = append(out, instance{name: svc, service: svc, seed: int64(i)})
			continue
		}
		for r := range n {
			out = append(out, instance{name: harness.ReplicaName(svc, r), service: svc, replica: true, seed: next})
			next++
		}
	}
	return out
}

// replicaNames lists, by service, the replicas of the services run as
// several.
func replicaNames(byService map[string][]harness.Service) map[string][]string {
	out := make(map[string][]string, len(byService))
	for svc, reps := range byService {
		for _, r := range reps {
			out[svc] = append(out[svc], r.Name)
		}
	}
	return out
}

// replicaFaults is the fault handle of an environment that runs services
// as replicas: an action naming such a service applies to each of its
// replicas, every other action goes to the driver as it is.
type replicaFaults struct {
	driver   *FaultDriver
	replicas map[string][]string
}

func (f replicaFaults) Apply(ctx context.Context, a harness.Action) error {
	names, ok := f.replicas[a.Service]
	if !ok {
		return f.driver.Apply(ctx, a)
	}
	var errs []error
	for _, name := range names {
		one := a
		one.Service = name
		if err := f.driver.Apply(ctx, one); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Replicas lists the endpoints of service's replicas, each through its
// own Toxiproxy proxy, when WithReplicas runs it as several; it makes
// Embedded a harness.Replicated.
func (e *Embedded) Replicas(service string) []harness.Service {
	return slices.Clone(e.replicas[service])
}
