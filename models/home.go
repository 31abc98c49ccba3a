// Package models owns everything about matting models: the ONNX Runtime
// environment and its sessions (it is the only package that imports
// onnxruntime_go), the registry of built-in and imported models with their
// manifests, installing and verifying model files, and the per-frame work
// around inference — normalizing prepared frames into batch tensors, running
// them (with recurrent state for RVM-style models), and exposing the alpha
// (and, where a model gives one, the corrected foreground).
//
// Ownership: a Runtime owns its cached sessions until Runtime.Close; a Model
// is a handle on one of them; a Batch owns its input and output memory and is
// used by one goroutine at a time; a State belongs to one job.
package models

import (
	"path/filepath"

	"vidmatte/internal/home"
)

// Home is where vidmatte's assets live (lib/, models/, media/):
// $VIDMATTE_HOME, else $XDG_DATA_HOME/vidmatte, else
// ~/.local/share/vidmatte.
func Home() string { return home.Dir() }

// DefaultLibraryPath is the ONNX Runtime shared library the Runtime loads
// by default: $VIDMATTE_ORT_LIB, else Home()/lib/libonnxruntime.so.1.
func DefaultLibraryPath() string { return home.LibraryPath() }

// ModelsDir is the folder of model files and imported manifests under a
// home folder: home/models.
func ModelsDir(home string) string { return filepath.Join(home, "models") }
