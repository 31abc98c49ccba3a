// Package onnxpb holds the ONNX IR protobuf messages (ModelProto,
// GraphProto, NodeProto, TensorProto…) generated from onnx.proto3 of ONNX
// v1.17.0. Package vidmatte/models/onnx builds and rewrites models with
// them; nothing else should need this package directly.
//
// The generated file is committed, so building needs no protoc. To
// regenerate it, with protoc 3.21.12 (Debian's protobuf-compiler) and
// protoc-gen-go v1.36.12 (go install
// google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12) on PATH, run
// go generate in this folder.
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto3=vidmatte/models/onnx/onnxpb onnx.proto3
