// Command loadgen measures the TodoList service over HTTP: requests per
// second and p50/p99 latency of POST /lists/{id}/items and GET
// /lists/{id}, with a bounded number of requests and a time limit.
//
//	go run ./examples/todo/loadgen --url http://127.0.0.1:8080 --requests 5000 --concurrency 32
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "the service's base URL (loopback)")
	requests := flag.Int("requests", 5000, "requests per measured phase")
	concurrency := flag.Int("concurrency", 32, "requests in flight")
	limit := flag.Duration("max-time", 2*time.Minute, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *limit)
	defer cancel()
	if err := run(ctx, *url, *requests, *concurrency); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url string, n, conc int) error {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}, Timeout: 30 * time.Second}
	// Enough lists that no list reaches its 100 items.
	lists := make([]string, max(conc, n/50))
	if _, err := phase(ctx, conc, len(lists), func(i int) error {
		var v struct{ ID string }
		if err := call(ctx, hc, "POST", url+"/lists", map[string]string{"title": fmt.Sprint("bench ", i), "owner": "bench"}, http.StatusCreated, &v); err != nil {
			return err
		}
		lists[i] = v.ID
		return nil
	}); err != nil {
		return err
	}
	add, err := phase(ctx, conc, n, func(i int) error {
		return call(ctx, hc, "POST", url+"/lists/"+lists[i%len(lists)]+"/items", map[string]string{"text": "x"}, http.StatusCreated, nil)
	})
	if err != nil {
		return err
	}
	get, err := phase(ctx, conc, n, func(i int) error {
		return call(ctx, hc, "GET", url+"/lists/"+lists[i%len(lists)], nil, http.StatusOK, nil)
	})
	if err != nil {
		return err
	}
	fmt.Printf("POST /lists/{id}/items  %s\nGET  /lists/{id}        %s\n", add, get)
	return nil
}

type result struct {
	n        int
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("%6.0f req/s  p50 %6.2f ms  p99 %6.2f ms  (%d requests)", float64(r.n)/r.elapsed.Seconds(),
		float64(r.p50.Microseconds())/1000, float64(r.p99.Microseconds())/1000, r.n)
}

// phase runs do(0..n-1) with conc in flight and measures each call.
func phase(ctx context.Context, conc, n int, do func(i int) error) (result, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t := time.Now()
				if err := do(i); err != nil {
					once.Do(func() { first = err })
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	elapsed := time.Since(start)
	slices.Sort(lat)
	return result{n: n, elapsed: elapsed, p50: lat[n/2], p99: lat[n*99/100]}, first
}

func call(ctx context.Context, hc *http.Client, method, url string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
