// Package registry is a Confluent-compatible schema registry server: REST
// API v1, Avro schemas only, its data kept in a [Store] that is a log of
// keyed records, so it can live on a compacted Kafka topic and be served by
// several instances at once.
//
//	srv, err := registry.New(registry.NewMemoryStore(), registry.WithAuth(users))
//	...
//	http.ListenAndServe(":8081", srv.Handler())
//
// # API
//
// The endpoints, bodies, error codes and error messages are Confluent's, so
// Confluent clients (and franz-go's pkg/sr) work unchanged:
//
//	GET    /subjects                                  ?deleted=true, ?subjectPrefix=
//	POST   /subjects/{subject}                        look a schema up; ?deleted=true
//	DELETE /subjects/{subject}                        soft delete; ?permanent=true after it
//	GET    /subjects/{subject}/versions               ?deleted=true
//	POST   /subjects/{subject}/versions               register
//	GET    /subjects/{subject}/versions/{v}[/schema]  v: 1..2^31-1, latest or -1; ?deleted=true
//	DELETE /subjects/{subject}/versions/{v}           soft delete; ?permanent=true after it
//	GET    /subjects/{subject}/versions/{v}/referencedby  always [] (no references); ?deleted=true
//	GET    /schemas                                   every version; ?subjectPrefix=, ?deleted=true, ?latestOnly=true, ?offset=, ?limit=
//	GET    /schemas/types
//	GET    /schemas/ids/{id}[/schema|/subjects|/versions]
//	GET    /contexts                                  ["."]: the default context is the only one
//	GET|PUT|DELETE /config[/{subject}]                GET ?defaultToGlobal=true
//	GET|PUT|DELETE /mode[/{subject}]                  GET ?defaultToGlobal=true, PUT ?force=true
//	POST   /compatibility/subjects/{subject}/versions[/{v}]  ?verbose=true
//
// Schemas are compared by a canonical text: the JSON re-encoded compactly
// with keys in a fixed order (Avro's attributes first, as Avro prints them).
// Whitespace and key order do not make new versions;
// defaults, docs and aliases do (Avro's Parsing Canonical Form would drop
// them, and with them real differences). The same canonical schema gets the
// same id in every subject. Ids are allocated as one more than the highest
// id ever seen, so they are never reused. Schema references, metadata and
// rule sets are rejected with 42201 rather than silently dropped, and so are
// schemas nesting deeper than 128 JSON levels (compatibility checks take
// time cubic in the depth).
//
// There is one schema context, Confluent's default ".": a subjectPrefix of
// ":*:" or ":.:" is no prefix, and one naming another context matches
// nothing.
//
// Compatibility (NONE, BACKWARD (the default), FORWARD, FULL and their
// _TRANSITIVE variants) is checked on registration against the live
// versions of the subject by the Avro resolution rules, with a fresh
// hamba/avro checker per check (a reused one answers from a cache that
// ignores defaults). Modes: READWRITE (default), READONLY (writes get
// 42205), IMPORT (registrations must bring their id, checks are skipped).
//
// # Store contract
//
// All state is a pure function of the log: every instance folds the records
// it reads into the same subjects, versions, ids, configs and modes.
// Requests change nothing directly; they append records and read them back.
// The [Store] has two operations:
//
//   - Read(ctx, from) returns the records from a position to the end of the
//     log, and the end. It must see every Write that succeeded before it was
//     called, through any handle on the log. Every request starts by reading
//     (usually nothing new), which is what gives read-your-writes across
//     instances.
//   - Write(ctx, at, records) appends the records atomically if the log
//     still ends at position at, else fails with [ErrConflict] and appends
//     nothing. Of concurrent writers at one position exactly one wins.
//
// A write is decided on the whole log: the server reads to the end, decides
// (the next id, the next version, compatibility), and writes at the
// position it read to. A loser of the race reads the winner's records and
// decides again, so two instances never hand out one id twice and the same
// schema gets the same id everywhere. Within one Server requests are
// serialised, so only instances race.
//
// The Kafka store (package schema/kafkastore) maps positions to offsets and
// makes Write a claim: each write is a transaction whose first record is a
// NOOP, and the earliest claim after the decided position wins; a later
// claimer finds the winner's committed records between its position and its
// claim and reports ErrConflict (see that package). The conformance suite
// in package storetest states the contract as tests; every Store must pass
// it.
//
// # Log format
//
// Keys and values are JSON, in the shape of Confluent's _schemas topic.
// Keys always have the same bytes for the same thing (fixed field order, no
// spaces), as compaction requires. An empty subject (the global scope) is
// left out of the key.
//
//	key {"keytype":"SCHEMA","subject":S,"version":V,"magic":1}
//	    value {"subject":S,"version":V,"id":ID,"schema":CANONICAL,"deleted":BOOL}
//	    A version of a subject; "deleted":true soft-deletes it; a tombstone
//	    deletes it permanently.
//	key {"keytype":"CONFIG","subject":S,"magic":0}
//	    value {"subject":S,"compatibilityLevel":LEVEL}; tombstone: unset
//	key {"keytype":"MODE","subject":S,"magic":0}
//	    value {"subject":S,"mode":MODE}; tombstone: unset
//	key {"keytype":"DELETE_SUBJECT","subject":S,"magic":0}
//	    value {"subject":S,"version":V}: soft-deletes every version of S
//	    up to V that exists when the record is read. Compaction keeps it
//	    ordered after the versions it deleted, because those are never
//	    rewritten except by tombstones. Tombstoned with the subject's last
//	    version.
//	key {"keytype":"MAX_ID","magic":0}
//	    value {"id":ID}: the highest id handed out, written with every
//	    permanent delete, so that ids stay unique after compaction drops
//	    the SCHEMA records that carried them. Not in Confluent's format.
//
// Records with other key types are ignored, so NOOP and friends from a
// Confluent-written topic do no harm; records that cannot be decoded are
// logged and skipped.
package registry
