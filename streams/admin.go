package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Sentinel errors of topic and group administration.
var (
	ErrTopicNotFound = errors.New("topic not found")
	ErrTopicExists   = errors.New("topic already exists")
	ErrGroupNotFound = errors.New("consumer group not found")
	ErrGroupActive   = errors.New("consumer group has active members")
)

// Admin manages topics and reads consumer-group state. It wraps kadm and
// translates broker errors into the sentinels above.
type Admin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

// NewAdmin returns an Admin over cl; the caller keeps owning cl.
func NewAdmin(cl *kgo.Client) *Admin { return &Admin{cl: cl, adm: kadm.NewClient(cl)} }

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name       string
	Partitions int32             // must be at least 1
	Replicas   int16             // 0 or -1: the broker's default
	Configs    map[string]string // e.g. cleanup.policy=compact
}

// CreateTopic creates spec's topic; an existing topic gives ErrTopicExists.
func (a *Admin) CreateTopic(ctx context.Context, spec TopicSpec) error {
	if spec.Name == "" {
		return errors.New("streams: create topic: empty name")
	}
	if spec.Partitions < 1 {
		return fmt.Errorf("streams: create topic %q: partitions must be at least 1, got %d", spec.Name, spec.Partitions)
	}
	replicas := spec.Replicas
	if replicas == 0 {
		replicas = -1
	}
	var configs map[string]*string
	if len(spec.Configs) > 0 {
		configs = make(map[string]*string, len(spec.Configs))
		for k, v := range spec.Configs {
			configs[k] = &v
		}
	}
	resp, err := a.adm.CreateTopic(ctx, spec.Partitions, replicas, configs, spec.Name)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Errorf("streams: create topic %q: %w", spec.Name, ErrTopicExists)
	default:
		return fmt.Errorf("streams: create topic %q: %w%s", spec.Name, err, detail(resp.ErrMessage))
	}
}

// EnsureTopic creates the topic unless it exists; an existing one is left
// as it is (check what you need of it with DescribeTopic).
func (a *Admin) EnsureTopic(ctx context.Context, spec TopicSpec) error {
	if err := a.CreateTopic(ctx, spec); err != nil && !errors.Is(err, ErrTopicExists) {
		return err
	}
	return nil
}

func detail(msg string) string {
	if msg == "" {
		return ""
	}
	return " (" + msg + ")"
}

// DeleteTopic deletes a topic; a missing one gives ErrTopicNotFound.
func (a *Admin) DeleteTopic(ctx context.Context, name string) error {
	resp, err := a.adm.DeleteTopic(ctx, name)
	if err == nil {
		err = resp.Err
	}
	// kadm answers later metadata questions from the client's cache; without
	// the purge the deleted topic would still be described for a few seconds.
	a.cl.PurgeTopicsFromClient(name)
	if err != nil {
		return fmt.Errorf("streams: delete topic %q: %w", name, topicErr(err))
	}
	return nil
}

func topicErr(err error) error {
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return ErrTopicNotFound
	}
	return err
}

// TopicSummary is one line of a topic listing.
type TopicSummary struct {
	Name       string
	Partitions int
	Internal   bool
}

// ListTopics lists topics sorted by name; internal ones only if withInternal.
func (a *Admin) ListTopics(ctx context.Context, withInternal bool) ([]TopicSummary, error) {
	list := a.adm.ListTopics
	if withInternal {
		list = a.adm.ListTopicsWithInternal
	}
	tds, err := list(ctx)
	if err != nil {
		return nil, fmt.Errorf("streams: list topics: %w", err)
	}
	out := make([]TopicSummary, 0, len(tds))
	for _, td := range tds.Sorted() {
		out = append(out, TopicSummary{Name: td.Topic, Partitions: len(td.Partitions), Internal: td.IsInternal})
	}
	return out, nil
}

// PartitionCounts returns the partition count of each of topics, from one
// metadata request (DescribeTopic also reads offsets and configs); a topic
// that does not exist gives ErrTopicNotFound.
func (a *Admin) PartitionCounts(ctx context.Context, topics ...string) (map[string]int, error) {
	tds, err := a.adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("streams: partition counts: %w", err)
	}
	out := make(map[string]int, len(topics))
	for _, name := range topics {
		td, ok := tds[name]
		if !ok || td.Err != nil {
			err := ErrTopicNotFound
			if ok && !errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
				err = td.Err
			}
			return nil, fmt.Errorf("streams: partition counts: topic %q: %w", name, err)
		}
		out[name] = len(td.Partitions)
	}
	return out, nil
}

