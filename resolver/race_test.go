//go:build race

package resolver

// raceEnabled: the race detector is on; allocation counts are not the
// program's own.
const raceEnabled = true
