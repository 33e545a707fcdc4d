//go:build race

package router

// raceEnabled: the race detector is on; allocation counts are not the
// program's own.
const raceEnabled = true
