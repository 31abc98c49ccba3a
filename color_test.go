package vidmatte

import "testing"

func TestParseHexColor(t *testing.T) {
	c, err := ParseHexColor("#ff8000")
	if err != nil {
		t.Fatal(err)
	}
	if c[0] != 1 || c[1] != 128.0/255 || c[2] != 0 {
		t.Fatalf("got %v", c)
	}
	if _, err := ParseHexColor("00ff00"); err != nil {
		t.Fatalf("without #: %v", err)
	}
	for _, bad := range []string{"", "#", "#fff", "#gg0000", "#00ff00ff", "red"} {
		if _, err := ParseHexColor(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestStatusTransitions(t *testing.T) {
	allowed := map[[2]Status]bool{
		{StatusPending, StatusQueued}:       true,
		{StatusPending, StatusCanceled}:     true,
		{StatusQueued, StatusProcessing}:    true,
		{StatusQueued, StatusCanceled}:      true,
		{StatusProcessing, StatusCompleted}: true,
		{StatusProcessing, StatusFailed}:    true,
		{StatusProcessing, StatusCanceled}:  true,
		{StatusProcessing, StatusQueued}:    true,
	}
	all := []Status{StatusPending, StatusQueued, StatusProcessing, StatusCompleted, StatusFailed, StatusCanceled}
	for _, from := range all {
		for _, to := range all {
			if got := from.CanTransition(to); got != allowed[[2]Status{from, to}] {
				t.Errorf("%s → %s: %v", from, to, got)
			}
		}
		if from.Terminal() != (from == StatusCompleted || from == StatusFailed || from == StatusCanceled) {
			t.Errorf("%s: Terminal wrong", from)
		}
	}
}

func TestErrorVocabulary(t *testing.T) {
	e := Wrap(errString("disk on fire"), CodeInternal, "writing")
	if ErrorCode(e) != CodeInternal || ErrorMessage(e) != "internal error" {
		t.Fatalf("internal error leaks: %q", ErrorMessage(e))
	}
	f := FieldErrorf("limit", "must be 1..100")
	if ErrorCode(f) != CodeInvalid || ErrorMessage(f) != "limit: must be 1..100" || f.Field != "limit" {
		t.Fatalf("field error: %+v", f)
	}
	if ErrorCode(errString("plain")) != CodeInternal || ErrorCode(nil) != "" {
		t.Fatal("plain errors are internal; nil has no code")
	}
}

type errString string

func (e errString) Error() string { return string(e) }
