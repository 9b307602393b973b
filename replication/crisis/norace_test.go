//go:build !race

package crisis

const raceEnabled = false
