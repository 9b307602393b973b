//go:build race

package sim

// raceEnabled: the race detector multiplies memory by 5–10; the 50-node
// scenario (4 GiB without it) runs in its own step of .ci/run, without it.
const raceEnabled = true
