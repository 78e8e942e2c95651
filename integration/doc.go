// Package integration holds recq's end-to-end tests: they build the recq
// binary, start it as real processes (kill -9 included), and talk to it with
// foreign clients such as kcat (librdkafka). The package has no code of its
// own; `make test` runs it with everything else.
package integration
