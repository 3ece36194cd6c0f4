package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ipfs/go-cid"

	"peernode/api"
)

const putUsage = `put FILE [--replicas K] [--json] [--data-dir DIR]

Stores FILE in the cluster, through the running daemon: on the daemon's node
and on K-1 other storage nodes, the best-scored first. FILE - reads standard
input. Prints the blob's ID (bafkr4i...), which names its content and which
'peernode get' takes; with --json, the ID, the size and the nodes holding a
copy, this node first. On a terminal, a progress bar shows on standard error
for files of 8 MiB and more, or of unknown size.

Examples:
  peernode put photo.jpg
  peernode put backup.tar --replicas 3 --json
  tar c mydir | peernode put -`

// parsePut reads put's arguments: the file ("-" for standard input) and the
// replica count, checked as the daemon will.
func parsePut(env *cliEnv, args []string) (file string, replicas int, common *commonFlags, err error) {
	fs, common := newFlagSet(env, "put", putUsage)
	fs.IntVar(&replicas, "replicas", api.DefaultReplicas, fmt.Sprintf("how many nodes keep a copy, this one included: from 1 to %d", api.MaxReplicas))
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", 0, common, err
	}
	if err := wantArgs(pos, 1, "one file (- for standard input): peernode put FILE"); err != nil {
		return "", 0, common, err
	}
	if err := api.ValidateReplicas(replicas); err != nil {
		return "", 0, common, usagef("--replicas %d: want an integer from 1 to %d", replicas, api.MaxReplicas)
	}
	return pos[0], replicas, common, nil
}

func runPut(env *cliEnv, args []string) error {
	return putCommand(env, args, os.Stdin, isTerminal(env.stderr))
}

// putCommand is put reading "-" from stdin, with a progress bar when tty
// (standard error is a terminal).
func putCommand(env *cliEnv, args []string, stdin io.Reader, tty bool) error {
	file, replicas, common, err := parsePut(env, args)
	if err != nil {
		return err
	}
	r, size, err := openInput(file, stdin)
	if err != nil {
		return err
	}
	defer r.Close()
	c, err := daemonClient(common.dataDir)
	if err != nil {
		return err
	}
	bar := newProgress(env.stderr, tty && !common.json, "put", size, time.Now)
	res, err := c.PutBlob(context.Background(), bar.reader(r), size, replicas)
	bar.finish()
	if err != nil {
		return blobHint(noDaemonHint(err, common.dataDir), putHints)
	}
	if common.json {
		return printJSON(env, res)
	}
	fmt.Fprintln(env.stdout, res.ID)
	return nil
}

// openInput opens file, or stdin for "-", and returns its size: -1 unless
// it is a regular file.
func openInput(file string, stdin io.Reader) (io.ReadCloser, int64, error) {
	if file == "-" {
		rc := io.NopCloser(stdin)
		if f, ok := stdin.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				return rc, fi.Size(), nil
			}
		}
		return rc, -1, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is a directory: put stores one file (archive a directory first: tar c %s | peernode put -)", file, file)
	}
	if !fi.Mode().IsRegular() {
		return f, -1, nil
	}
	return f, fi.Size(), nil
}

const getUsage = `get ID [-o FILE] [--json] [--data-dir DIR]

Fetches the blob ID (bafkr4i..., as 'peernode put' printed it) through the
running daemon, from its own store or else from the nodes holding it, and
writes it to standard output, or to FILE with -o. The bytes are checked
against the ID as they arrive. With -o, the blob lands in a temporary file
beside FILE (FILE.*.part), renamed to FILE only once complete: a download
that fails or is interrupted leaves no FILE behind. With -o, the command
prints where the blob went (--json: its ID, size and file). On a terminal,
a progress bar shows on standard error for blobs of 8 MiB and more.

Examples:
  peernode get bafkr4i... -o photo.jpg
  peernode get bafkr4i... --json -o photo.jpg
  peernode get bafkr4i... | tar x`

// getResult is 'peernode get -o FILE --json'.
type getResult struct {
	ID   string `json:"id"`
	Size int64  `json:"size"`
	File string `json:"file"`
}

