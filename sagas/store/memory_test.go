package store_test

import (
	"testing"

	"github.com/recq/recq/sagas/store"
	"github.com/recq/recq/sagas/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return store.NewMemory() })
}
