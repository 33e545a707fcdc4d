package router

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// page is a response body the router serves itself.
type page struct {
	body        []byte
	contentType string
}

// Built-in pages, served when an app names no page or its page cannot be
// fetched (SPEC.md section 9).
var (
	builtinErrorPage = &page{
		contentType: "text/html; charset=utf-8",
		body: []byte("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Application Error</title></head>\n" +
			"<body><h1>Application Error</h1>\n<p>An error occurred in the application and your page could not be served. " +
			"Please try again in a few moments.</p></body></html>\n"),
	}
	builtinMaintenancePage = &page{
		contentType: "text/html; charset=utf-8",
		body: []byte("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Offline for Maintenance</title></head>\n" +
			"<body><h1>Offline for Maintenance</h1>\n<p>This app is undergoing maintenance right now. " +
			"Please check back later.</p></body></html>\n"),
	}
)

// pages holds an app's error and maintenance pages, refreshed in the
// background.
type pages struct {
	errURL, maintURL string
	err              atomic.Pointer[page]
	maint            atomic.Pointer[page]
}

// maxPageBytes bounds a fetched page.
const maxPageBytes = 1 << 20

// pageRefresh is how often fetched pages are fetched again.
const pageRefresh = time.Minute

func newPages(a *config.App) *pages {
	p := &pages{errURL: a.ConfigVars["ERROR_PAGE_URL"], maintURL: a.ConfigVars["MAINTENANCE_PAGE_URL"]}
	p.err.Store(builtinErrorPage)
	p.maint.Store(builtinMaintenancePage)
	return p
}

// pagesFor returns the pages of a for a config that replaces sp's: the
// pages sp fetched for the same app and URL are kept until a fetch
// replaces them, so a fetch that fails at a reload keeps them (SPEC.md 9).
func (sp *space) pagesFor(a *config.App) *pages {
	p := newPages(a)
	for _, old := range sp.apps {
		if old.name != a.Name {
			continue
		}
		if old.pages.errURL == p.errURL {
			p.err.Store(old.pages.err.Load())
		}
		if old.pages.maintURL == p.maintURL {
			p.maint.Store(old.pages.maint.Load())
		}
	}
	return p
}

func (p *pages) errorPage() *page       { return p.err.Load() }
func (p *pages) maintenancePage() *page { return p.maint.Load() }

// fetchAll fetches both pages; a failure keeps the page it had (built-in
// at first) and is logged.
func (p *pages) fetchAll(ctx context.Context, client *http.Client, log *zap.Logger, appName string) {
	for _, t := range []struct {
		url  string
		dst  *atomic.Pointer[page]
		kind string
	}{{p.errURL, &p.err, "ERROR_PAGE_URL"}, {p.maintURL, &p.maint, "MAINTENANCE_PAGE_URL"}} {
		if t.url == "" {
			continue
		}
		pg, err := fetchPage(ctx, client, t.url)
		if err != nil {
			log.Warn("fetching page failed; serving the previous or built-in page",
				zap.String(logging.KeyApp, appName), zap.String("var", t.kind), zap.String("url", t.url), zap.Error(err))
			continue
		}
		t.dst.Store(pg)
	}
}

// fetchPage GETs url and keeps its body and Content-Type.
func fetchPage(ctx context.Context, client *http.Client, url string) (*page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("fetching: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if len(body) > maxPageBytes {
		return nil, fmt.Errorf("page is over %d bytes", maxPageBytes)
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = http.DetectContentType(body)
	} else if _, _, err := mime.ParseMediaType(ct); err != nil {
		return nil, fmt.Errorf("bad Content-Type %q: %w", ct, err)
	}
	return &page{body: body, contentType: ct}, nil
}
