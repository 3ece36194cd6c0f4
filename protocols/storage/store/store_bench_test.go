package store

import (
	"bytes"
	"context"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

const benchSize = 64 << 20

var benchData = sync.OnceValue(func() []byte { return randomBytes(benchSize, 1) })

// rawCopy writes data to a new file in dir with io.Copy and syncs it: the
// baseline a store write is measured against.
func rawCopy(tb testing.TB, dir string, data []byte) string {
	f, err := os.CreateTemp(dir, "raw-*")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(f, bytes.NewReader(data)); err != nil {
		tb.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return f.Name()
}

// baseline times rawCopy of the same bytes between the iterations of a
// benchmark (with its timer stopped), so that the ratio it reports
// compares runs made under the same load.
type baseline struct {
	dir   string
	spent time.Duration
	runs  int
}

func (bl *baseline) measure(b *testing.B) {
	b.StopTimer()
	start := time.Now()
	name := rawCopy(b, bl.dir, benchData())
	bl.spent += time.Since(start)
	bl.runs++
	os.Remove(name)
	b.StartTimer()
}

// report gives the benchmark's throughput over rawCopy's.
func (bl *baseline) report(b *testing.B) {
	raw := bl.spent.Seconds() / float64(bl.runs)
	op := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(raw/op, "x-raw")
}

func BenchmarkRawCopy(b *testing.B) {
	data := benchData()
	dir := b.TempDir()
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		name := rawCopy(b, dir, data)
		b.StopTimer()
		os.Remove(name)
		b.StartTimer()
	}
}

func benchStore(b *testing.B) *Store {
	s, err := Open(b.TempDir(), testOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkPut(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int64
	}{{"sized", benchSize}, {"unknown-size", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			data := benchData()
			s := benchStore(b)
			bl := &baseline{dir: s.Dir()}
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				info, err := s.Put(context.Background(), bytes.NewReader(data), bc.size, cid.Undef)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.Delete(info.ID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				bl.measure(b)
			}
			bl.report(b)
		})
	}
}

// encodedBench is the combined encoding of benchData and its ID.
func encodedBench(b *testing.B) (cid.Cid, []byte) {
	src := benchStore(b)
	info, err := src.Put(context.Background(), bytes.NewReader(benchData()), benchSize, cid.Undef)
	if err != nil {
		b.Fatal(err)
	}
	var enc bytes.Buffer
	if err := src.WriteEncoded(&enc, info.ID, 0, benchSize); err != nil {
		b.Fatal(err)
	}
	return info.ID, enc.Bytes()
}

func BenchmarkReceive(b *testing.B) {
	id, enc := encodedBench(b)
	s := benchStore(b)
	bl := &baseline{dir: s.Dir()}
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Receive(context.Background(), id, benchSize, bytes.NewReader(enc)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		bl.measure(b)
	}
	bl.report(b)
}

func BenchmarkWriteEncoded(b *testing.B) {
	s := benchStore(b)
	info, err := s.Put(context.Background(), bytes.NewReader(benchData()), benchSize, cid.Undef)
	if err != nil {
		b.Fatal(err)
	}
	bl := &baseline{dir: s.Dir()}
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.WriteEncoded(io.Discard, info.ID, 0, benchSize); err != nil {
			b.Fatal(err)
		}
		bl.measure(b)
	}
	bl.report(b)
}

func BenchmarkDecodeVerified(b *testing.B) {
	id, enc := encodedBench(b)
	bl := &baseline{dir: b.TempDir()}
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeVerified(io.Discard, bytes.NewReader(enc), id, benchSize, 0, benchSize); err != nil {
			b.Fatal(err)
		}
		bl.measure(b)
	}
	bl.report(b)
}