// parseGet reads get's arguments: the blob ID and the output file ("" or
// "-" for standard output).
func parseGet(env *cliEnv, args []string) (id, out string, common *commonFlags, err error) {
	fs, common := newFlagSet(env, "get", getUsage)
	fs.StringVar(&out, "o", "", "write the blob to this file instead of standard output")
	fs.StringVar(&out, "output", "", "same as -o")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", "", common, err
	}
	if err := wantArgs(pos, 1, "one blob ID: peernode get ID"); err != nil {
		return "", "", common, err
	}
	if err := checkBlobID(pos[0]); err != nil {
		return "", "", common, err
	}
	if out == "-" {
		out = ""
	}
	if common.json && out == "" {
		return "", "", common, usagef("--json prints what was saved, and needs -o FILE: without it the blob goes to standard output")
	}
	return pos[0], out, common, nil
}

// checkBlobID returns a usage error unless s is a CIDv1; the daemon checks
// the rest.
func checkBlobID(s string) error {
	if c, err := cid.Decode(s); err != nil || c.Version() != 1 {
		return usagef("%q is not a blob ID: blob IDs look like bafkr4i..., as 'peernode put' and 'peernode blobs ls' print them", s)
	}
	return nil
}

func runGet(env *cliEnv, args []string) error {
	return getCommand(env, args, isTerminal(env.stderr))
}