// PartitionInfo describes one partition of a topic.
type PartitionInfo struct {
	Partition   int32
	Leader      int32
	Replicas    []int32
	StartOffset int64 // log start offset
	EndOffset   int64 // high watermark
}

// TopicInfo describes a topic.
type TopicInfo struct {
	Name       string
	ID         string
	Partitions []PartitionInfo
	Configs    map[string]string // non-default configs
	Retention  Retention
}

// Retention is how long a topic keeps its records: its effective
// retention.ms, retention.bytes and cleanup.policy, broker defaults
// included (a broker that does not report one is taken at Kafka's
// default: 7 days, no size limit, delete).
type Retention struct {
	Ms, Bytes int64  // -1: no limit
	Policy    string // cleanup.policy: delete, compact, or compact,delete
}

// Forever reports whether the topic never deletes a record: no time or size
// limit, and no compaction (which drops all but a key's latest record).
func (r Retention) Forever() bool {
	return r.Ms < 0 && r.Bytes < 0 && !strings.Contains(r.Policy, "compact")
}

func (r Retention) String() string {
	limit := func(v int64, unit func(int64) string) string {
		if v < 0 {
			return "unlimited"
		}
		return unit(v)
	}
	return fmt.Sprintf("time %s, size %s, cleanup.policy=%s",
		limit(r.Ms, func(v int64) string { return (time.Duration(v) * time.Millisecond).String() }),
		limit(r.Bytes, func(v int64) string { return strconv.FormatInt(v, 10) + " bytes per partition" }),
		r.Policy)
}

// DescribeTopic returns a topic's partitions, offsets and non-default configs.
func (a *Admin) DescribeTopic(ctx context.Context, name string) (TopicInfo, error) {
	tds, err := a.adm.ListTopics(ctx, name)
	if err != nil {
		return TopicInfo{}, fmt.Errorf("streams: describe topic %q: %w", name, err)
	}
	td, ok := tds[name]
	if !ok || td.Err != nil {
		err := ErrTopicNotFound
		if ok && !errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
			err = td.Err
		}
		return TopicInfo{}, fmt.Errorf("streams: describe topic %q: %w", name, err)
	}
	info := TopicInfo{Name: name, ID: td.ID.String(), Configs: map[string]string{}}
	starts, err := a.adm.ListStartOffsets(ctx, name)
	if err != nil {
		return TopicInfo{}, fmt.Errorf("streams: describe topic %q: start offsets: %w", name, err)
	}
	ends, err := a.adm.ListEndOffsets(ctx, name)
	if err != nil {
		return TopicInfo{}, fmt.Errorf("streams: describe topic %q: end offsets: %w", name, err)
	}
	for _, p := range td.Partitions.Sorted() {
		pi := PartitionInfo{Partition: p.Partition, Leader: p.Leader, Replicas: p.Replicas, StartOffset: -1, EndOffset: -1}
		if o, ok := starts.Lookup(name, p.Partition); ok && o.Err == nil {
			pi.StartOffset = o.Offset
		}
		if o, ok := ends.Lookup(name, p.Partition); ok && o.Err == nil {
			pi.EndOffset = o.Offset
		}
		info.Partitions = append(info.Partitions, pi)
	}
	rcs, err := a.adm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		return TopicInfo{}, fmt.Errorf("streams: describe topic %q: configs: %w", name, err)
	}
	info.Retention = Retention{Ms: 7 * 24 * 3600 * 1000, Bytes: -1, Policy: "delete"}
	for _, rc := range rcs {
		if rc.Err != nil {
			return TopicInfo{}, fmt.Errorf("streams: describe topic %q: configs: %w", name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Value == nil {
				continue
			}
			if c.Source == 1 { // DYNAMIC_TOPIC_CONFIG: set on this topic
				info.Configs[c.Key] = *c.Value
			}
			switch c.Key {
			case "retention.ms":
				info.Retention.Ms, _ = strconv.ParseInt(*c.Value, 10, 64)
			case "retention.bytes":
				info.Retention.Bytes, _ = strconv.ParseInt(*c.Value, 10, 64)
			case "cleanup.policy":
				info.Retention.Policy = *c.Value
			}
		}
	}
	return info, nil
}

