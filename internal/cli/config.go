package cli

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"keepstate/config"
)

func init() {
	register(&command{
		name:    "config",
		summary: "check, export or import a configuration (winroute.cfg, folder or .tgz bundle)",
		run:     runConfig,
	})
}

// defaultConfigDir is where `config import` installs and `config export` reads.
const defaultConfigDir = "/etc/keepstate"

const configUsage = `config check PATH
       keepstate config export [--config PATH | --default] -o FILE.tgz
       keepstate config import PATH [--dir DIR]

PATH is a bundle (.tgz), a bundle folder or a lone winroute.cfg.`

func runConfig(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(e.stderr, "usage: keepstate %s\n", configUsage)
		return exitUsage
	}
	switch args[0] {
	case "check":
		return configCheck(e, args[1:])
	case "export":
		return configExport(e, args[1:])
	case "import":
		return configImport(e, args[1:])
	case "-h", "--help", "help":
		fmt.Fprintf(e.stdout, "usage: keepstate %s\n", configUsage)
		return exitOK
	}
	e.errorf("config: unknown subcommand %q (want check, export or import)", args[0])
	return exitUsage
}

// machineInfo describes the machine that exports: hostname, GOOS/GOARCH and its
// network devices. A variable so tests pin it.
var machineInfo = func() (hostname, hardware string, devices []string) {
	hostname, _ = os.Hostname()
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		devices = append(devices, ifc.Name)
	}
	slices.Sort(devices)
	return hostname, runtime.GOOS + "/" + runtime.GOARCH, devices
}

// loadBundle loads path and prints every error ("file:line: message") and warning.
// It returns nil and the exit code on failure.
func loadBundle(e *env, path string) (*config.Bundle, int) {
	b, err := config.LoadBundle(path)
	if err != nil {
		var list config.ErrorList
		var pe *os.PathError
		switch {
		case errors.As(err, &list):
			for _, ce := range list {
				fmt.Fprintln(e.stderr, ce.Error())
			}
			fmt.Fprintf(e.stderr, "%d error(s)\n", len(list))
		case errors.As(err, &pe):
			e.errorf("config: %v", err)
			return nil, exitFail
		default:
			fmt.Fprintln(e.stderr, err)
		}
		return nil, exitUsage
	}
	for _, w := range b.Config.Warnings() {
		fmt.Fprintf(e.stderr, "%s:%d: warning: %s\n", w.File, w.Line, w.Msg)
	}
	return b, exitOK
}

// summary is the one-line description of a configuration that every subcommand
// prints on success.
func summary(c *config.Config) string {
	m := &c.Policy
	enabled := 0
	for _, r := range m.Rules {
		if r.Enabled {
			enabled++
		}
	}
	s := fmt.Sprintf("%d interface(s), %d rule(s) (%d enabled), %d address group(s), %d service(s), default action %v",
		len(m.Interfaces), len(m.Rules), enabled, len(m.AddressGroups), len(m.Services), m.DefaultAction)
	if changed := c.ChangedSettings(); len(changed) > 0 {
		return s + "; settings changed from defaults: " + strings.Join(changed, ", ")
	}
	return s + "; all settings at their defaults"
}

func configCheck(e *env, args []string) int {
	fs := newFlagSet(e, "config check", "config check PATH")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(paths) != 1 {
		fs.Usage()
		return exitUsage
	}
	b, code := loadBundle(e, paths[0])
	if b == nil {
		return code
	}
	fmt.Fprintf(e.stdout, "ok: %s: %s\n", paths[0], summary(b.Config))
	return exitOK
}

func configExport(e *env, args []string) int {
	fs := newFlagSet(e, "config export", "config export [--config PATH | --default] -o FILE.tgz")
	from := fs.String("config", "", "configuration to export: bundle, folder or winroute.cfg (default "+defaultConfigDir+")")
	builtin := fs.Bool("default", false, "export the built-in default configuration")
	out := fs.String("o", "", "bundle file to write")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(paths) != 0 || *out == "" || (*builtin && *from != "") {
		fs.Usage()
		return exitUsage
	}
	var b *config.Bundle
	if *builtin {
		b = config.NewBundle(config.Default())
	} else {
		src := *from
		if src == "" {
			src = defaultConfigDir
		}
		var code int
		if b, code = loadBundle(e, src); b == nil {
			return code
		}
	}
	// The machine members describe the machine that exports, not the one that
	// wrote the source.
	b.Host.Hostname, b.Hardware, b.Interfaces = machineInfo()
	var buf bytes.Buffer
	if err := config.WriteBundle(&buf, b); err != nil {
		e.errorf("config export: %v", err)
		return exitFail
	}
	if err := writeFileAtomic(*out, buf.Bytes()); err != nil {
		e.errorf("config export: %v", err)
		return exitFail
	}
	fmt.Fprintf(e.stdout, "wrote %s (%d bytes): %s\n", *out, buf.Len(), summary(b.Config))
	return exitOK
}

// writeFileAtomic writes through a temporary file in the same folder and a rename,
// so an interrupted export never leaves half a bundle under the final name.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".export-*.tgz")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil { // UserDB.cfg is inside
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// installBundle puts a validated bundle in force. Today it writes the files into
// dir (atomically per file, winroute.cfg last). The seam for the daemon: when one
// runs, this is where import hands the bundle to it over the admin socket, so it
// swaps the ruleset with confirm-or-revert instead of files changing under it.
var installBundle = config.InstallBundle

func configImport(e *env, args []string) int {
	fs := newFlagSet(e, "config import", "config import PATH [--dir DIR]")
	dir := fs.String("dir", defaultConfigDir, "folder to install winroute.cfg and its companions into")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(paths) != 1 {
		fs.Usage()
		return exitUsage
	}
	b, code := loadBundle(e, paths[0])
	if b == nil {
		fmt.Fprintf(e.stderr, "nothing imported: %s unchanged\n", *dir)
		return code
	}
	_, _, devices := machineInfo()
	for _, ifc := range b.Config.Policy.Interfaces {
		if ifc.Device != "" && !slices.Contains(devices, ifc.Device) {
			fmt.Fprintf(e.stderr, "warning: interface %q uses device %q, which this machine does not have\n", ifc.Name, ifc.Device)
		}
	}
	if err := installBundle(*dir, b); err != nil {
		e.errorf("config import: %v", err)
		return exitFail
	}
	fmt.Fprintf(e.stdout, "imported %s into %s: %s\n", paths[0], *dir, summary(b.Config))
	return exitOK
}
