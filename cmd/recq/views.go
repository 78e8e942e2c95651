package main

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/recq/recq/streams"
)

// What -o json prints: snake_case keys, as in `recq consume` and `recq
// dlq`, kept apart from the library's Go types so that a renamed Go
// field never changes the CLI's output.

type topicSummaryJSON struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	Internal   bool   `json:"internal"`
}

func topicSummariesJSON(ts []streams.TopicSummary) []topicSummaryJSON {
	out := make([]topicSummaryJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, topicSummaryJSON{Name: t.Name, Partitions: t.Partitions, Internal: t.Internal})
	}
	return out
}

type partitionJSON struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	Replicas    []int32 `json:"replicas"`
	StartOffset int64   `json:"start_offset"`
	EndOffset   int64   `json:"end_offset"`
	Records     int64   `json:"records"`
}

type retentionJSON struct {
	Ms      int64  `json:"ms"`    // -1: no limit
	Bytes   int64  `json:"bytes"` // -1: no limit
	Policy  string `json:"cleanup_policy"`
	Forever bool   `json:"forever"` // nothing is ever deleted
}

type topicJSON struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions []partitionJSON   `json:"partitions"`
	Configs    map[string]string `json:"configs"` // non-default configs
	Retention  retentionJSON     `json:"retention"`
}

func topicInfoJSON(info streams.TopicInfo) topicJSON {
	out := topicJSON{Name: info.Name, ID: info.ID, Configs: info.Configs, Partitions: []partitionJSON{},
		Retention: retentionJSON{Ms: info.Retention.Ms, Bytes: info.Retention.Bytes, Policy: info.Retention.Policy, Forever: info.Retention.Forever()}}
	for _, p := range info.Partitions {
		out.Partitions = append(out.Partitions, partitionJSON{Partition: p.Partition, Leader: p.Leader, Replicas: p.Replicas,
			StartOffset: p.StartOffset, EndOffset: p.EndOffset, Records: p.EndOffset - p.StartOffset})
	}
	return out
}

type groupSummaryJSON struct {
	Name         string `json:"name"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
}

func groupSummariesJSON(gs []streams.GroupSummary) []groupSummaryJSON {
	out := make([]groupSummaryJSON, 0, len(gs))
	for _, g := range gs {
		out = append(out, groupSummaryJSON{Name: g.Name, State: g.State, ProtocolType: g.ProtocolType})
	}
	return out
}

type groupMemberJSON struct {
	MemberID string             `json:"member_id"`
	ClientID string             `json:"client_id"`
	Host     string             `json:"host"`
	Assigned map[string][]int32 `json:"assigned"` // topic -> partitions
}

type groupPartitionJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"` // -1: no commit
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"` // -1: unknown
	MemberID  string `json:"member_id,omitempty"`
}

type groupJSON struct {
	Name       string               `json:"name"`
	State      string               `json:"state"`
	Protocol   string               `json:"protocol"`
	Members    []groupMemberJSON    `json:"members"`
	Partitions []groupPartitionJSON `json:"partitions"`
}

func groupInfoJSON(info streams.GroupInfo) groupJSON {
	out := groupJSON{Name: info.Name, State: info.State, Protocol: info.Protocol,
		Members: []groupMemberJSON{}, Partitions: []groupPartitionJSON{}}
	for _, m := range info.Members {
		out.Members = append(out.Members, groupMemberJSON{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.Host, Assigned: m.Assigned})
	}
	for _, p := range info.Partitions {
		out.Partitions = append(out.Partitions, groupPartitionJSON{Topic: p.Topic, Partition: p.Partition,
			Committed: p.Committed, End: p.End, Lag: p.Lag, MemberID: p.MemberID})
	}
	return out
}

type offsetChangeJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Old       int64  `json:"old"` // -1: no commit before
	New       int64  `json:"new"`
}

func offsetChangesJSON(cs []streams.OffsetChange) []offsetChangeJSON {
	out := make([]offsetChangeJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, offsetChangeJSON{Topic: c.Topic, Partition: c.Partition, Old: c.Old, New: c.New})
	}
	return out
}

type subjectJSON struct {
	Subject string `json:"subject"`
	Version int    `json:"version"` // the latest
	ID      int    `json:"id"`
}

// joinInts prints partitions or broker ids as "0,1,2".
func joinInts(ns []int32) string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = strconv.Itoa(int(n))
	}
	return strings.Join(out, ",")
}

// assignedText prints a member's partitions as "orders: 0,1,2; payments: 1",
// topics in order.
func assignedText(assigned map[string][]int32) string {
	if len(assigned) == 0 {
		return "-"
	}
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(assigned)) {
		parts = append(parts, t+": "+joinInts(assigned[t]))
	}
	return strings.Join(parts, "; ")
}
