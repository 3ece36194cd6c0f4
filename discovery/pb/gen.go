// Package pb holds the discovery wire messages, generated from
// discovery.proto.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative discovery.proto
