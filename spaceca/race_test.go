//go:build race

package spaceca

// raceEnabled is true under -race, where allocation counts differ.
const raceEnabled = true
