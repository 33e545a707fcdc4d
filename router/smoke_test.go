package router

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSmokeProxy(t *testing.T) {
	d := okDyno(t, "hello")
	tr := startRouter(t, oneApp("", d.addr()))
	resp, body := tr.roundTrip(t, "GET /a?b=1 HTTP/1.1\r\nHost: shop.test\r\n\r\n", "GET")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "hello", body)
	assert.Equal(t, "1.1 spacerouter", resp.Header.Get("Via"))
	line := tr.lines.wait(t, 0)
	assert.Contains(t, line, ` heroku[router]: at=info method=GET path="/a?b=1" host=shop.test request_id=`)
	assert.Equal(t, "web.1", field(line, "dyno"))
	assert.Equal(t, "200", field(line, "status"))
	assert.Equal(t, "5", field(line, "bytes"))
}
