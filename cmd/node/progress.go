package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
)

// Progress bar limits.
const (
	// progressMinBytes is the smallest transfer with a bar: a smaller one
	// ends before a bar tells anything.
	progressMinBytes = 8 << 20
	// progressInterval is how often the bar is redrawn at most, so it
	// costs nothing next to the transfer and does not flicker.
	progressInterval = 200 * time.Millisecond
	// progressBarWidth is the width of the bar between its brackets.
	progressBarWidth = 24
)

// isTerminal reports whether w is a terminal, where a progress bar may be
// drawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// progress draws a transfer's progress on one terminal line: the bytes done
// and the total, the share done and the mean rate. A nil *progress draws
// nothing, so callers need not check.
type progress struct {
	w     io.Writer
	label string
	total int64 // -1 when unknown
	now   func() time.Time
	start time.Time

	// mu guards what follows: the transport may read an upload in a
	// goroutine of its own while the command finishes the bar.
	mu    sync.Mutex
	done  int64
	drawn time.Time
	ended bool
}

// newProgress returns a bar on w for a transfer of total bytes (-1 when
// unknown), or nil when w is not a terminal (tty false) or the transfer is
// known to be small. now is the clock, time.Now outside tests.
func newProgress(w io.Writer, tty bool, label string, total int64, now func() time.Time) *progress {
	if !tty || (total >= 0 && total < progressMinBytes) {
		return nil
	}
	return &progress{w: w, label: label, total: total, now: now, start: now()}
}

// reader counts what is read through r.
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &progressReader{r: r, p: p}
}

// writer counts what is written through w.
func (p *progress) writer(w io.Writer) io.Writer {
	if p == nil {
		return w
	}
	return &progressWriter{w: w, p: p}
}

// add counts n more bytes and redraws the bar if it was not drawn lately.
func (p *progress) add(n int) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += int64(n)
	if t := p.now(); !p.ended && t.Sub(p.drawn) >= progressInterval {
		p.drawn = t
		p.draw(t)
	}
}

// finish draws the bar a last time and ends its line. Later calls do
// nothing.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	p.ended = true
	p.draw(p.now())
	fmt.Fprintln(p.w)
}

// draw rewrites the line: back to its start, the text, the rest erased.
func (p *progress) draw(t time.Time) {
	fmt.Fprintf(p.w, "\r%s\x1b[K", p.line(t))
}

// line is the bar's text at t.
func (p *progress) line(t time.Time) string {
	rate := "-"
	if el := t.Sub(p.start); el > 0 {
		rate = humanBytes(int64(float64(p.done)/el.Seconds())) + "/s"
	}
	if p.total < 0 {
		return fmt.Sprintf("%s %s  %s", p.label, humanBytes(p.done), rate)
	}
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(p.done)/float64(p.total), 1)
	}
	full := int(frac * progressBarWidth)
	bar := strings.Repeat("#", full) + strings.Repeat(" ", progressBarWidth-full)
	return fmt.Sprintf("%s [%s] %3.0f%%  %s / %s  %s", p.label, bar, 100*frac, humanBytes(p.done), humanBytes(p.total), rate)
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.add(n)
	return n, err
}

type progressWriter struct {
	w io.Writer
	p *progress
}

func (w *progressWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.p.add(n)
	return n, err
}

// humanBytes is n in bytes, KiB, MiB, GiB...: "512 B", "1.5 KiB", "3.0 GiB".
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, 0
	for v >= 1024 && unit < 5 {
		v /= 1024
		unit++
	}
	return fmt.Sprintf("%.1f %s", v, [...]string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}[unit])
}
