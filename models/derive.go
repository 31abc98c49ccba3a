package models

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"vidmatte/models/onnx"
)

// batchRewrite versions the rewrite that makes a model's batch dynamic; a
// derived file written by another version is regenerated.
const batchRewrite = "batch-dynamic-2"

// derivedStamp records what a derived file was made from. It is stored
// beside the derived file as <file>.source.
type derivedStamp struct {
	Source  string `json:"source_sha256"`
	Rewrite string `json:"rewrite"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}

// BatchPath returns where m's batch-dynamic derivative lives (next to the
// verified original: isnet.onnx → isnet.batch.onnx).
func (r *Registry) BatchPath(m *Manifest) string {
	return strings.TrimSuffix(r.Path(m), ".onnx") + ".batch.onnx"
}

// batchFile returns m's batch-dynamic derivative — the original with its
// batch dimension made symbolic ("N") and its graph outputs cut down to the
// alpha, so that unused side outputs are not computed — writing it when it
// is missing or was derived from another file or rewrite.
func (r *Registry) batchFile(m *Manifest) (string, error) {
	if st := r.Check(m); !st.Verified {
		return "", fmt.Errorf("models: %s: cannot derive a batch model from an unverified file (%s)", m.ID, describeStatus(st))
	}
	path := r.BatchPath(m)
	stampPath := path + ".source"
	r.deriveMu.Lock()
	defer r.deriveMu.Unlock()
	if data, err := os.ReadFile(stampPath); err == nil {
		var s derivedStamp
		if json.Unmarshal(data, &s) == nil && s.Source == m.SHA256 && s.Rewrite == batchRewrite &&
			r.checkFile(path, s.Size, s.SHA256).Verified {
			return path, nil
		}
	}
	data, err := os.ReadFile(r.Path(m))
	if err != nil {
		return "", err
	}
	if got := sha256.Sum256(data); !strings.EqualFold(hex.EncodeToString(got[:]), m.SHA256) {
		return "", fmt.Errorf("models: %s changed while being read", r.Path(m))
	}
	out, err := deriveBatchModel(data, m.Output(MeaningAlpha))
	if err != nil {
		return "", fmt.Errorf("models: %s: %w", m.ID, err)
	}
	sum := sha256.Sum256(out)
	stamp, _ := json.Marshal(derivedStamp{
		Source:  m.SHA256,
		Rewrite: batchRewrite,
		SHA256:  hex.EncodeToString(sum[:]),
		Size:    int64(len(out)),
	})
	if err := writeFileAtomic(path, out); err != nil {
		return "", fmt.Errorf("models: writing %s: %w", path, err)
	}
	if err := writeFileAtomic(stampPath, stamp); err != nil {
		return "", fmt.Errorf("models: writing %s: %w", stampPath, err)
	}
	return path, nil
}

// deriveBatchModel rewrites an ONNX file so that its batch dimension is
// dynamic and only the output keep remains.
func deriveBatchModel(data []byte, keep string) ([]byte, error) {
	m, err := onnx.Decode(data)
	if err != nil {
		return nil, err
	}
	if _, err := onnx.MakeBatchDynamic(m, "N"); err != nil {
		return nil, err
	}
	if err := onnx.PruneOutputs(m, keep); err != nil {
		return nil, err
	}
	onnx.AddMetadata(m, [2]string{"vidmatte.rewrite", batchRewrite})
	return onnx.Marshal(m)
}

func describeStatus(st FileStatus) string {
	switch {
	case !st.Present:
		return "missing: " + st.Path
	case st.Problem != "":
		return st.Path + ": " + st.Problem
	}
	return st.Path
}
