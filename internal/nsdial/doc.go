// Package nsdial dials from a Linux network namespace on a few threads
// that stay in it, so that neither a thread per connection nor a switch of
// namespace per connection is paid. The sandbox demo dials into its box
// with it, and the end-to-end harness (internal/e2e) uses it for load
// tests.
package nsdial
