//go:build !race

package lines

// raceEnabled: the race detector is off.
const raceEnabled = false
