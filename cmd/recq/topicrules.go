package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Kafka's rules for topic names and topic configs, checked before a
// request is sent: a broker that accepts what Kafka refuses (recq dev's
// does) would otherwise keep a topic no other cluster could hold, or a
// retention.ms=abc that it reads as 0.

// maxTopicName is Kafka's longest topic name.
const maxTopicName = 249

// checkTopicName applies Kafka's rules: 1 to 249 characters of ASCII
// letters, digits, '.', '_' and '-', and not "." or "..".
func checkTopicName(name string) error {
	switch {
	case name == "":
		return usagef("topic name is empty")
	case name == "." || name == "..":
		return usagef("topic name %q is not allowed by Kafka (\".\" and \"..\" are reserved)", name)
	case len(name) > maxTopicName:
		return usagef("topic name is %d characters long; Kafka allows at most %d", len(name), maxTopicName)
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return usagef("topic name %q has %q at position %d: Kafka allows only ASCII letters, digits, '.', '_' and '-'", name, r, i+1)
		}
	}
	return nil
}

// configRule is the type and range of one topic config's value.
type configRule struct {
	kind     configKind
	min, max int64    // kindInt, kindLong
	values   []string // kindEnum, kindList: the allowed values
}

type configKind uint8

const (
	kindLong   configKind = iota // a 64-bit integer
	kindInt                      // a 32-bit integer
	kindBool                     // true or false
	kindRatio                    // a number from 0 to 1
	kindEnum                     // one of values
	kindList                     // a non-empty comma-separated list of values
	kindString                   // anything (replica lists)
)

func long(min int64) configRule { return configRule{kind: kindLong, min: min, max: math.MaxInt64} }
func int32r(min, max int64) configRule {
	return configRule{kind: kindInt, min: min, max: max}
}

// topicConfigs are the topic configs of Apache Kafka 4 (TopicConfig), with
// the ranges its brokers enforce.
var topicConfigs = map[string]configRule{
	"cleanup.policy":                          {kind: kindList, values: []string{"delete", "compact"}},
	"compression.type":                        {kind: kindEnum, values: []string{"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}},
	"compression.gzip.level":                  {kind: kindEnum, values: []string{"-1", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
	"compression.lz4.level":                   int32r(1, 17),
	"compression.zstd.level":                  int32r(-131072, 22),
	"delete.retention.ms":                     long(0),
	"file.delete.delay.ms":                    long(0),
	"flush.messages":                          long(1),
	"flush.ms":                                long(0),
	"follower.replication.throttled.replicas": {kind: kindString},
	"index.interval.bytes":                    int32r(0, math.MaxInt32),
	"leader.replication.throttled.replicas":   {kind: kindString},
	"local.retention.bytes":                   long(-2),
	"local.retention.ms":                      long(-2),
	"max.compaction.lag.ms":                   long(1),
	"max.message.bytes":                       int32r(0, math.MaxInt32),
	"message.timestamp.after.max.ms":          long(0),
	"message.timestamp.before.max.ms":         long(0),
	"message.timestamp.type":                  {kind: kindEnum, values: []string{"CreateTime", "LogAppendTime"}},
	"min.cleanable.dirty.ratio":               {kind: kindRatio},
	"min.compaction.lag.ms":                   long(0),
	"min.insync.replicas":                     int32r(1, math.MaxInt32),
	"preallocate":                             {kind: kindBool},
	"remote.log.copy.disable":                 {kind: kindBool},
	"remote.log.delete.on.disable":            {kind: kindBool},
	"remote.storage.enable":                   {kind: kindBool},
	"retention.bytes":                         long(-1),
	"retention.ms":                            long(-1),
	"segment.bytes":                           int32r(1<<20, math.MaxInt32),
	"segment.index.bytes":                     int32r(4, math.MaxInt32),
	"segment.jitter.ms":                       long(0),
	"segment.ms":                              long(1),
	"unclean.leader.election.enable":          {kind: kindBool},
}

// checkTopicConfigs refuses keys Kafka does not know for topics and values
// of the wrong type or out of range, naming the first one (in key order).
// Keys under confluent. pass unchecked, for Confluent Server.
func checkTopicConfigs(cfgs map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(cfgs)) {
		if strings.HasPrefix(k, "confluent.") {
			continue
		}
		rule, ok := topicConfigs[k]
		if !ok {
			return usagef("--config %s: not a Kafka topic config; known ones: %s", k, strings.Join(slices.Sorted(maps.Keys(topicConfigs)), ", "))
		}
		if err := rule.check(strings.TrimSpace(cfgs[k])); err != nil {
			return usagef("--config %s=%s: %v", k, cfgs[k], err)
		}
	}
	return nil
}

func (r configRule) check(v string) error {
	switch r.kind {
	case kindLong, kindInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("want a whole number")
		}
		switch open := r.max == math.MaxInt64 || r.max == math.MaxInt32; {
		case n >= r.min && n <= r.max:
		case !open:
			return fmt.Errorf("want %d to %d", r.min, r.max)
		case n < r.min:
			return fmt.Errorf("want at least %d%s", r.min, minNote(r.min))
		default:
			return fmt.Errorf("want at most %d", r.max)
		}
	case kindBool:
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return fmt.Errorf("want true or false")
		}
	case kindRatio:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			return fmt.Errorf("want a number from 0 to 1")
		}
	case kindEnum:
		if !slices.Contains(r.values, v) {
			return fmt.Errorf("want one of %s", strings.Join(r.values, ", "))
		}
	case kindList:
		for _, item := range strings.Split(v, ",") {
			if !slices.Contains(r.values, strings.TrimSpace(item)) {
				return fmt.Errorf("want %s, or both separated by a comma", strings.Join(r.values, " or "))
			}
		}
	}
	return nil
}

// minNote explains the lower bounds that mean something.
func minNote(min int64) string {
	switch min {
	case -1:
		return " (-1: no limit)"
	case -2:
		return " (-2: the topic's retention.*)"
	case 1 << 20:
		return " (1 MiB)"
	}
	return ""
}
