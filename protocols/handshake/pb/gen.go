// Package pb holds the handshake's wire messages, generated from
// handshake.proto.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative handshake.proto
