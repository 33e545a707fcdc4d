//go:build race

package h1

// raceEnabled reports whether the race detector is on; allocation tests skip
// under it because it instruments memory accesses and allocates.
const raceEnabled = true
