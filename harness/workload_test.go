package harness

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
)

func testPlan(seed int64, w Workload) *plan {
	w = w.withDefaults()
	return newPlan(seed, requestIDPrefix("s", seed), w, map[string]string{
		fakeservers.Inventory: "http://inv", fakeservers.Payment: "http://pay/", fakeservers.Notification: "http://ntf",
	})
}

func TestPlanIsDeterministicAndFollowsTheMix(t *testing.T) {
	w := Workload{Mix: Mix{Inventory: 6, Payment: 3, Notification: 1}}
	a, b, c := testPlan(1, w), testPlan(1, w), testPlan(2, w)
	counts := map[Op]int{}
	differ := 0
	for seq := range uint32(10000) {
		opA, pA := a.draw(seq)
		opB, pB := b.draw(seq)
		require.Equal(t, opA, opB)
		require.Equal(t, pA, pB)
		if opC, _ := c.draw(seq); opC != opA {
			differ++
		}
		counts[opA]++
	}
	assert.Positive(t, differ, "another seed draws another sequence")
	assert.InDelta(t, 6000, counts[OpGetItem], 300)
	assert.InDelta(t, 3000, counts[OpCreateCharge], 300)
	assert.InDelta(t, 1000, counts[OpSendNotification], 300)

	only := testPlan(1, Workload{Mix: Mix{Payment: 1}})
	for seq := range uint32(100) {
		op, _ := only.draw(seq)
		require.Equal(t, OpCreateCharge, op)
	}
}

func TestPlanRequests(t *testing.T) {
	tests := []struct {
		name    string
		op      Op
		keyed   bool
		method  string
		url     string
		body    string
		idemKey string
	}{
		{"item", OpGetItem, false, http.MethodGet, "http://inv/v1/items/sku-42", "", ""},
		{"charge", OpCreateCharge, false, http.MethodPost, "http://pay/v1/charges", `{"order_id":"pp-s-7-order-3","amount":`, ""},
		{"keyed charge", OpCreateCharge, true, http.MethodPost, "http://pay/v1/charges", `"currency":"EUR"}`, "pp-s-7-key-3"},
		{"notification", OpSendNotification, false, http.MethodPost, "http://ntf/v1/notifications", `"channel":"email"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPlan(7, Workload{KeyedCharges: tt.keyed})
			req, err := p.request(context.Background(), 3, tt.op, 142)
			require.NoError(t, err)
			assert.Equal(t, tt.method, req.Method)
			assert.Equal(t, tt.url, req.URL.String())
			assert.Equal(t, "pp-s-7-3", req.Header.Get(fakeservers.HeaderRequestID))
			assert.Equal(t, tt.idemKey, req.Header.Get(fakeservers.HeaderIdempotencyKey))
			if tt.body != "" {
				require.NotNil(t, req.GetBody, "a client can replay the body on retry")
				b, err := io.ReadAll(req.Body)
				require.NoError(t, err)
				assert.Contains(t, string(b), tt.body)
			}
		})
	}
}

func TestRequestIDPrefixIsSafeAndSeeded(t *testing.T) {
	assert.Equal(t, "pp-keep-alive_race-z", requestIDPrefix("keep-alive race", 35))
	assert.NotEqual(t, requestIDPrefix("a", 1), requestIDPrefix("a", 2))
	assert.LessOrEqual(t, len(requestIDPrefix(string(make([]byte, 500)), -1)), 64)
}

func TestWorkloadValidation(t *testing.T) {
	tests := []struct {
		name string
		w    Workload
		ok   bool
	}{
		{"default", DefaultWorkload(), true},
		{"zero gets defaults but needs a duration", Workload{}, false},
		{"negative think", Workload{Duration: 1, ThinkTime: -1}, false},
		{"negative weight", Workload{Duration: 1, Mix: Mix{Inventory: 2, Payment: -1}}, false},
		{"open loop", Workload{Mode: OpenLoop, Duration: 1, Rate: 10}, true},
		{"open loop no rate", Workload{Mode: OpenLoop, Duration: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.w.withDefaults().validate()
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrInvalidWorkload)
			}
		})
	}
}