// SetTopicConfigs sets configs on an existing topic (incrementally: other
// configs keep their values).
func (a *Admin) SetTopicConfigs(ctx context.Context, name string, configs map[string]string) error {
	alter := make([]kadm.AlterConfig, 0, len(configs))
	for k, v := range configs {
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	rs, err := a.adm.AlterTopicConfigs(ctx, alter, name)
	if err == nil {
		var errs []error
		for _, r := range rs {
			if r.Err != nil {
				errs = append(errs, fmt.Errorf("%w%s", topicErr(r.Err), detail(r.ErrMessage)))
			}
		}
		err = errors.Join(errs...)
	}
	if err != nil {
		return fmt.Errorf("streams: set configs of topic %q: %w", name, err)
	}
	return nil
}

// EndOffsets returns the high watermark of every partition of topics, which
// must exist (ErrTopicNotFound otherwise).
func (a *Admin) EndOffsets(ctx context.Context, topics ...string) (map[string]map[int32]int64, error) {
	ends, err := a.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("streams: end offsets: %w", err)
	}
	out := make(map[string]map[int32]int64, len(topics))
	for _, t := range topics {
		ps, ok := ends[t]
		if !ok {
			return nil, fmt.Errorf("streams: end offsets of %q: %w", t, ErrTopicNotFound)
		}
		out[t] = make(map[int32]int64, len(ps))
		for p, o := range ps {
			if o.Err != nil {
				return nil, fmt.Errorf("streams: end offsets of %q: %w", t, topicErr(o.Err))
			}
			out[t][p] = o.Offset
		}
	}
	return out, nil
}

// GroupSummary is one line of a group listing.
type GroupSummary struct {
	Name         string
	State        string
	ProtocolType string
}

// ListGroups lists consumer groups sorted by name.
func (a *Admin) ListGroups(ctx context.Context) ([]GroupSummary, error) {
	lgs, err := a.adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("streams: list groups: %w", err)
	}
	out := make([]GroupSummary, 0, len(lgs))
	for _, g := range lgs.Sorted() {
		out = append(out, GroupSummary{Name: g.Group, State: g.State, ProtocolType: g.ProtocolType})
	}
	return out, nil
}

// GroupMember is one member of a consumer group.
type GroupMember struct {
	MemberID string
	ClientID string
	Host     string
	Assigned map[string][]int32 // topic -> partitions
}

// GroupPartition is a group's position in one partition. Committed is -1
// without a commit; Lag is -1 when it cannot be computed.
type GroupPartition struct {
	Topic     string
	Partition int32
	Committed int64
	End       int64
	Lag       int64
	MemberID  string // empty when unassigned
}

// GroupInfo describes a consumer group.
type GroupInfo struct {
	Name       string
	State      string
	Protocol   string
	Members    []GroupMember
	Partitions []GroupPartition // sorted by topic, partition
}

// DescribeGroup returns a group's members, committed offsets and lag. A group
// that has neither members nor commits gives ErrGroupNotFound.
func (a *Admin) DescribeGroup(ctx context.Context, group string) (GroupInfo, error) {
	lags, err := a.adm.Lag(ctx, group)
	if err != nil {
		return GroupInfo{}, fmt.Errorf("streams: describe group %q: %w", group, err)
	}
	l, ok := lags[group]
	if !ok {
		return GroupInfo{}, fmt.Errorf("streams: describe group %q: %w", group, ErrGroupNotFound)
	}
	if err := l.Error(); err != nil {
		if errors.Is(err, kerr.GroupIDNotFound) {
			err = ErrGroupNotFound
		}
		return GroupInfo{}, fmt.Errorf("streams: describe group %q: %w", group, err)
	}
	if len(l.Members) == 0 && len(l.Lag) == 0 && (l.State == "Dead" || l.State == "") {
		return GroupInfo{}, fmt.Errorf("streams: describe group %q: %w", group, ErrGroupNotFound)
	}
	info := GroupInfo{Name: group, State: l.State, Protocol: l.Protocol}
	for _, m := range l.Members {
		gm := GroupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assigned: map[string][]int32{}}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				ps := slices.Clone(t.Partitions)
				slices.Sort(ps)
				gm.Assigned[t.Topic] = ps
			}
		}
		info.Members = append(info.Members, gm)
	}
	for _, byPart := range l.Lag {
		for _, ml := range byPart {
			gp := GroupPartition{Topic: ml.Topic, Partition: ml.Partition, Committed: ml.Commit.At, End: ml.End.Offset, Lag: ml.Lag}
			if ml.Member != nil {
				gp.MemberID = ml.Member.MemberID
			}
			info.Partitions = append(info.Partitions, gp)
		}
	}
	sort.Slice(info.Partitions, func(i, j int) bool {
		pi, pj := info.Partitions[i], info.Partitions[j]
		if pi.Topic != pj.Topic {
			return pi.Topic < pj.Topic
		}
		return pi.Partition < pj.Partition
	})
	return info, nil
}

