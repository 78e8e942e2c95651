package kafkastore_test

import (
	"context"
	"testing"
	"time"

	"github.com/recq/recq/internal/testenv"
	"github.com/recq/recq/schema/kafkastore"
	"github.com/recq/recq/schema/registry"
	"github.com/recq/recq/schema/registry/storetest"
)

// The Kafka store passes the same conformance suite as the memory store,
// against the embedded broker over TCP, with separate clients per handle as
// separate registry instances would have.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() registry.Store {
		addr := testenv.Kafka(t)
		return func() registry.Store {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := kafkastore.Open(ctx, []string{addr}, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			return s
		}
	})
}
