package main

import "time"

// certValidity is how long the sandbox's CA (internal/localca) and the
// sites' certificates are valid; made afresh for each run, only the CA's
// certificate is written out (ca.pem, for curl's --cacert).
const certValidity = 7 * 24 * time.Hour
