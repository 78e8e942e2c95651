package registry_test

import (
	"testing"

	"github.com/recq/recq/schema/registry"
	"github.com/recq/recq/schema/registry/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) func() registry.Store {
		s := registry.NewMemoryStore()
		return func() registry.Store { return s }
	})
}