// OffsetChange is one partition's committed offset before and after a
// reset; Old is -1 when the group had not committed the partition.
type OffsetChange struct {
	Topic     string
	Partition int32
	Old, New  int64
}

// ResetGroup moves a stopped group's committed offsets of topics (default:
// every topic it has committed offsets for) to `to`: the log start, the
// last stable offset ("end": what a read-committed consumer would read
// next), an offset (clipped to the partition's range) or the first record
// at or after a time. A group with members is refused with ErrGroupActive:
// its consumers would overwrite the reset with their next commit. With
// dryRun nothing is committed.
func (a *Admin) ResetGroup(ctx context.Context, group string, to StartAt, dryRun bool, topics ...string) ([]OffsetChange, error) {
	wrap := func(err error) error { return fmt.Errorf("streams: reset group %q: %w", group, err) }
	described, err := a.adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, wrap(err)
	}
	if d, ok := described[group]; ok && len(d.Members) > 0 {
		return nil, wrap(fmt.Errorf("%w (%d, state %s): stop its consumers first", ErrGroupActive, len(d.Members), d.State))
	}
	committed, err := a.adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = nil, nil // a new group: positioned on the named topics
	}
	if err != nil {
		return nil, wrap(err)
	}
	if len(topics) == 0 {
		for t := range committed {
			topics = append(topics, t)
		}
		slices.Sort(topics)
		if len(topics) == 0 {
			return nil, wrap(fmt.Errorf("%w: it has no committed offsets; name the topics to position it on", ErrGroupNotFound))
		}
	}
	starts, err := a.listed(ctx, a.adm.ListStartOffsets, topics)
	if err != nil {
		return nil, wrap(err)
	}
	ends, err := a.listed(ctx, a.adm.ListCommittedOffsets, topics)
	if err != nil {
		return nil, wrap(err)
	}
	target := ends
	switch to.kind {
	case startBeginning:
		target = starts
	case startTime:
		at := func(ctx context.Context, ts ...string) (kadm.ListedOffsets, error) {
			return a.adm.ListOffsetsAfterMilli(ctx, to.at.UnixMilli(), ts...)
		}
		if target, err = a.listed(ctx, at, topics); err != nil {
			return nil, wrap(err)
		}
	}
	var changes []OffsetChange
	commit := kadm.Offsets{}
	target.Each(func(o kadm.ListedOffset) {
		next := o.Offset
		if to.kind == startOffset {
			s, _ := starts.Lookup(o.Topic, o.Partition)
			e, _ := ends.Lookup(o.Topic, o.Partition)
			next = min(max(to.offset, s.Offset), e.Offset)
		}
		old := int64(-1)
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok {
			old = c.At
		}
		changes = append(changes, OffsetChange{Topic: o.Topic, Partition: o.Partition, Old: old, New: next})
		commit.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: next, LeaderEpoch: -1})
	})
	sort.Slice(changes, func(i, j int) bool {
		ci, cj := changes[i], changes[j]
		return ci.Topic < cj.Topic || (ci.Topic == cj.Topic && ci.Partition < cj.Partition)
	})
	if dryRun {
		return changes, nil
	}
	resp, err := a.adm.CommitOffsets(ctx, group, commit)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, wrap(err)
	}
	return changes, nil
}

// listed runs a kadm offset listing and turns per-partition failures and
// missing topics into errors (ErrTopicNotFound for the latter).
func (a *Admin) listed(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topics []string) (kadm.ListedOffsets, error) {
	l, err := list(ctx, topics...)
	if err != nil {
		return nil, err
	}
	for _, t := range topics {
		if _, ok := l[t]; !ok {
			return nil, fmt.Errorf("topic %q: %w", t, ErrTopicNotFound)
		}
	}
	if err := l.Error(); err != nil {
		return nil, topicErr(err)
	}
	return l, nil
}
