package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"peernode/node"
)

// errHelp is returned after a command printed its help on request.
var errHelp = errors.New("help requested")

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// commonFlags are accepted by every command.
type commonFlags struct {
	dataDir string
	json    bool
}

func newFlagSet(env *cliEnv, name, usage string) (*flag.FlagSet, *commonFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Parse errors are reported once, by run, on stderr; help goes to
	// stdout, only when asked for.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	c := &commonFlags{}
	def := env.getenv("PEERNODE_PATH")
	if def == "" {
		def = node.DefaultDataDir()
	}
	fs.StringVar(&c.dataDir, "data-dir", def, "data directory (key, config, API token); env PEERNODE_PATH")
	fs.BoolVar(&c.json, "json", false, "print JSON instead of text")
	help := &helpFlag{print: func() {
		fmt.Fprintf(env.stdout, "Usage: peernode %s\n\nFlags:\n", usage)
		fs.SetOutput(env.stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}}
	fs.Var(help, "help", "show this help")
	fs.Var(help, "h", "show this help")
	return fs, c
}

// helpFlag is -h/--help: parseArgs prints the command's help when it is set.
type helpFlag struct {
	asked bool
	print func()
}

func (h *helpFlag) String() string   { return "false" }
func (h *helpFlag) IsBoolFlag() bool { return true }
func (h *helpFlag) Set(string) error {
	h.asked = true
	return nil
}

// parseArgs parses flags wherever they appear among the arguments, so
// `peernode connect ADDR --json` works, and returns the positional ones.
// "--" ends flag parsing.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err}
		}
		if h, ok := fs.Lookup("help").Value.(*helpFlag); ok && h.asked {
			h.print()
			return nil, errHelp
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagsSet returns the names of the flags given on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

func wantArgs(pos []string, n int, what string) error {
	if len(pos) != n {
		if n == 0 {
			return usagef("unexpected argument %q", pos[0])
		}
		return usagef("expected %s", what)
	}
	return nil
}
