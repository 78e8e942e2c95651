package todo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/aggregates/snapshot"
	"github.com/recq/recq/consumers"
	"github.com/recq/recq/consumers/dedupe"
	"github.com/recq/recq/consumers/state"
	"github.com/recq/recq/health"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// Config is what System needs.
type Config struct {
	Brokers []string
	Serde   *schema.Serde
	// Redis keeps the read model, the projector's positions, the
	// observer's dedupe marks and the aggregate's snapshots; nil keeps
	// them in memory (rebuilt from the topics at every start).
	Redis      redis.UniversalClient
	Partitions int32  // of the todolist topics when they are created (default 4)
	Instance   string // stable identity of this process (fences a crashed predecessor at once)
	// CommandTimeout bounds a command's round trip; past it the API answers
	// 503 (default 5 s).
	CommandTimeout time.Duration
	// SessionTimeout is how long the aggregate runner's group waits for a
	// member that stopped answering (default 10 s): after a crash, commands
	// of its partitions wait that long. The consumers rejoin at once with
	// their instance id.
	SessionTimeout time.Duration
	Log            *slog.Logger
}

// System is the TodoList system in one process: the aggregate runner, the
// lists projector and projection, the completion observer, an invoker,
// and the HTTP API over them (Handler).
type System struct {
	cfg        Config
	log        *slog.Logger
	serde      *schema.Serde
	invoker    *aggregates.Invoker
	pub        *streams.Publisher
	aggregate  *aggregates.Runner[List]
	ids        *aggregates.Runner[Sequence]
	lists      *consumers.Runner
	completion *consumers.Runner
	projection *consumers.Projection
	hub        *hub
	events     *eventLog
}

// New creates the topics (if missing), registers every payload's schema,
// and builds the components; Run runs them.
func New(ctx context.Context, cfg Config) (*System, error) {
	if cfg.Partitions == 0 {
		cfg.Partitions = 4
	}
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = 5 * time.Second
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &System{cfg: cfg, log: cfg.Log, serde: cfg.Serde, hub: newHub()}
	n, err := s.prepare(ctx)
	if err != nil {
		return nil, err
	}
	aggOpts := []aggregates.RunnerOption{aggregates.WithInstanceID(cfg.Instance), aggregates.WithLogger(cfg.Log), aggregates.WithSessionTimeout(cfg.SessionTimeout)}
	projOpts := []consumers.RunnerOption{consumers.WithInstanceID(cfg.Instance), consumers.WithLogger(cfg.Log)}
	obsOpts := slices.Clone(projOpts)
	var model readModel = newMemoryModel()
	if cfg.Redis != nil {
		lists := ListsProjector(1, nil, nil).Group()
		model = &redisModel{rdb: cfg.Redis, prefix: lists}
		st, err := state.NewRedis(cfg.Redis)
		if err != nil {
			return nil, err
		}
		dd, err := dedupe.NewRedis(cfg.Redis)
		if err != nil {
			return nil, err
		}
		snaps, err := snapshot.NewRedis(cfg.Redis)
		if err != nil {
			return nil, err
		}
		aggOpts = append(aggOpts, aggregates.WithSnapshots(snaps, aggregates.DefaultSnapshotEvery))
		projOpts = append(projOpts, consumers.WithStore(st))
		obsOpts = append(obsOpts, consumers.WithDedupe(dd))
	}
	if s.pub, err = streams.NewPublisher(cfg.Brokers, streams.WithCodec(cfg.Serde)); err != nil {
		return nil, err
	}
	if s.aggregate, err = aggregates.NewRunner(Aggregate(), cfg.Serde, cfg.Brokers, aggOpts...); err != nil {
		return nil, err
	}
	if s.ids, err = aggregates.NewRunner(IDs(), cfg.Serde, cfg.Brokers, aggOpts...); err != nil {
		return nil, err
	}
	if s.lists, err = consumers.NewRunner(ListsProjector(1, model, s.hub), cfg.Serde, cfg.Brokers, projOpts...); err != nil {
		return nil, err
	}
	if s.completion, err = consumers.NewRunner(CompletionObserver(s.pub), cfg.Serde, cfg.Brokers, obsOpts...); err != nil {
		return nil, err
	}
	s.projection = Projection(model, s.lists)
	if s.events, err = newEventLog(cfg.Brokers, cfg.Serde, n); err != nil {
		return nil, err
	}
	if s.invoker, err = aggregates.NewInvoker(ctx, cfg.Brokers, cfg.Serde); err != nil {
		return nil, err
	}
	return s, nil
}

