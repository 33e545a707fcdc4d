package errcodes

import (
	"errors"
	"io"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTable(t *testing.T) {
	hcode := regexp.MustCompile(`^H[0-9]{2}$`)
	seen := map[Entry]Code{}
	for _, c := range All() {
		e := c.Entry()
		t.Run(c.String()+" "+e.Desc+" "+e.Cause, func(t *testing.T) {
			assert.Regexp(t, hcode, e.H)
			assert.Contains(t, []string{"info", "warning", "error"}, e.Level)
			assert.NotEmpty(t, e.Desc)
			assert.True(t, e.Status >= 400 && e.Status <= 599, "status %d", e.Status)
			assert.Contains(t, []string{"", "client", "backend"}, e.Sock)
			prev, dup := seen[e]
			assert.False(t, dup, "row of %d repeats row of %d", c, prev)
			seen[e] = c
		})
	}
	assert.Len(t, seen, int(numCodes)-1)
}

// TestSpecRows pins the rows of SPEC.md section 6 that log parsers match on.
func TestSpecRows(t *testing.T) {
	cases := []struct {
		c                           Code
		h, level, desc, cause, sock string
		status                      int
	}{
		{AppCrashed, "H10", "error", "App crashed", "", "", 503},
		{BacklogTooDeep, "H11", "error", "Backlog too deep", "", "", 503},
		{RequestTimeout, "H12", "error", "Request timeout", "", "", 503},
		{ConnectionClosedWithoutResponse, "H13", "error", "Connection closed without response", "", "", 503},
		{IdleConnection, "H15", "error", "Idle connection", "", "", 503},
		{PoorlyFormattedResponse, "H17", "error", "Poorly formatted HTTP response", "", "", 503},
		{ServerRequestInterrupted, "H18", "error", "Server Request Interrupted", "", "backend", 503},
		{BackendConnectionTimeout, "H19", "error", "Backend connection timeout", "", "", 503},
		{BackendConnectionRefused, "H21", "error", "Backend connection refused", "", "", 503},
		{OversizedRequestCookies, "H25", "error", "HTTP restriction: oversized cookies", "", "", 400},
		{OversizedRequestHeader, "H25", "error", "HTTP restriction: oversized header", "", "", 400},
		{OversizedRequestLine, "H25", "error", "HTTP restriction: oversized status line", "", "", 414},
		{OversizedResponseCookies, "H25", "error", "HTTP restriction: oversized cookies", "", "", 502},
		{OversizedResponseHeader, "H25", "error", "HTTP restriction: oversized header", "", "", 502},
		{OversizedResponseStatusLine, "H25", "error", "HTTP restriction: oversized status line", "", "", 502},
		{UnsupportedExpect, "H26", "error", "Request Error", "unsupported expect header value", "", 417},
		{BadHeader, "H26", "error", "Request Error", "bad header", "", 400},
		{BadChunk, "H26", "error", "Request Error", "bad chunk", "", 400},
		{ClientInterrupted, "H27", "warning", "Client Request Interrupted", "", "client", 499},
		{ClientIdle, "H28", "warning", "Client Connection Idle", "", "", 499},
		{MisdirectedRequest, "H31", "error", "Misdirected Request", "", "", 421},
		{MaintenanceMode, "H80", "info", "Maintenance mode", "", "", 503},
		{PlatformError, "H99", "error", "Platform error", "", "", 503},
		{ForcedClose, "H24", "error", "Forced close", "", "", 503},
		{ClientCertRequired, "H40", "warning", "Client certificate required", "", "", 496},
		{ClientCertExpired, "H41", "warning", "Client certificate rejected", "expired", "", 495},
		{ClientCertUnknownCA, "H41", "warning", "Client certificate rejected", "unknown_ca", "", 495},
		{ClientCertRevoked, "H41", "warning", "Client certificate rejected", "revoked", "", 495},
		{ClientCertBadUsage, "H41", "warning", "Client certificate rejected", "bad_usage", "", 495},
		{ClientCertRetiredCA, "H41", "warning", "Client certificate rejected", "retired_ca", "", 495},
		{ForbiddenByIPRule, "H42", "warning", "Forbidden by IP rule", "", "", 403},
		{DynoCertExpired, "H43", "error", "Backend certificate rejected", "expired", "", 503},
		{DynoCertUnknownCA, "H43", "error", "Backend certificate rejected", "unknown_ca", "", 503},
		{DynoCertNameMismatch, "H43", "error", "Backend certificate rejected", "name_mismatch", "", 503},
		{DynoCertBadUsage, "H43", "error", "Backend certificate rejected", "bad_usage", "", 503},
	}
	require.Len(t, cases, len(All()), "every code is pinned")
	for _, tc := range cases {
		want := Entry{H: tc.h, Level: tc.level, Desc: tc.desc, Cause: tc.cause, Status: tc.status, Sock: tc.sock}
		assert.Equal(t, want, tc.c.Entry(), tc.h)
		assert.Equal(t, tc.h, tc.c.String())
		assert.Equal(t, tc.status, tc.c.Status())
	}
	assert.Equal(t, Entry{}, None.Entry())
	assert.Equal(t, "none", None.String())
	assert.Equal(t, Entry{}, numCodes.Entry())
}

func TestError(t *testing.T) {
	err := error(New(RequestTimeout, io.ErrUnexpectedEOF))
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	var e *Error
	require.True(t, errors.As(err, &e))
	assert.Equal(t, RequestTimeout, e.Code)
	assert.Equal(t, "H12 Request timeout: unexpected EOF", err.Error())
	assert.Equal(t, "H10 App crashed", New(AppCrashed, nil).Error())
}
