//go:build !race

package tlsconfig

// raceEnabled is true under -race, where allocation counts differ.
const raceEnabled = false
