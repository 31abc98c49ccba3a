package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"vidmatte/internal/fsx"

	"vidmatte"
)

// SecretFile is the name of the output-URL secret in the data dir.
const SecretFile = "secret"

// LoadSecret returns the server secret kept in dataDir/secret, creating it
// (32 random bytes, hex, mode 0600) the first time.
func LoadSecret(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, SecretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		secret, derr := hex.DecodeString(string(trimSpace(b)))
		if derr != nil || len(secret) < 16 {
			return nil, fmt.Errorf("api: %s does not hold a hex secret of at least 16 bytes", path)
		}
		return secret, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	// Written whole and synced under a temporary name, then linked to its
	// own (which fails if another process made it meanwhile) and the
	// folder synced: a power cut never leaves an empty secret behind.
	tmp := path + "." + vidmatte.NewID("") + ".tmp"
	defer os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(hex.EncodeToString(secret) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return LoadSecret(dataDir) // made by another process meanwhile
	} else if err != nil {
		return nil, err
	}
	if err := fsx.SyncDir(dataDir); err != nil {
		return nil, err
	}
	return secret, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// signer makes and checks signed, expiring output URLs:
//
//	/outputs/<job id><ext>?expires=<unix seconds>&signature=<hex HMAC-SHA256>
//
// of "<job id><ext>\n<expires>" with the server secret.
type signer struct {
	secret []byte
	now    func() time.Time
}

func (s *signer) mac(file string, expires int64) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(file + "\n" + strconv.FormatInt(expires, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// url returns the signed path and query of a job's output, valid for ttl.
func (s *signer) url(jobID string, format vidmatte.OutputFormat, ttl time.Duration) string {
	file := jobID + format.Extension()
	exp := s.now().Add(ttl).Unix()
	return "/outputs/" + url.PathEscape(file) + "?expires=" + strconv.FormatInt(exp, 10) + "&signature=" + s.mac(file, exp)
}

// verify checks a request for file against its query.
func (s *signer) verify(file string, q url.Values) error {
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	sig := q.Get("signature")
	if err != nil || sig == "" {
		return vidmatte.Errorf(vidmatte.CodeNotFound, "output link invalid: it lacks its signature")
	}
	want := s.mac(file, exp)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return vidmatte.Errorf(vidmatte.CodeNotFound, "output link invalid")
	}
	if s.now().Unix() > exp {
		return vidmatte.Errorf(vidmatte.CodeNotFound, "output link expired; fetch the job again for a fresh one")
	}
	return nil
}
