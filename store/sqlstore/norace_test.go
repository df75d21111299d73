//go:build !race

package sqlstore_test

const raceScale = 1
