//go:build race

package crisis

// raceEnabled shortens the randomized runs under the race detector, which
// makes composite signing about ten times slower.
const raceEnabled = true
