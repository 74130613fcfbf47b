// Package composetest runs the published examples/docker-compose.yml on the
// Docker engine, with images built here, against a stand-in internet, and
// checks with real clients in workload containers what the filter lets
// through. Its programs: testnet (test sites and their DNS server) and
// probe (the workload's client). The test needs a Docker engine and
// docker-compose; under CI=true it must run.
package composetest
