package sweep_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/sweep"
)

// Size the inventory pool for 200 calls/s against a 50ms service: Little's
// law says about 10 connections; the sweep measures where throughput stops
// rising.
func ExampleRun() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := env.NewEmbedded(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()

	res, err := sweep.Run(ctx, e, sweep.Config{
		Service:  "inventory",
		Latency:  50 * time.Millisecond,
		Rate:     200,
		Pools:    []int{2, 4, 8, 16, 32},
		Duration: 2 * time.Second,
		// Client: any func(harness.Service, int) (harness.Client, error);
		// the reference client when nil.
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = res.WriteTable(os.Stdout)
	k, _ := res.Knee(0)
	fmt.Println("pool:", k.Plateau)
}
