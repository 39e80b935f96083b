package pooledclient_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/poolproof/poolproof/pooledclient"
	"github.com/prometheus/client_golang/prometheus"
)

// A team builds one Pool at start-up from the reference defaults, pointing
// each service at its address, pre-dials the warm connections, and then
// calls services through their own clients.
func ExamplePool() {
	// Stand-ins for the real services.
	payment := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			fmt.Fprintf(w, `{"charge":"ch_1","key":%q}`, r.Header.Get("Idempotency-Key"))
		}
	}))
	defer payment.Close()
	inventory := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"sku":"A-1","stock":42}`)
	}))
	defer inventory.Close()
	addr := map[string]string{pooledclient.Payment: payment.URL, pooledclient.Inventory: inventory.URL}

	var cfgs []pooledclient.Config
	for _, cfg := range pooledclient.DefaultConfigs() {
		if cfg.Name == pooledclient.Notification {
			continue // this program does not send notifications
		}
		cfg.BaseURL = addr[cfg.Name] // and cfg.RootCAs for https
		cfgs = append(cfgs, cfg)
	}
	reg := prometheus.NewRegistry() // the program's own registry, served on /metrics
	pool, err := pooledclient.NewPool(cfgs, pooledclient.WithRegisterer(reg))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := pool.Warm(context.Background()); err != nil {
		log.Fatal(err)
	}

	inv, _ := pool.Client(pooledclient.Inventory)
	req, _ := http.NewRequest(http.MethodGet, inventory.URL+"/v1/items/A-1", nil)
	resp, err := inv.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close() // frees the connection slot
	fmt.Println(resp.StatusCode, string(body))

	pay, _ := pool.Client(pooledclient.Payment)
	req, _ = http.NewRequest(http.MethodPost, payment.URL+"/v1/charges", strings.NewReader(`{"amount":100}`))
	req.Header.Set("Idempotency-Key", "order-7") // makes the charge safe to retry
	resp, err = pay.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))

	fmt.Println("warm payment connections:", pay.Stats().Open)
	_, err = pool.Client("shipping")
	fmt.Println(err)
	// Output:
	// 200 {"sku":"A-1","stock":42}
	// 200 {"charge":"ch_1","key":"order-7"}
	// warm payment connections: 2
	// pooledclient: service "shipping": unknown service; configured services: inventory, payment
}
