//go:build !race

package logging

// raceEnabled reports whether the race detector is on; allocation tests skip
// under it because it makes sync.Pool drop items at random.
const raceEnabled = false
