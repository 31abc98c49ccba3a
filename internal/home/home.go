// Package home names vidmatte's asset folder, for the packages (models and
// the test helpers) that must agree on it without importing each other.
package home

import (
	"os"
	"path/filepath"
)

// Dir is $VIDMATTE_HOME, else $XDG_DATA_HOME/vidmatte, else
// ~/.local/share/vidmatte.
func Dir() string {
	if h := os.Getenv("VIDMATTE_HOME"); h != "" {
		return h
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "vidmatte")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "."
	}
	return filepath.Join(home, ".local", "share", "vidmatte")
}

// LibraryPath is the ONNX Runtime shared library: $VIDMATTE_ORT_LIB, else
// Dir()/lib/libonnxruntime.so.1.
func LibraryPath() string {
	if p := os.Getenv("VIDMATTE_ORT_LIB"); p != "" {
		return p
	}
	return filepath.Join(Dir(), "lib", "libonnxruntime.so.1")
}
