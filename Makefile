# recq — the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
BIN     := bin/recq
PKGS    := ./...

.PHONY: build run test deps bench lint clean

build:
	$(GO) build -o $(BIN) ./cmd/recq
	$(GO) build -o bin/todo-service ./examples/todo/service

## run: the TodoList system (http://127.0.0.1:8080) on recq dev (broker 127.0.0.1:9092, registry :8081), data in ./.recq
run: build
	@scripts/run.sh

## test: vet, then every test (unit, broker-over-TCP and integration) with -race
test: deps
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }
	$(GO) test -race -timeout 20m $(PKGS)

## deps: install what the tests run against (kcat, redis-server) when missing
deps:
	@scripts/deps.sh

## bench: the benchmarks recorded in BENCHMARKS.md
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./streams/ ./schema/ ./aggregates/snapshot/
	$(GO) test -run '^$$' -bench 'Send|RawTransactional' -benchtime 20000x -count 3 ./aggregates/
	$(GO) test -run '^$$' -bench Load -benchtime 30x -timeout 20m ./aggregates/
	scripts/bench-consume.sh
	$(GO) test -run '^$$' -bench RunnerStart -benchtime 20x -count 3 ./consumers/
	$(GO) test -run '^$$' -bench Commit -benchtime 300x -count 3 ./consumers/state/
	$(GO) test -run '^$$' -bench Saga -benchtime 1x -count 3 -timeout 20m ./sagas/
	$(GO) test -run '^$$' -bench TracingOverhead -benchtime 1x -count 5 -v -timeout 20m ./tracing/
	$(GO) test -run '^$$' -bench Replay -benchtime 1x -v -timeout 20m ./cmd/recq/
	scripts/bench-todo.sh --requests 5000 --concurrency 32
	scripts/bench-todo.sh --requests 300 --concurrency 1

lint:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }

clean:
	rm -rf bin .recq
