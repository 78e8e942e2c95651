package tracing

import (
	"context"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// sampling is what recq knows of the sampler the SDK builds from
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, so as not to make spans
// that could not record: starting one costs more than the rest of a
// record's handling. Where it cannot tell (always_on, a ratio, a sampler
// it does not know), it asks the SDK every time.
type sampling struct {
	followsParent bool // a child is sampled as its parent (the parentbased_ samplers, the default)
	rootNever     bool // a span without a parent is never sampled
	never         bool // no span is ever sampled (always_off, a ratio of 0)
}

func samplingFromEnv() sampling {
	arg := strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG"))
	zero := func() bool {
		r, err := strconv.ParseFloat(arg, 64)
		return err == nil && r <= 0 // unset or bad, the SDK takes 1
	}
	switch strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER"))) {
	case "", "parentbased_always_on":
		return sampling{followsParent: true}
	case "parentbased_always_off":
		return sampling{followsParent: true, rootNever: true}
	case "parentbased_traceidratio":
		return sampling{followsParent: true, rootNever: zero()}
	case "always_off":
		return sampling{rootNever: true, never: true}
	case "traceidratio":
		return sampling{rootNever: zero(), never: zero()}
	}
	return sampling{}
}

// recordable reports whether a span started under ctx could record.
func (s sampling) recordable(ctx context.Context) bool {
	if s.never {
		return false
	}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return !s.rootNever
	}
	return sc.IsSampled() || !s.followsParent
}