// prepare creates the topics and registers the schemas of every command,
// event and notification, so `recq send` and foreign clients find them
// before the first message. It returns the events topic's partitions.
func (s *System) prepare(ctx context.Context) (int, error) {
	cl, err := streams.Dial(ctx, s.cfg.Brokers)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := streams.NewAdmin(cl)
	for _, agg := range []string{Name, IDsName} {
		if err := aggregates.EnsureTopics(ctx, adm, agg, s.cfg.Partitions); err != nil {
			return 0, err
		}
	}
	if err := adm.EnsureTopic(ctx, streams.TopicSpec{Name: NotificationsTopic, Partitions: s.cfg.Partitions}); err != nil {
		return 0, err
	}
	info, err := adm.DescribeTopic(ctx, aggregates.EventsTopic(Name))
	if err != nil {
		return 0, err
	}
	agg, ids := Aggregate(), IDs()
	for topic, types := range map[string][]reflect.Type{
		aggregates.CommandsTopic(Name):    agg.CommandTypes(),
		aggregates.EventsTopic(Name):      agg.EventTypes(),
		aggregates.CommandsTopic(IDsName): ids.CommandTypes(),
		aggregates.EventsTopic(IDsName):   ids.EventTypes(),
		NotificationsTopic:                {reflect.TypeFor[ListCompleted]()},
	} {
		for _, t := range types {
			if err := s.serde.Register(ctx, topic, reflect.New(t).Interface()); err != nil {
				return 0, fmt.Errorf("todo: register the schema of %v: %w", t, err)
			}
		}
	}
	return len(info.Partitions), nil
}

// Components are the system's runners, for health.Handler.
func (s *System) Components() []health.Component {
	return []health.Component{s.aggregate, s.ids, s.lists, s.completion}
}

// Run runs every component until ctx ends or one fails; it then stops the
// others and returns the first error.
func (s *System) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	runs := []func(context.Context) error{s.aggregate.Run, s.ids.Run, s.lists.Run, s.completion.Run}
	errs := make([]error, len(runs))
	for i, run := range runs {
		wg.Go(func() {
			if errs[i] = run(ctx); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close releases the clients; call it after Run returned.
func (s *System) Close() {
	s.invoker.Close()
	s.events.close()
	_ = s.pub.Close(context.Background())
}

// eventLog reads a list's events back from the events topic, decoded.
type eventLog struct {
	rr         *streams.RangeReader
	serde      *schema.Serde
	partitions int
	types      map[string]reflect.Type // by payload name
}

func newEventLog(brokers []string, serde *schema.Serde, partitions int) (*eventLog, error) {
	rr, err := streams.NewRangeReader(brokers)
	if err != nil {
		return nil, err
	}
	l := &eventLog{rr: rr, serde: serde, partitions: partitions, types: map[string]reflect.Type{}}
	for _, t := range Aggregate().EventTypes() {
		name, err := serde.TypeName(reflect.New(t).Interface())
		if err != nil {
			rr.Close()
			return nil, err
		}
		l.types[name] = t
	}
	return l, nil
}

func (l *eventLog) read(ctx context.Context, list string, fn func(change)) error {
	topic := aggregates.EventsTopic(Name)
	var failed error
	err := l.rr.ReadKey(ctx, streams.KeyRead{Topic: topic, Partition: streams.KeyPartition([]byte(list), l.partitions), Key: []byte(list), Wait: 5 * time.Second},
		func(rec *kgo.Record) {
			if failed != nil {
				return
			}
			env, err := streams.ReadEnvelope(rec)
			t, ok := l.types[env.Type]
			if err != nil || !ok {
				failed = fmt.Errorf("todo: event at offset %d of %s: type %q: %v", rec.Offset, topic, env.Type, err)
				return
			}
			v := reflect.New(t)
			if err := l.serde.Decode(ctx, topic, rec.Value, v.Interface()); err != nil {
				failed = err
				return
			}
			fn(change{list: list, version: env.AggregateVersion, event: v.Elem().Interface()})
		})
	if err != nil {
		return err
	}
	return failed
}

func (l *eventLog) close() { l.rr.Close() }
