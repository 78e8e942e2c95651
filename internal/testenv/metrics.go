package testenv

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Samples are a Prometheus scrape: each sample's value by its name and
// labels as printed (name{a="x",b="y"}).
type Samples map[string]float64

// Scrape reads the Prometheus text exposition at url.
func Scrape(t testing.TB, url string) Samples {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("testenv: scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: scrape %s: %s", url, resp.Status)
	}
	s := Samples{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("testenv: scrape %s: sample %q: %v", url, line, err)
		}
		s[line[:i]] = v
	}
	return s
}

// Sum adds the samples named name whose labels hold every one of labels
// (`key="value"`), and says how many there were.
func (s Samples) Sum(name string, labels ...string) (total float64, n int) {
	for k, v := range s {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(k, l)
		}
		if ok {
			total, n = total+v, n+1
		}
	}
	return total, n
}
