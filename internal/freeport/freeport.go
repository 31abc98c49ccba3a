// Package freeport finds a free loopback TCP port, for the servers tests
// start (PostgreSQL, the S3 server).
package freeport

import (
	"net"
	"strconv"
	"strings"
)

// Get returns a port free on 127.0.0.1 now; a server that then fails to
// bind it (another process took it meanwhile) asks again.
func Get() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	_, port, _ := strings.Cut(l.Addr().String(), ":")
	return strconv.Atoi(port)
}
