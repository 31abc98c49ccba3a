package api

import (
	"errors"
	"testing"

	"vidmatte"
)

func FuzzParseJobRequest(f *testing.F) {
	for _, s := range []string{
		`{"video_url":"https://example.com/a.mp4"}`,
		`{"video_url":"https://example.com/a.mp4","model":"isnet","output_format":"mov","auto_start":false}`,
		`{"video_url":"http://h/v1/uploads/vid_1","background":{"type":"color","color":[0.1,0.2,0.3]}}`,
		`{"video_url":"http://h/x","background":{"type":"color","color":"#00ff00"},"metadata":{"a":"b"}}`,
		`{"video_url":"http://h/x","background":{"type":"image","image_url":"https://h/bg.png"}}`,
		`{"video_url":"http://h/x","bg_type":"custom","bg_color":"#123456"}`,
		`{"video_url":"http://h/x","bg_type":"green"}`,
		`{"video_url":"http://h/x","composition":{"canvas":{"width":1920,"height":1080},"foreground":{"anchor":"bottom","scale":0.5,"offset":{"x":-10,"y":20}}}}`,
		`{"video_url":"http://h/x","webhook_url":"https://h/hook"}`,
		`{"model":"chroma"}`, `{}`, `[]`, `null`, ``, `{"video_url":`, `{"a":1,"a":2}`,
		`{"video_url":"http://h/x","metadata":{"k":null}}`, `{"video_url":"http://h/x","background":{"type":"color","color":[1e999,0,0]}}`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, create bool) {
		req, err := parseJobRequest(body, create)
		if err != nil {
			var ve *vidmatte.Error
			if !errors.As(err, &ve) || ve.Code != vidmatte.CodeInvalid {
				t.Fatalf("error outside the vocabulary: %#v", err)
			}
			if req != nil {
				t.Fatal("a request with an error")
			}
			return
		}
		if create && req.VideoURL == "" {
			t.Fatal("create without video_url accepted")
		}
		if req.Format != nil && !req.Format.Valid() {
			t.Fatalf("invalid format accepted: %s", *req.Format)
		}
		if len(req.Metadata) > vidmatte.MaxMetadataPairs {
			t.Fatal("too much metadata accepted")
		}
		if b := req.Background; b != nil {
			if b.Color != nil {
				for _, c := range b.Color {
					if c < 0 || c > 1 {
						t.Fatalf("colour out of range accepted: %v", *b.Color)
					}
				}
			}
			if b.Type == vidmatte.BackgroundColor && b.Color == nil {
				t.Fatal("colour background without a colour")
			}
			if b.Type == vidmatte.BackgroundImage && b.ImageURL == "" {
				t.Fatal("image background without a URL")
			}
		}
		if c := req.Composition; c != nil && c.Canvas != nil && (c.Canvas.Width < 2 || c.Canvas.Height < 2) {
			t.Fatal("canvas out of range accepted")
		}
	})
}

func FuzzParseJobListQuery(f *testing.F) {
	for _, s := range []string{"", "limit=10", "limit=100&offset=5&status=queued", "limit=0", "limit=abc",
		"status=weird", "limit=1&limit=2", "page=1", "%zz", "offset=-3", "limit=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseJobListQuery(raw)
		if err != nil {
			if vidmatte.ErrorCode(err) != vidmatte.CodeInvalid {
				t.Fatalf("error outside the vocabulary: %v", err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > 100 || q.Offset < 0 || (q.Status != "" && !q.Status.Valid()) {
			t.Fatalf("out of range accepted: %+v", q)
		}
	})
}
