//go:build race

package lines

// raceEnabled: the race detector is on; allocation counts are not the
// program's own.
const raceEnabled = true
