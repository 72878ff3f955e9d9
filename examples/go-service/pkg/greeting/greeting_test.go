package greeting

import "testing"

func TestFor(t *testing.T) {
	if got := For("x"); got != "hello, x" {
		t.Fatalf("For(x) = %q", got)
	}
}
