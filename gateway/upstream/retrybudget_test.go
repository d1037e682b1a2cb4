package upstream

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestRetryBudgetLimit(t *testing.T) {
	for _, c := range []struct {
		name string
		rb   *clusterv3.CircuitBreakers_Thresholds_RetryBudget
		base int64
		want int64
	}{
		{"defaults: 20%, at least 3", &clusterv3.CircuitBreakers_Thresholds_RetryBudget{}, 100, 20},
		{"defaults, few requests: the floor", &clusterv3.CircuitBreakers_Thresholds_RetryBudget{}, 5, 3},
		{"25% of 100", &clusterv3.CircuitBreakers_Thresholds_RetryBudget{BudgetPercent: &typev3.Percent{Value: 25}}, 100, 25},
		{"rounded down", &clusterv3.CircuitBreakers_Thresholds_RetryBudget{BudgetPercent: &typev3.Percent{Value: 25}, MinRetryConcurrency: wrapperspb.UInt32(0)}, 7, 1},
		{"none at all", &clusterv3.CircuitBreakers_Thresholds_RetryBudget{BudgetPercent: &typev3.Percent{Value: 0}, MinRetryConcurrency: wrapperspb.UInt32(0)}, 1000, 0},
	} {
		b, err := compileRetryBudget("retry_budget", c.rb)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := b.limit(c.base); got != c.want {
			t.Errorf("%s: limit(%d) = %d, want %d", c.name, c.base, got, c.want)
		}
	}
}

func TestRetryBudgetErrors(t *testing.T) {
	for _, c := range []struct {
		rb   *clusterv3.CircuitBreakers_Thresholds_RetryBudget
		want string
	}{
		{&clusterv3.CircuitBreakers_Thresholds_RetryBudget{BudgetPercent: &typev3.Percent{Value: 120}}, "retry_budget.budget_percent: 120 is not a percentage"},
		{&clusterv3.CircuitBreakers_Thresholds_RetryBudget{BudgetInterval: &durationpb.Duration{Seconds: -1}}, "retry_budget.budget_interval"},
	} {
		if _, err := compileRetryBudget("retry_budget", c.rb); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one containing %q", err, c.want)
		}
	}
}

// recentStarts forgets a request between 15/16 and one interval after
// it started.
func TestRecentStarts(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRecentStarts(160*time.Millisecond, func() time.Time { return now })
	for range 10 {
		r.add()
	}
	now = now.Add(50 * time.Millisecond)
	r.add()
	if got := r.total(); got != 11 {
		t.Fatalf("total %d, want 11", got)
	}
	now = now.Add(115 * time.Millisecond) // 165 ms after the first ten
	if got := r.total(); got != 1 {
		t.Errorf("after the first ten's interval: total %d, want 1", got)
	}
	now = now.Add(time.Hour)
	if got := r.total(); got != 0 {
		t.Errorf("an hour later: total %d, want 0", got)
	}
	r.add()
	if got := r.total(); got != 1 {
		t.Errorf("after a long idle: total %d, want 1", got)
	}
}
