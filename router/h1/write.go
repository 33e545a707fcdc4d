package h1

import (
	"net/http"
	"strconv"
)

// AppendField appends "name: value\r\n".
func AppendField(dst []byte, name, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':', ' ')
	dst = append(dst, value...)
	return append(dst, '\r', '\n')
}

// AppendStatusLine appends "HTTP/1.m CODE REASON\r\n". An empty reason is
// replaced by the standard one, so HTTP/1.0 clients always get one.
func AppendStatusLine(dst []byte, minor int, status int, reason []byte) []byte {
	if minor == 0 {
		dst = append(dst, "HTTP/1.0 "...)
	} else {
		dst = append(dst, "HTTP/1.1 "...)
	}
	if 100 <= status && status <= 999 {
		// Every status the router writes: three digits without strconv.
		dst = append(dst, byte('0'+status/100), byte('0'+status/10%10), byte('0'+status%10), ' ')
	} else {
		dst = strconv.AppendInt(dst, int64(status), 10)
		dst = append(dst, ' ')
	}
	if len(reason) == 0 {
		dst = append(dst, StatusText(status)...)
	} else {
		dst = append(dst, reason...)
	}
	return append(dst, '\r', '\n')
}

// AppendChunkHeader appends the chunk-size line for n bytes.
func AppendChunkHeader(dst []byte, n int) []byte {
	dst = strconv.AppendInt(dst, int64(n), 16)
	return append(dst, '\r', '\n')
}

// LastChunk is the end of a chunked body with no trailers.
const LastChunk = "0\r\n\r\n"

// StatusText returns the RFC 9110 reason phrase of the statuses the router
// writes itself, and of common dyno statuses.
func StatusText(status int) string {
	switch status {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 204:
		return "No Content"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 304:
		return "Not Modified"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 414:
		return "URI Too Long"
	case 417:
		return "Expectation Failed"
	case 421:
		return "Misdirected Request"
	case 495:
		return "SSL Certificate Error" // nginx's, for a client certificate refused (H41)
	case 496:
		return "SSL Certificate Required" // nginx's, for none under mtls require (H40)
	case 500:
		return "Internal Server Error"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Status"
}
