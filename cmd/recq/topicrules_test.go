package main

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckTopicName(t *testing.T) {
	for _, ok := range []string{"orders", "todo.events", "a_b-C.9", strings.Repeat("x", 249)} {
		if err := checkTopicName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for name, want := range map[string]string{
		"":                       "empty",
		".":                      "reserved",
		"..":                     "reserved",
		"bad/name":               `has '/' at position 4`,
		"with space":             `has ' '`,
		"é":                      "ASCII",
		strings.Repeat("x", 250): "250 characters long; Kafka allows at most 249",
	} {
		err := checkTopicName(name)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), want) {
			t.Errorf("%.20q: got %v, want a usage error containing %q", name, err, want)
		}
	}
}

func TestCheckTopicConfigs(t *testing.T) {
	good := map[string]string{
		"retention.ms": "-1", "retention.bytes": "1073741824", "cleanup.policy": "compact, delete",
		"segment.bytes": "1048576", "min.insync.replicas": "2", "max.message.bytes": "2097152",
		"compression.type": "zstd", "message.timestamp.type": "LogAppendTime", "preallocate": "TRUE",
		"min.cleanable.dirty.ratio": "0.5", "confluent.placement.constraints": "{}",
	}
	if err := checkTopicConfigs(good); err != nil {
		t.Fatal(err)
	}
	for kv, want := range map[string]string{
		"retention.ms=abc":                "--config retention.ms=abc: want a whole number",
		"retention.ms=-2":                 "want at least -1 (-1: no limit)",
		"retention.bytes=1.5":             "want a whole number",
		"cleanup.policy=compacted":        "want delete or compact, or both",
		"segment.bytes=1000":              "want at least 1048576 (1 MiB)",
		"segment.bytes=4294967296":        "want at most 2147483647",
		"min.insync.replicas=0":           "want at least 1",
		"max.message.bytes=big":           "want a whole number",
		"compression.type=brotli":         "want one of producer, uncompressed, gzip, snappy, lz4, zstd",
		"message.timestamp.type=create":   "want one of CreateTime, LogAppendTime",
		"preallocate=yes":                 "want true or false",
		"min.cleanable.dirty.ratio=2":     "want a number from 0 to 1",
		"compression.gzip.level=0":        "want one of -1, 1,",
		"retention.time=1":                "--config retention.time: not a Kafka topic config; known ones: cleanup.policy, ",
		"unknown.key=1":                   "retention.bytes, retention.ms, segment.bytes",
		"message.downconversion.enable=1": "not a Kafka topic config",
	} {
		k, v, _ := strings.Cut(kv, "=")
		err := checkTopicConfigs(map[string]string{k: v})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want a usage error containing %q", kv, err, want)
		}
	}
}
