// Package pb holds the storage wire messages, generated from
// storage.proto.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative storage.proto