// getCommand is get, with a progress bar when tty (standard error is a
// terminal). An interrupt cancels the transfer, so a partial file is
// removed.
func getCommand(env *cliEnv, args []string, tty bool) error {
	id, out, common, err := parseGet(env, args)
	if err != nil {
		return err
	}
	c, err := daemonClient(common.dataDir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rc, size, err := c.GetBlob(ctx, id, 0, -1)
	if err != nil {
		return blobHint(noDaemonHint(err, common.dataDir), getHints)
	}
	defer rc.Close()
	bar := newProgress(env.stderr, tty && !common.json, "get", size, time.Now)
	defer bar.finish()
	if out == "" {
		_, err := io.Copy(env.stdout, bar.reader(rc))
		return err
	}
	if err := saveFile(out, bar.reader(rc)); err != nil {
		return err
	}
	bar.finish()
	if common.json {
		return printJSON(env, getResult{ID: id, Size: size, File: out})
	}
	fmt.Fprintf(env.stdout, "saved %s (%s) to %s\n", id, humanBytes(size), out)
	return nil
}

// saveFile writes r to path through a temporary file beside it, renamed
// into place once r is read to its end and synced: path never holds part
// of r. On failure, the temporary file is removed.
func saveFile(path string, r io.Reader) (err error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory: give -o a file name, such as %s", path, filepath.Join(path, "blob"))
	}
	f, err := createPart(path)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// createPart creates a new temporary file beside path: path.RANDOM.part,
// with the mode a new file gets (0666 less the umask).
func createPart(path string) (*os.File, error) {
	for {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path+"."+hex.EncodeToString(b[:])+".part", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
}

const blobsUsage = `blobs SUBCOMMAND [--json] [--data-dir DIR]

Subcommands:
  ls          list the blobs the daemon's node holds: ID, size, when stored
  rm ID...    remove this node's copies of the blobs; other nodes keep theirs
  check [ID...]
              read this node's copies of the blobs (all of them without an
              ID) from disk and hash them again. A blob whose data matches its
              ID but whose outboard (the index that lets the node serve
              verified ranges) is missing or damaged gets it rebuilt. A blob
              whose data no longer matches is taken out of the store and its
              bytes moved to DATA-DIR/storage/corrupt/ (kept, not deleted):
              fetch it again from another node with 'peernode get ID'. Exits
              with status 1 if any blob was corrupt.

Examples:
  peernode blobs ls
  peernode blobs ls --json
  peernode blobs rm bafkr4i... bafkr4i...
  peernode blobs check
  peernode blobs check bafkr4i... --json`

// checkHints say what to do after a failed check.
var checkHints = map[int]string{
	http.StatusNotFound: "This node holds no copy of it: 'peernode blobs ls' lists those it holds.",
}

// rmResult is one entry of 'peernode blobs rm --json'.
type rmResult struct {
	ID      string `json:"id"`
	Removed bool   `json:"removed"`
	Error   string `json:"error,omitempty"`
}

// parseBlobs reads the blobs command's arguments: the subcommand and, for
// rm, the IDs.
func parseBlobs(env *cliEnv, args []string) (sub string, ids []string, common *commonFlags, err error) {
	fs, common := newFlagSet(env, "blobs", blobsUsage)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", nil, common, err
	}
	if len(pos) == 0 {
		return "", nil, common, usagef("expected a subcommand: ls, rm or check")
	}
	sub, ids = pos[0], pos[1:]
	switch sub {
	case "ls":
		if err := wantArgs(ids, 0, ""); err != nil {
			return "", nil, common, err
		}
	case "rm", "check":
		if len(ids) == 0 && sub == "rm" {
			return "", nil, common, usagef("expected one or more blob IDs: peernode blobs rm ID...")
		}
		for _, id := range ids {
			if err := checkBlobID(id); err != nil {
				return "", nil, common, err
			}
		}
	default:
		return "", nil, common, usagef("unknown subcommand %q: want ls, rm or check", sub)
	}
	return sub, ids, common, nil
}

func runBlobs(env *cliEnv, args []string) error {
	sub, ids, common, err := parseBlobs(env, args)
	if err != nil {
		return err
	}
	c, err := daemonClient(common.dataDir)
	if err != nil {
		return err
	}
	if sub == "check" {
		// A check reads whole blobs from disk: no request timeout, an
		// interrupt stops it.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return blobHint(noDaemonHint(blobsCheck(ctx, env, c, ids, common.json), common.dataDir), nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if sub == "ls" {
		err = blobsList(ctx, env, c, common.json)
	} else {
		err = blobsRemove(ctx, env, c, ids, common.json)
	}
	return blobHint(noDaemonHint(err, common.dataDir), nil)
}

// checkResult is one entry of 'peernode blobs check --json': the daemon's
// answer, or, with result "error", what stopped the check of that blob.
type checkResult struct {
	api.BlobCheck
	Error string `json:"error,omitempty"`
}

// blobsCheck checks each blob (every local blob when ids is empty), going
// on past those that fail; it fails if any was corrupt or could not be
// checked. Without a daemon, or once ctx ends, it stops.
func blobsCheck(ctx context.Context, env *cliEnv, c *api.Client, ids []string, asJSON bool) error {
	if len(ids) == 0 {
		lctx, cancel := context.WithTimeout(ctx, requestTimeout)
		list, err := c.ListBlobs(lctx)
		cancel()
		if err != nil {
			return err
		}
		if len(list) == 0 && !asJSON {
			fmt.Fprintln(env.stdout, "no blobs: this node holds none")
			return nil
		}
		for _, b := range list {
			ids = append(ids, b.ID)
		}
	}
	results := make([]checkResult, 0, len(ids))
	var corrupt, failed, repaired int
	for _, id := range ids {
		res, err := c.CheckBlob(ctx, id)
		if errors.Is(err, api.ErrNoDaemon) || ctx.Err() != nil {
			if err == nil {
				err = ctx.Err()
			}
			return err
		}
		entry := checkResult{BlobCheck: res}
		switch {
		case err != nil:
			failed++
			entry.ID, entry.Result, entry.Error = id, "error", err.Error()
			if !asJSON {
				fmt.Fprintf(env.stderr, "peernode blobs: check %s: %v\n", id, blobHint(err, checkHints))
			}
		case res.Result == api.CheckCorrupt:
			corrupt++
			if !asJSON {
				fmt.Fprintf(env.stdout, "CORRUPT   %s: %s; moved out of the store to %s\n", clean(id), clean(res.Problem), clean(res.MovedTo))
			}
		case res.Result == api.CheckRepaired:
			repaired++
			if !asJSON {
				fmt.Fprintf(env.stdout, "repaired  %s: %s; the outboard was rebuilt from the data\n", clean(id), clean(res.Problem))
			}
		case !asJSON:
			fmt.Fprintf(env.stdout, "ok        %s\n", clean(id))
		}
		results = append(results, entry)
	}
	if asJSON {
		if err := printJSON(env, results); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(env.stdout, "\n%d checked: %d ok, %d repaired, %d corrupt, %d not checked\n",
			len(ids), len(ids)-repaired-corrupt-failed, repaired, corrupt, failed)
	}
	var errs []string
	if corrupt > 0 {
		errs = append(errs, fmt.Sprintf("%d of %d blobs corrupt: this node no longer holds them; fetch them again with 'peernode get ID' "+
			"if other nodes hold copies", corrupt, len(ids)))
	}
	if failed > 0 {
		errs = append(errs, fmt.Sprintf("%d of %d blobs not checked", failed, len(ids)))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func blobsList(ctx context.Context, env *cliEnv, c *api.Client, asJSON bool) error {
	list, err := c.ListBlobs(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(env, list)
	}
	if len(list) == 0 {
		fmt.Fprintln(env.stdout, "no blobs: this node holds none (store one with 'peernode put FILE')")
		return nil
	}
	return printBlobs(env, list)
}

// printBlobs prints the blobs table and the total.
func printBlobs(env *cliEnv, list []api.BlobInfo) error {
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSIZE\tSTORED")
	var total int64
	for _, b := range list {
		stored := "-"
		if !b.Stored.IsZero() {
			stored = b.Stored.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", clean(b.ID), humanBytes(b.Size), stored)
		total += b.Size
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	noun := "blobs"
	if len(list) == 1 {
		noun = "blob"
	}
	fmt.Fprintf(env.stdout, "\n%d %s, %s\n", len(list), noun, humanBytes(total))
	return nil
}

// blobsRemove removes each blob, going on past those that fail; it fails
// if any did. Without a daemon, it stops at the first.
func blobsRemove(ctx context.Context, env *cliEnv, c *api.Client, ids []string, asJSON bool) error {
	results := make([]rmResult, 0, len(ids))
	failed := 0
	for _, id := range ids {
		err := c.DeleteBlob(ctx, id)
		if errors.Is(err, api.ErrNoDaemon) {
			return err
		}
		res := rmResult{ID: id, Removed: err == nil}
		switch {
		case err != nil:
			failed++
			res.Error = err.Error()
			if !asJSON {
				fmt.Fprintf(env.stderr, "peernode blobs: rm %s: %v\n", id, blobHint(err, rmHints))
			}
		case !asJSON:
			fmt.Fprintf(env.stdout, "removed %s\n", id)
		}
		results = append(results, res)
	}
	if asJSON {
		if err := printJSON(env, results); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d blobs not removed", failed, len(ids))
	}
	return nil
}

// Hints that say what to do after an error answer, by status, per command;
// blobHints are every command's.
var (
	blobHints = map[int]string{
		http.StatusInsufficientStorage: "The node's storage is full: free room with 'peernode blobs rm ID' or give it more space.",
		http.StatusBadGateway:          "Another node sent bad data or broke off: try again, another holder may answer.",
	}
	putHints = map[int]string{
		http.StatusServiceUnavailable:    "Too few nodes are reachable for the copies asked: lower --replicas, or try again once 'peernode peers' lists more.",
		http.StatusRequestEntityTooLarge: "The file is over the maximum blob size: split it (split -b SIZE FILE) and put the parts.",
	}
	getHints = map[int]string{
		http.StatusNotFound:           "No node holds it: check the ID ('peernode blobs ls' lists this node's blobs).",
		http.StatusServiceUnavailable: "The nodes holding it do not answer now: try again later; 'peernode peers' shows which nodes are connected.",
	}
	rmHints = map[int]string{
		http.StatusNotFound: "This node holds no copy of it: 'peernode blobs ls' lists those it holds.",
	}
)

// blobHint adds to an error answer what to do next, from hints or else
// blobHints.
func blobHint(err error, hints map[int]string) error {
	var se *api.StatusError
	if !errors.As(err, &se) {
		return err
	}
	h, ok := hints[se.Code]
	if !ok {
		h, ok = blobHints[se.Code]
	}
	if !ok {
		return err
	}
	return fmt.Errorf("%w\n%s", err, h)
}
