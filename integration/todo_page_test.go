package integration

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/recq/recq/internal/testenv"
)

// The page, driven in headless Chromium: a list created through its form
// appears, an item added through the form appears, an item added by
// another client appears live (the events stream, no reload), and a
// checkbox clicked checks the item in the read model.
func TestTodoPageInChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed, so the page is not tested in a browser: install it with 'apt-get install chromium' (make test does this when run as root)")
	}
	e := newTodoEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Flag("headless", true))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	page := "http://" + e.http + "/"
	// The first call starts the browser, for bctx's lifetime (a step's
	// shorter context would end it).
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	for i, step := range []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(page),
		chromedp.WaitVisible("#new-list"),
		chromedp.SendKeys("#list-title", "groceries"),
		chromedp.Click("#new-list button"),
		chromedp.WaitVisible("#list"),
		chromedp.SendKeys("#item-text", "milk"),
		chromedp.Click("#new-item button"),
		chromedp.WaitVisible(`#items li span`),
	} {
		sctx, scancel := context.WithTimeout(bctx, 20*time.Second)
		err := chromedp.Do(sctx, step)
		scancel()
		if err != nil {
			html, _ := chromedp.Run(bctx, chromedp.OuterHTML("body"))
			t.Fatalf("step %d of creating a list and an item in the page: %v; the page:\n%s", i, err, html)
		}
	}
	lists, err := chromedp.Run(bctx, chromedp.Text("#lists"))
	if err != nil {
		t.Fatal(err)
	}
	items, err := chromedp.Run(bctx, chromedp.Text("#items"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lists, "groceries") || !strings.Contains(items, "milk") {
		t.Fatalf("the page shows lists %q and items %q, want groceries and milk", lists, items)
	}

	// Another client adds an item: the page shows it without a reload.
	attr, err := chromedp.Run(bctx, chromedp.AttributeValue("#lists li.current", "data-id"))
	id := attr.Value
	if err != nil || id == "" {
		t.Fatalf("the current list's id in the page: %q %v", id, err)
	}
	e.must(ctx, http.StatusCreated, "POST", "/lists/"+id+"/items", "eggs", map[string]string{"text": "eggs"})
	if err := chromedp.Do(bctx,
		chromedp.WaitVisible(chromedp.Search(`//ul[@id="items"]/li/span[contains(., "eggs")]`)),
	); err != nil {
		t.Fatalf("the page never showed the item another client added: %v", err)
	}

	// A click checks the item in the read model.
	if err := chromedp.Do(bctx, chromedp.Click(`#items li:first-child input[type=checkbox]`)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the clicked checkbox checking the item", 20*time.Second, func() error {
		if v := e.list(ctx, id); len(v.Items) != 2 || !v.Items[0].Done || v.Items[1].Done {
			return fmt.Errorf("the list is %+v", v)
		}
		return nil
	})
	if err := chromedp.Do(bctx, chromedp.WaitVisible(`#items li.done`)); err != nil {
		t.Fatalf("the page never showed the item checked: %v", err)
	}
}
