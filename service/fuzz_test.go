package service

import "testing"

func FuzzSanitizeFilename(f *testing.F) {
	for _, s := range []string{"clip.mp4", "../../etc/passwd", `..\..\win.ini`, "\x00a.mp4", "....", "a/b/c.mov", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		s := SanitizeFilename(name)
		if s == "" || s == "." || s == ".." || len(s) > 200 {
			t.Fatalf("sanitized %q to %q", name, s)
		}
		for _, c := range s {
			if c == '/' || c == '\\' || c < 0x20 {
				t.Fatalf("sanitized %q to %q", name, s)
			}
		}
		if s[0] == '.' {
			t.Fatalf("sanitized %q to a hidden name %q", name, s)
		}
		if ext := extensionOf(s); ext != "" && len(ext) > 9 {
			t.Fatalf("extension %q", ext)
		}
	})
}
