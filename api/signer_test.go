package api

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Processes making the secret at once all get the one that was kept; it is
// owner-only, whole, and no temporary file is left.
func TestLoadSecretConcurrently(t *testing.T) {
	dir := t.TempDir()
	secrets := make([][]byte, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range secrets {
		wg.Add(1)
		go func() { defer wg.Done(); secrets[i], errs[i] = LoadSecret(dir) }()
	}
	wg.Wait()
	for i := range secrets {
		if errs[i] != nil || len(secrets[i]) != 32 || !bytes.Equal(secrets[i], secrets[0]) {
			t.Fatalf("secret %d: %x %v (first %x)", i, secrets[i], errs[i], secrets[0])
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != SecretFile {
		t.Fatalf("the data dir holds %v", entries)
	}
	st, err := os.Stat(filepath.Join(dir, SecretFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", st.Mode(), err)
	}
	again, err := LoadSecret(dir)
	if err != nil || !bytes.Equal(again, secrets[0]) {
		t.Fatalf("reloaded: %x %v", again, err)
	}
}
