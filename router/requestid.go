package router

import "encoding/binary"

func validRequestID(v []byte) bool {
	if len(v) < 20 || len(v) > 200 {
		return false
	}
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '+', c == '=', c == '/', c == '-':
		default:
			return false
		}
	}
	return true
}

// appendUUID appends a lower-case UUID v4 (RFC 9562) made of the random
// bits of a and b: a's bytes (least significant first) are the first
// eight of the UUID, b's the last eight.
func appendUUID(dst []byte, a, b uint64) []byte {
	a = a&^(0xf0<<48) | 0x40<<48 // byte 6: version 4
	b = b&^0xc0 | 0x80           // byte 8: variant 10
	var s [36]byte
	le := binary.LittleEndian
	le.PutUint64(s[0:], hex4(uint32(a)))
	h := hex4(uint32(a >> 32))
	le.PutUint32(s[9:], uint32(h))
	le.PutUint32(s[14:], uint32(h>>32))
	h = hex4(uint32(b))
	le.PutUint32(s[19:], uint32(h))
	le.PutUint32(s[24:], uint32(h>>32))
	le.PutUint64(s[28:], hex4(uint32(b>>32)))
	s[8], s[13], s[18], s[23] = '-', '-', '-', '-'
	return append(dst, s[:]...)
}

// hex4 returns the lower-case hex text of the four bytes of x, least
// significant byte first, as eight bytes in little-endian order. It works
// on all nibbles at once: no loop, no table.
func hex4(x uint32) uint64 {
	v := uint64(x)
	v = (v | v<<16) & 0x0000ffff0000ffff
	v = (v | v<<8) & 0x00ff00ff00ff00ff // one input byte per 16-bit lane
	// Each lane's high nibble goes to its low byte, low nibble to its high
	// byte: every byte now holds one nibble, in text order.
	v = v>>4&0x000f000f000f000f | (v&0x000f000f000f000f)<<8
	// A nibble n becomes '0'+n, and 'a'-'0'-10 more when n > 9 (n+6 then
	// carries into bit 4). No byte carries into the next.
	return v + 0x3030303030303030 + (v+0x0606060606060606)>>4&0x0101010101010101*0x27
}
